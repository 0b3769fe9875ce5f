/*
 * Network namespaces as files, for Node, without a process per step: what `unshare --net=FILE`
 * and `umount FILE` do, as system calls on a thread of our own.
 *
 *   create(path: string, done: (errno: number, step: string) => void): void
 *     A new network namespace, bind-mounted on `path` (an existing file), which keeps it alive with
 *     no process in it. unshare(CLONE_NEWNET) changes only the calling thread's namespace, so it
 *     runs on a thread made for it that exits afterwards: neither Node's threads nor libuv's pool
 *     ever leave the host's namespace (the CNI plugins' pkg/testutils make namespaces the same way).
 *   remove(path: string, done: (errno: number, step: string) => void): void
 *     Unmounts `path` until it is no longer a mount point (EINVAL; ENOENT when it is gone) and
 *     removes the file. Both run off the event loop: mount and umount wait for the kernel (RCU).
 *
 * errno 0 is success; otherwise `step` names the call that failed. The caller refuses paths with NUL.
 */
#include <errno.h>
#include <limits.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"

enum op { CREATE, REMOVE };

struct job {
  enum op op;
  char path[PATH_MAX];
  int err;
  const char *step;
  napi_async_work work;
  napi_ref done;
};

/* On its own thread: the namespace it enters dies with the thread unless the mount holds it. */
static void *create_in_thread(void *arg) {
  struct job *job = arg;
  if (unshare(CLONE_NEWNET) != 0) {
    job->err = errno;
    job->step = "unshare";
    return NULL;
  }
  char self[64];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
  if (mount(self, job->path, NULL, MS_BIND, NULL) != 0) {
    job->err = errno;
    job->step = "mount";
  }
  return NULL;
}

static void run_create(struct job *job) {
  pthread_t thread;
  int err = pthread_create(&thread, NULL, create_in_thread, job);
  if (err != 0) {
    job->err = err;
    job->step = "pthread_create";
    return;
  }
  pthread_join(thread, NULL);
}

static void run_remove(struct job *job) {
  /* A file may carry stacked mounts; each umount takes one off. 64: give up on a runaway. */
  for (int i = 0; i < 64; i++) {
    if (umount2(job->path, UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    job->err = errno;
    job->step = "umount";
    return;
  }
  if (unlink(job->path) != 0 && errno != ENOENT) {
    job->err = errno;
    job->step = "unlink";
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  struct job *job = data;
  if (job->op == CREATE)
    run_create(job);
  else
    run_remove(job);
}

static void complete(napi_env env, napi_status status, void *data) {
  struct job *job = data;
  napi_value done, global, argv[2];
  if (status != napi_ok && job->err == 0) {
    job->err = ECANCELED;
    job->step = "async work";
  }
  if (napi_get_reference_value(env, job->done, &done) == napi_ok &&
      napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, job->err, &argv[0]) == napi_ok &&
      napi_create_string_utf8(env, job->step ? job->step : "", NAPI_AUTO_LENGTH, &argv[1]) == napi_ok) {
    napi_call_function(env, global, done, 2, argv, NULL);
  }
  napi_delete_reference(env, job->done);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value start(napi_env env, napi_callback_info info, enum op op) {
  size_t argc = 2;
  napi_value argv[2], name;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "want (path, done)");
    return NULL;
  }
  struct job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->op = op;
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok || length >= sizeof job->path ||
      napi_get_value_string_utf8(env, argv[0], job->path, sizeof job->path, &length) != napi_ok) {
    free(job);
    napi_throw_type_error(env, NULL, "path: want a string shorter than PATH_MAX");
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &job->done) != napi_ok) {
    free(job);
    napi_throw_type_error(env, NULL, "done: want a function");
    return NULL;
  }
  if (napi_create_string_utf8(env, op == CREATE ? "netns.create" : "netns.remove", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_reference(env, job->done);
    free(job);
    napi_throw_error(env, NULL, "cannot queue the work");
    return NULL;
  }
  return NULL;
}

napi_value NetnsCreate(napi_env env, napi_callback_info info) { return start(env, info, CREATE); }
napi_value NetnsRemove(napi_env env, napi_callback_info info) { return start(env, info, REMOVE); }
