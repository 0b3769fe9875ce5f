/*
 * Real Linux processes behind HcsCreateProcess: CommandLineToArgvW splitting, fork/exec with pipes or a pty,
 * one waiter thread per child (waitid(P_PID) — no SIGCHLD handler), a stdin/console relay thread when needed,
 * and /proc sampling for ProcessList and Statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;
static int g_live_children; /* spawned and not yet reaped (g_mu) */

void system_on_process_exit(fprocess *p); /* exports.c, g_mu held */

/* ---- CommandLineToArgvW ---- */

/* Splits like shell32's CommandLineToArgvW (the algorithm Wine documents): argv[0] ends at the next quote when
 * it starts with one, else at whitespace, with no escaping; later arguments use the 2n / 2n+1 backslash rules
 * and quote counting, where a third consecutive quote yields a literal quote. */
int cmdline_to_argv(const char *cmd, char ***argv_out) {
  size_t n = strlen(cmd);
  char **argv = calloc(n / 2 + 3, sizeof *argv); /* at most one argument per two characters, plus argv[0] */
  char *buf = malloc(n + 1);
  int argc = 0;
  if (!argv || !buf) goto oom;
  const char *s = cmd;
  char *d = buf;
  /* argv[0] */
  if (*s == '"') {
    s++;
    while (*s && *s != '"') *d++ = *s++;
    if (*s == '"') s++;
  } else {
    while (*s && *s != ' ' && *s != '\t') *d++ = *s++;
  }
  *d = 0;
  if (!(argv[argc++] = strdup(buf))) goto oom;
  while (*s == ' ' || *s == '\t') s++;
  int qcount = 0, bcount = 0, in_arg = 0;
  d = buf;
  while (*s) {
    if ((*s == ' ' || *s == '\t') && qcount == 0) {
      *d = 0;
      if (!(argv[argc++] = strdup(buf))) goto oom;
      d = buf;
      in_arg = 0;
      bcount = 0;
      while (*s == ' ' || *s == '\t') s++;
      continue;
    }
    in_arg = 1;
    if (*s == '\\') {
      *d++ = *s++;
      bcount++;
    } else if (*s == '"') {
      if ((bcount & 1) == 0) {
        d -= bcount / 2; /* 2n backslashes + quote: n backslashes, and the quote toggles quoting */
        qcount++;
      } else {
        d -= bcount / 2 + 1; /* 2n+1 backslashes + quote: n backslashes and a literal quote */
        *d++ = '"';
      }
      s++;
      bcount = 0;
      while (*s == '"') {
        if (++qcount == 3) {
          *d++ = '"';
          qcount = 0;
        }
        s++;
      }
      if (qcount == 2) qcount = 0;
    } else {
      *d++ = *s++;
      bcount = 0;
    }
  }
  if (in_arg) {
    *d = 0;
    if (!(argv[argc++] = strdup(buf))) goto oom;
  }
  argv[argc] = NULL;
  free(buf);
  *argv_out = argv;
  return argc;
oom:
  free(buf);
  free_strv(argv);
  return -1;
}

void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static int is_exec_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    errno = EACCES;
    return 0;
  }
  return access(path, X_OK) == 0;
}

