/*
 * CNI plugins run from Node without forking Node. child_process forks, and fork copies the page
 * tables of a ~100 MB process and makes its next writes fault: in a profile of our process during
 * attach and detach, fork was a sixth of its CPU. posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK))
 * copies nothing: the child runs on Node's memory until it execs.
 *
 *   run(file: string, env: string[], input: Buffer,
 *       done: (errno: number, step: string, code: number, signal: number, stdout: Buffer, stderr: Buffer) => void): number
 *     Starts `file` (argv: just its path) with exactly `env`, signal mask empty and every signal's
 *     handler reset (Node ignores SIGPIPE; a plugin must not inherit that). Returns its pid, or
 *     -errno when it could not be started (then `done` is never called). A thread of its own writes
 *     `input` to its stdin, reads stdout and stderr to their end, and reaps it; then `done` gets
 *     errno 0 with the exit code (or the signal that ended it, code -1), or an errno and the step
 *     that failed. The pending call keeps the event loop alive, as a child process handle does.
 *   kill(pid: number, signal: number): boolean
 *     Signals the process group of a process run() started (each is the leader of one of its own)
 *     and has not reaped yet; false otherwise. Its pid, the group's id, cannot have been reused
 *     meanwhile: it is reaped only after it left the list this looks in, under one lock.
 *
 * libuv reaps only its own children (waitpid per pid), so it never takes ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addon.h"

#define OUTPUT_LIMIT (16 << 20)

struct buffer {
  char *data;
  size_t length, capacity;
};

struct job {
  pid_t pid;
  int in, out, err;
  char *input;
  size_t input_length;
  struct buffer stdout_data, stderr_data;
  int status;
  int errno_value;
  const char *step;
  napi_threadsafe_function done;
  struct job *next;
};

static void free_job(struct job *job);

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *running;

static void unlist(struct job *job) {
  pthread_mutex_lock(&running_lock);
  for (struct job **at = &running; *at; at = &(*at)->next) {
    if (*at == job) {
      *at = job->next;
      break;
    }
  }
  pthread_mutex_unlock(&running_lock);
}

static void fail(struct job *job, int value, const char *step) {
  if (job->errno_value == 0) {
    job->errno_value = value;
    job->step = step;
  }
}

/* Reads what is there; 0 at the end (or on an error, recorded), 1 to go on. */
static int drain(struct job *job, int fd, struct buffer *buffer) {
  for (;;) {
    if (buffer->capacity - buffer->length < 4096) {
      size_t capacity = buffer->capacity ? buffer->capacity * 2 : 8192;
      if (capacity > OUTPUT_LIMIT) {
        fail(job, EFBIG, "read");
        return 0;
      }
      char *data = realloc(buffer->data, capacity);
      if (!data) {
        fail(job, ENOMEM, "read");
        return 0;
      }
      buffer->data = data;
      buffer->capacity = capacity;
    }
    ssize_t n = read(fd, buffer->data + buffer->length, buffer->capacity - buffer->length);
    if (n > 0) {
      buffer->length += (size_t)n;
      continue;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 1;
    fail(job, errno, "read");
    return 0;
  }
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void *supervise(void *arg) {
  struct job *job = arg;
  size_t written = 0;
  if (job->input_length == 0) close_fd(&job->in);
  while (job->in >= 0 || job->out >= 0 || job->err >= 0) {
    struct pollfd fds[3];
    int *owners[3];
    nfds_t n = 0;
    if (job->in >= 0) fds[n] = (struct pollfd){job->in, POLLOUT, 0}, owners[n++] = &job->in;
    if (job->out >= 0) fds[n] = (struct pollfd){job->out, POLLIN, 0}, owners[n++] = &job->out;
    if (job->err >= 0) fds[n] = (struct pollfd){job->err, POLLIN, 0}, owners[n++] = &job->err;
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      fail(job, errno, "poll");
      break;
    }
    for (nfds_t i = 0; i < n; i++) {
      if (fds[i].revents == 0) continue;
      if (owners[i] == &job->in) {
        ssize_t w = write(job->in, job->input + written, job->input_length - written);
        if (w > 0) written += (size_t)w;
        /* EPIPE: the plugin stopped reading (Node ignores SIGPIPE, so no signal); its output says why. */
        if (written == job->input_length || (w < 0 && errno != EAGAIN && errno != EINTR)) close_fd(&job->in);
      } else if (!drain(job, fds[i].fd, owners[i] == &job->out ? &job->stdout_data : &job->stderr_data)) {
        close_fd(owners[i]);
      }
    }
  }
  close_fd(&job->in);
  close_fd(&job->out);
  close_fd(&job->err);
  /* Wait for the exit without reaping, leave the list, then reap: kill() never hits a reused pid. */
  siginfo_t info;
  while (waitid(P_PID, (id_t)job->pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  unlist(job);
  while (waitpid(job->pid, &job->status, 0) < 0) {
    if (errno == EINTR) continue;
    fail(job, errno, "waitpid");
    break;
  }
  /* call_done frees the job, maybe before the next line: keep what is needed of it. */
  napi_threadsafe_function done = job->done;
  if (napi_call_threadsafe_function(done, job, napi_tsfn_blocking) != napi_ok) free_job(job);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

static void free_job(struct job *job) {
  free(job->input);
  free(job->stdout_data.data);
  free(job->stderr_data.data);
  free(job);
}

static void call_done(napi_env env, napi_value done, void *context, void *data) {
  (void)context;
  struct job *job = data;
  if (env && done) {
    int code = -1, signal = 0;
    if (WIFEXITED(job->status)) code = WEXITSTATUS(job->status);
    else if (WIFSIGNALED(job->status)) signal = WTERMSIG(job->status);
    napi_value global, argv[6];
    if (napi_get_global(env, &global) == napi_ok &&
        napi_create_int32(env, job->errno_value, &argv[0]) == napi_ok &&
        napi_create_string_utf8(env, job->step ? job->step : "", NAPI_AUTO_LENGTH, &argv[1]) == napi_ok &&
        napi_create_int32(env, code, &argv[2]) == napi_ok && napi_create_int32(env, signal, &argv[3]) == napi_ok &&
        napi_create_buffer_copy(env, job->stdout_data.length, job->stdout_data.data ? job->stdout_data.data : "",
                                NULL, &argv[4]) == napi_ok &&
        napi_create_buffer_copy(env, job->stderr_data.length, job->stderr_data.data ? job->stderr_data.data : "",
                                NULL, &argv[5]) == napi_ok) {
      napi_call_function(env, global, done, 6, argv, NULL);
    }
  }
  free_job(job);
}

static char *string_arg(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *out = malloc(length + 1);
  if (out && napi_get_value_string_utf8(env, value, out, length + 1, &length) != napi_ok) {
    free(out);
    return NULL;
  }
  return out;
}

static napi_value number(napi_env env, int64_t value) {
  napi_value out;
  return napi_create_int64(env, value, &out) == napi_ok ? out : NULL;
}

static void free_strings(char **strings) {
  if (!strings) return;
  for (char **s = strings; *s; s++) free(*s);
  free(strings);
}

napi_value SpawnRun(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "want (file, env, input, done)");
    return NULL;
  }
  char *file = string_arg(env, argv[0]);
  uint32_t count = 0;
  bool is_array = false;
  void *input_data = NULL;
  size_t input_length = 0;
  napi_valuetype done_type = napi_undefined;
  if (!file || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &input_data, &input_length) != napi_ok ||
      napi_typeof(env, argv[3], &done_type) != napi_ok || done_type != napi_function) {
    free(file);
    napi_throw_type_error(env, NULL, "want (file: string, env: string[], input: Buffer, done: function)");
    return NULL;
  }
  char **envp = calloc(count + 1, sizeof *envp);
  struct job *job = calloc(1, sizeof *job);
  if (!envp || !job) goto oom;
  for (uint32_t i = 0; i < count; i++) {
    napi_value entry;
    if (napi_get_element(env, argv[1], i, &entry) != napi_ok || !(envp[i] = string_arg(env, entry))) {
      free(file);
      free_strings(envp);
      free(job);
      napi_throw_type_error(env, NULL, "env: want strings");
      return NULL;
    }
  }
  job->input = malloc(input_length ? input_length : 1);
  if (!job->input) goto oom;
  memcpy(job->input, input_data, input_length);
  job->input_length = input_length;

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  int result = 0;
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    result = -errno;
  } else {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawnattr_init(&attributes);
    /* A process group of its own: the terminal's Ctrl-C (sent to ctrd's group) does not reach it, and
       kill() reaches what it started too (the bridge plugin runs host-local, which shares its stderr:
       the supervising thread reads that to its end). */
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    char *args[] = {file, NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, file, &actions, &attributes, args, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawned != 0) result = -spawned;
    else job->pid = pid;
  }
  free(file);
  free_strings(envp);
  envp = NULL;
  int child_ends[] = {in[0], out[1], err[1]};
  for (int i = 0; i < 3; i++)
    if (child_ends[i] >= 0) close(child_ends[i]);
  job->in = in[1];
  job->out = out[0];
  job->err = err[0];
  if (result == 0) {
    int fds[] = {job->in, job->out, job->err};
    for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    napi_value name;
    pthread_t thread;
    pthread_attr_t attr;
    if (napi_create_string_utf8(env, "cni plugin", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, NULL, NULL, call_done, &job->done) !=
            napi_ok) {
      result = -ENOMEM;
    } else {
      pthread_mutex_lock(&running_lock);
      job->next = running;
      running = job;
      pthread_mutex_unlock(&running_lock);
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pid_t pid = job->pid; /* the thread owns the job from here */
      int started = pthread_create(&thread, &attr, supervise, job);
      pthread_attr_destroy(&attr);
      if (started == 0) return number(env, pid);
      unlist(job);
      napi_release_threadsafe_function(job->done, napi_tsfn_abort);
      result = -started;
    }
    /* Started but not watched: end it, reap it, report the error. */
    kill(job->pid, SIGKILL);
    while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  close_fd(&job->in);
  close_fd(&job->out);
  close_fd(&job->err);
  free_job(job);
  return number(env, result);

oom:
  free(file);
  free_strings(envp);
  free(job);
  napi_throw_error(env, NULL, "out of memory");
  return NULL;
}

napi_value SpawnKill(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t pid = 0, signal = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || napi_get_value_int32(env, argv[1], &signal) != napi_ok) {
    napi_throw_type_error(env, NULL, "want (pid, signal)");
    return NULL;
  }
  bool sent = false;
  pthread_mutex_lock(&running_lock);
  for (struct job *job = running; job; job = job->next) {
    if (job->pid == pid && pid > 0) {
      sent = kill(-pid, signal) == 0;
      break;
    }
  }
  pthread_mutex_unlock(&running_lock);
  napi_value out;
  return napi_get_boolean(env, sent, &out) == napi_ok ? out : NULL;
}