char *resolve_exe(const char *file, char **envp) {
  if (!*file) {
    errno = ENOENT;
    return NULL;
  }
  if (strchr(file, '/')) {
    if (!is_exec_file(file)) return NULL;
    return strdup(file);
  }
  const char *path = NULL;
  for (char **e = envp; e && *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  if (!path) path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int saw_eacces = 0;
  const char *p = path;
  for (;;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    char *cand = malloc(dl + strlen(file) + 2);
    if (!cand) return NULL;
    if (dl == 0) sprintf(cand, "%s", file);
    else sprintf(cand, "%.*s/%s", (int)dl, p, file);
    if (is_exec_file(cand)) return cand;
    if (errno == EACCES) saw_eacces = 1;
    free(cand);
    if (!colon) break;
    p = colon + 1;
  }
  errno = saw_eacces ? EACCES : ENOENT;
  return NULL;
}

/* ---- spawning ---- */

typedef struct {
  fprocess *p;
  int in_src, in_dst; /* caller's stdin pipe (read end) → child's stdin pipe / pty master */
  int out_src;        /* pty master, console mode only */
  int out_dst;        /* caller's stdout pipe (write end), or -1 to discard */
  int master;
  int wake;
} relay;

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static int32_t hr_from_errno(int err, int chdir_stage) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return chdir_stage ? HR_DIRECTORY : HR_FILE_NOT_FOUND;
    case EACCES:
    case EPERM: return HR_ACCESS_DENIED;
    case ENOEXEC: return HR_WIN32(193); /* ERROR_BAD_EXE_FORMAT */
    case ENOMEM:
    case EAGAIN: return E_OUTOFMEMORY;
    default: return E_FAIL;
  }
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Child side between fork and exec: async-signal-safe calls only. */
static void child_exec(const spawn_req *rq, int child_fds[3], int slave, int errfd) {
  struct {
    int stage, err;
  } report;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 65; sig++) sigaction(sig, &sa, NULL); /* Node ignores SIGPIPE: undo it */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (rq->console) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
  } else {
    setpgid(0, 0);
  }
  int tmp[3];
  for (int i = 0; i < 3; i++) tmp[i] = fcntl(child_fds[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; i++) {
    if (tmp[i] < 0 || dup2(tmp[i], i) < 0) {
      report.stage = 2, report.err = errno;
      goto fail;
    }
  }
#ifdef SYS_close_range
  /* Everything above 2 closes at exec (the error pipe is already CLOEXEC and must live until then). */
  syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
#endif
  if (rq->cwd && chdir(rq->cwd) != 0) {
    report.stage = 1, report.err = errno;
    goto fail;
  }
  execve(rq->exe, rq->argv, rq->envp ? rq->envp : environ);
  report.stage = 0, report.err = errno;
fail:
  if (write(errfd, &report, sizeof report) < 0) {
  }
  _exit(127);
}

int32_t process_spawn(const spawn_req *rq, pid_t *pid_out, int caller[3], void **relay_out, char *msg,
                      size_t msglen) {
  int in_pipe[2] = {-1, -1}, child_in[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  int errp[2] = {-1, -1}, devnull = -1, master = -1, slave = -1, wake = -1;
  int child_fds[3];
  int32_t hr = E_FAIL;
  relay *rl = NULL;
  caller[0] = caller[1] = caller[2] = -1;
  *relay_out = NULL;

  if ((!rq->want_in || !rq->want_out || !rq->want_err) && !rq->console) {
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) goto sysfail;
  }
  if (rq->console) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char name[128];
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0)
      goto sysfail;
    slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) goto sysfail;
    struct winsize ws = {(unsigned short)(rq->rows ? rq->rows : 24), (unsigned short)(rq->cols ? rq->cols : 80), 0,
                         0};
    ioctl(master, TIOCSWINSZ, &ws);
  }
  if (rq->want_in) {
    if (pipe2(in_pipe, O_CLOEXEC) != 0) goto sysfail;
    if (!rq->console && pipe2(child_in, O_CLOEXEC) != 0) goto sysfail;
  }
  if (rq->want_out && pipe2(out_pipe, O_CLOEXEC) != 0) goto sysfail;
  if (rq->want_err && pipe2(err_pipe, O_CLOEXEC) != 0) goto sysfail;
  if (pipe2(errp, O_CLOEXEC) != 0) goto sysfail;
  if (rq->console || rq->want_in) {
    wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) goto sysfail;
    rl = calloc(1, sizeof *rl);
    if (!rl) goto sysfail;
  }

  if (rq->console) {
    child_fds[0] = slave;
    child_fds[1] = slave;
    child_fds[2] = rq->want_err ? err_pipe[1] : slave;
  } else {
    child_fds[0] = rq->want_in ? child_in[0] : devnull;
    child_fds[1] = rq->want_out ? out_pipe[1] : devnull;
    child_fds[2] = rq->want_err ? err_pipe[1] : devnull;
  }

  pid_t pid = fork();
  if (pid < 0) goto sysfail;
  if (pid == 0) {
    close(errp[0]);
    child_exec(rq, child_fds, slave, errp[1]);
  }
  close_fd(&errp[1]);
  struct {
    int stage, err;
  } report;
  ssize_t r;
  do r = read(errp[0], &report, sizeof report);
  while (r < 0 && errno == EINTR);
  close_fd(&errp[0]);
  if (r == (ssize_t)sizeof report) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    hr = hr_from_errno(report.err, report.stage == 1);
    snprintf(msg, msglen, "%s %s: %s", report.stage == 1 ? "chdir" : report.stage == 2 ? "stdio setup" : "exec",
             report.stage == 1 ? rq->cwd : rq->exe, strerror(report.err));
    goto cleanup;
  }

  /* The parent keeps only the caller's ends and the relay's ends. */
  close_fd(&slave);
  close_fd(&child_in[0]);
  close_fd(&err_pipe[1]);
  close_fd(&devnull);
  if (rl) {
    rl->wake = wake;
    rl->master = master;
    rl->in_src = in_pipe[0];
    rl->in_dst = rq->want_in ? (rq->console ? master : child_in[1]) : -1;
    rl->out_src = rq->console ? master : -1;
    rl->out_dst = rq->console ? out_pipe[1] : -1; /* console: the relay copies the pty to the caller's pipe */
    if (rl->in_src >= 0) set_nonblock(rl->in_src);
    if (rl->in_dst >= 0) set_nonblock(rl->in_dst);
    if (rl->out_dst >= 0) set_nonblock(rl->out_dst);
    if (master >= 0) set_nonblock(master);
  }
  if (!rq->console) close_fd(&out_pipe[1]);
  caller[0] = in_pipe[1];
  caller[1] = out_pipe[0];
  caller[2] = err_pipe[0];
  *pid_out = pid;
  *relay_out = rl;
  return S_OK;

sysfail:
  hr = hr_from_errno(errno, 0);
  snprintf(msg, msglen, "spawn setup: %s", strerror(errno));
cleanup:
  close_fd(&in_pipe[0]);
  close_fd(&in_pipe[1]);
  close_fd(&child_in[0]);
  close_fd(&child_in[1]);
  close_fd(&out_pipe[0]);
  close_fd(&out_pipe[1]);
  close_fd(&err_pipe[0]);
  close_fd(&err_pipe[1]);
  close_fd(&errp[0]);
  close_fd(&errp[1]);
  close_fd(&devnull);
  close_fd(&master);
  close_fd(&slave);
  close_fd(&wake);
  free(rl);
  return hr;
}

/* ---- the stdio relay ---- */

#define RELAY_BUF 16384

typedef struct {
  char buf[RELAY_BUF];
  size_t off, len;
} rbuf;

/* Moves data src → buf → dst without blocking. Returns 1 on EOF/error of src (after draining buf, or when dst
 * failed), 0 otherwise. *need_in / *need_out say what to poll for. dst < 0 discards. */
static int pump(int src, int *dst, rbuf *b, int *need_in, int *need_out, int *src_eof) {
  *need_in = *need_out = 0;
  for (;;) {
    if (b->len > b->off) {
      if (*dst < 0) {
        b->off = b->len = 0;
        continue;
      }
      ssize_t w = write(*dst, b->buf + b->off, b->len - b->off);
      if (w > 0) {
        b->off += (size_t)w;
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        *need_out = 1;
        return 0;
      }
      return 1; /* EPIPE or another error: the reader is gone */
    }
    b->off = b->len = 0;
    if (*src_eof) return 1;
    ssize_t r = read(src, b->buf, sizeof b->buf);
    if (r > 0) {
      b->len = (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) {
      *need_in = 1;
      return 0;
    }
    *src_eof = 1; /* 0 = EOF; EIO = the pty's last slave closed */
  }
}

static void *relay_thread(void *arg) {
  relay *rl = arg;
  fprocess *p = rl->p;
  rbuf *inb = calloc(1, sizeof *inb), *outb = calloc(1, sizeof *outb);
  int in_active = rl->in_src >= 0 && rl->in_dst >= 0, out_active = rl->out_src >= 0;
  int in_eof = 0, out_eof = 0;
  if (!inb || !outb) in_active = out_active = 0;
  while (in_active || out_active) {
    pthread_mutex_lock(&g_mu);
    int exited = p->exited, close_req = p->stdin_close_requested;
    pthread_mutex_unlock(&g_mu);
    struct pollfd fds[5];
    int nfds = 0;
    fds[nfds++] = (struct pollfd){rl->wake, POLLIN, 0};
    if (in_active) {
      int need_in, need_out;
      if (exited) {
        in_active = 0; /* the child is gone: whatever is pending on stdin has no reader */
      } else {
        if (close_req) {
          /* CloseHandle StdIn: forward what the caller already wrote, then EOF. */
          int ni, no;
          int done = pump(rl->in_src, &rl->in_dst, inb, &ni, &no, &in_eof);
          if (!done && ni) in_eof = 1, done = pump(rl->in_src, &rl->in_dst, inb, &ni, &no, &in_eof);
          need_in = 0, need_out = no;
          if (done) in_active = 0;
        } else if (pump(rl->in_src, &rl->in_dst, inb, &need_in, &need_out, &in_eof)) {
          in_active = 0;
        }
        if (in_active) {
          if (need_in) fds[nfds++] = (struct pollfd){rl->in_src, POLLIN, 0};
          if (need_out) fds[nfds++] = (struct pollfd){rl->in_dst, POLLOUT, 0};
        }
      }
      if (!in_active) {
        close_fd(&rl->in_src);
        if (rl->in_dst == rl->master) {
          if (!exited && rl->master >= 0) {
            /* A console has no stdin EOF: send the terminal's EOF character, as typing ^D would. */
            struct termios t;
            char eof = 4;
            if (tcgetattr(rl->master, &t) == 0 && t.c_cc[VEOF]) eof = (char)t.c_cc[VEOF];
            if (write(rl->master, &eof, 1) < 0) {
            }
          }
          rl->in_dst = -1;
        } else {
          close_fd(&rl->in_dst);
        }
      }
    }
    if (out_active) {
      int need_in, need_out;
      if (pump(rl->out_src, &rl->out_dst, outb, &need_in, &need_out, &out_eof)) {
        out_active = 0;
        close_fd(&rl->out_dst);
      } else {
        if (need_in) fds[nfds++] = (struct pollfd){rl->out_src, POLLIN, 0};
        if (need_out) fds[nfds++] = (struct pollfd){rl->out_dst, POLLOUT, 0};
      }
    }
    if (!in_active && !out_active) break;
    int pr = poll(fds, (nfds_t)nfds, -1);
    if (pr < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      if (read(rl->wake, &v, sizeof v) < 0) {
      }
    }
    /* Pipe writers that went away show up as POLLERR/POLLHUP: the next pump sees EPIPE / EOF. */
  }
  /* Keep the pty master open until the child is gone: a program that closes its stdio before exiting (cat
   * does) makes the master read EIO first, and closing the master then would hang the terminal up and kill
   * the program with SIGHUP. The waiter wakes us on exit. */
  while (rl->master >= 0) {
    pthread_mutex_lock(&g_mu);
    int exited = p->exited;
    pthread_mutex_unlock(&g_mu);
    if (exited) break;
    struct pollfd w = {rl->wake, POLLIN, 0};
    if (poll(&w, 1, -1) < 0 && errno != EINTR) break;
    uint64_t v;
    if (read(rl->wake, &v, sizeof v) < 0) {
    }
  }
  pthread_mutex_lock(&g_mu);
  p->relay_alive = 0;
  p->master_fd = -1;
  p->wake_fd = -1;
  close_fd(&rl->in_src);
  if (rl->in_dst != rl->master) close_fd(&rl->in_dst);
  close_fd(&rl->out_dst);
  close_fd(&rl->master);
  close_fd(&rl->wake);
  process_unref(p);
  pthread_mutex_unlock(&g_mu);
  free(inb);
  free(outb);
  free(rl);
  return NULL;
}

void process_wake_relay(fprocess *p) {
  if (p->wake_fd >= 0) {
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof one) < 0) {
    }
  }
}

void process_request_stdin_close(fprocess *p) {
  p->stdin_close_requested = 1;
  process_wake_relay(p);
}

int process_resize(fprocess *p, unsigned rows, unsigned cols) {
  if (!p->console || p->master_fd < 0) return 0;
  struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
  return ioctl(p->master_fd, TIOCSWINSZ, &ws) == 0 ? 1 : 0; /* the kernel sends SIGWINCH to the foreground */
}

/* ---- reaping ---- */

static void *waiter_thread(void *arg) {
  fprocess *p = arg;
  siginfo_t si;
  int rc;
  memset(&si, 0, sizeof si);
  /* WNOWAIT: the zombie keeps the pid (and process group) reserved until we mark the process exited under the
   * lock, so a signal sent under the lock can never hit a recycled pid. */
  do rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT);
  while (rc < 0 && errno == EINTR);
  int code = 255;
  if (rc == 0) code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
  pthread_mutex_lock(&g_mu);
  p->exited = 1;
  p->exit_code = code;
  struct rusage ru;
  int st;
  memset(&ru, 0, sizeof ru);
  if (wait4(p->pid, &st, 0, &ru) == p->pid && p->sys) {
    p->sys->dead_user100ns += (uint64_t)ru.ru_utime.tv_sec * 10000000u + (uint64_t)ru.ru_utime.tv_usec * 10u;
    p->sys->dead_kernel100ns += (uint64_t)ru.ru_stime.tv_sec * 10000000u + (uint64_t)ru.ru_stime.tv_usec * 10u;
  }
  p->reaped = 1;
  g_live_children--;
  post_process_exited(p);
  pthread_cond_broadcast(&g_block_cv); /* a blocked HcsSignalProcess on this process returns now */
  process_wake_relay(p);
  system_on_process_exit(p);
  process_unref(p);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

/* g_mu held. Starts the waiter (always) and the relay (if any). Returns 0, or -1 if the waiter could not start
 * (the caller then kills and reaps the child itself). */
int process_start_threads(fprocess *p, void *relay_arg) {
  relay *rl = relay_arg;
  g_live_children++;
  process_ref(p);
  if (spawn_thread(NULL, waiter_thread, p) != 0) {
    process_unref(p);
    g_live_children--;
    return -1;
  }
  if (rl) {
    rl->p = p;
    p->wake_fd = rl->wake;
    p->master_fd = rl->master;
    p->relay_alive = 1;
    process_ref(p);
    if (spawn_thread(NULL, relay_thread, rl) != 0) {
      /* Without a relay: hand nothing more to the child; stdin/console simply stay silent. */
      p->relay_alive = 0;
      p->wake_fd = p->master_fd = -1;
      close_fd(&rl->in_src);
      if (rl->in_dst != rl->master) close_fd(&rl->in_dst);
      close_fd(&rl->out_dst);
      close_fd(&rl->master);
      close_fd(&rl->wake);
      free(rl);
      process_unref(p);
    }
  }
  return 0;
}

void process_discard_relay(void *relay_arg) {
  relay *rl = relay_arg;
  if (!rl) return;
  close_fd(&rl->in_src);
  if (rl->in_dst != rl->master) close_fd(&rl->in_dst);
  close_fd(&rl->out_dst);
  close_fd(&rl->master);
  close_fd(&rl->wake);
  free(rl);
}

void system_signal_all(fsystem *s, int sig) {
  for (fprocess *p = s->procs; p; p = p->next) {
    if (p->exited) continue;
    /* Each child leads its own process group (setpgid or setsid), so its descendants get the signal too. */
    if (kill(-p->pid, sig) != 0) kill(p->pid, sig);
  }
}

int wait_all_reaped(int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    pthread_mutex_lock(&g_mu);
    int n = g_live_children;
    pthread_mutex_unlock(&g_mu);
    if (n <= 0) return 1;
    if (now_ms() >= deadline) return 0;
    usleep(5000);
  }
}

/* ---- /proc sampling ---- */

static int read_file(const char *path, char *buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, n - 1);
  close(fd);
  if (r < 0) return -1;
  buf[r] = 0;
  return (int)r;
}

int procstat_read(pid_t pid, procstat *ps) {
  char path[64], buf[2048];
  memset(ps, 0, sizeof *ps);
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_file(path, buf, sizeof buf) <= 0) return 0;
  char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
  if (!lp || !rp || rp < lp) return 0;
  size_t cl = (size_t)(rp - lp - 1);
  if (cl >= sizeof ps->comm) cl = sizeof ps->comm - 1;
  memcpy(ps->comm, lp + 1, cl);
  ps->comm[cl] = 0;
  ps->state = rp[1] == ' ' ? rp[2] : '?';
  /* Fields after ')' start at field 3 (state). utime=14 stime=15 vsize=23 rss=24. */
  unsigned long long f[32] = {0};
  char *save = NULL, *tok = strtok_r(rp + 1, " ", &save);
  for (int field = 3; tok && field < 32; field++, tok = strtok_r(NULL, " ", &save)) f[field] = strtoull(tok, NULL, 10);
  long hz = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (hz <= 0) hz = 100;
  ps->user100ns = f[14] * (10000000ull / (unsigned long long)hz);
  ps->kernel100ns = f[15] * (10000000ull / (unsigned long long)hz);
  ps->vsize_bytes = f[23];
  ps->rss_bytes = f[24] * (unsigned long long)page;
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  if (read_file(path, buf, sizeof buf) > 0) {
    unsigned long long size, resident, shared;
    if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) == 3) {
      ps->rss_bytes = resident * (unsigned long long)page;
      ps->shared_bytes = shared * (unsigned long long)page;
    }
  }
  snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
  if (read_file(path, buf, sizeof buf) > 0) {
    char *line = buf;
    while (line && *line) {
      unsigned long long v;
      if (sscanf(line, "syscr: %llu", &v) == 1) ps->read_count = v;
      else if (sscanf(line, "syscw: %llu", &v) == 1) ps->write_count = v;
      else if (sscanf(line, "rchar: %llu", &v) == 1) ps->read_bytes = v;
      else if (sscanf(line, "wchar: %llu", &v) == 1) ps->write_bytes = v;
      line = strchr(line, '\n');
      if (line) line++;
    }
  }
  return 1;
}
