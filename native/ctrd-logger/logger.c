/*
 * ctrd-logger: the log driver containerd's shim starts for a `binary://` stdio URI.
 *
 * The contract (containerd pkg/process/io.go NewBinaryIO, runtime/v2/runc/platform.go for a TTY):
 *   - argv: the URI's query as key/value pairs, in any order (Go ranges over a map):
 *       path <log file>  [max-size <bytes, 0 = unlimited>]  [max-files <n >= 1>]
 *   - env: CONTAINER_ID, CONTAINER_NAMESPACE.
 *   - fd 3: the container's stdout (read end of a pipe), fd 4: its stderr, fd 5: the ready pipe.
 *     The shim reads one byte (or EOF) from fd 5 before it creates the container: we write it once
 *     the log file is open, so nothing the container writes can come before the logger is there.
 *   - The shim keeps the write ends open until the task is deleted: then it closes them and sends
 *     SIGTERM, and kills us 12 s later. EOF on both streams (or SIGTERM, after draining) ends us.
 *
 * The output is Docker's json-file format, one record per line:
 *   {"log":"text\n","stream":"stdout","time":"2026-11-30T07:45:03.123456789Z"}
 * A line longer than 16 KiB is split into records whose "log" has no trailing "\n" (Docker's
 * partial messages); so is a partial line that waits longer than a second, or that is pending
 * when the output is flushed on request. Readers join them. Invalid UTF-8 becomes U+FFFD.
 *
 * Rotation: before a record would take the file past max-size, <path> becomes <path>.1 (and
 * <path>.N becomes <path>.N+1), keeping at most max-files files; max-files 1 truncates instead.
 * A failed write (a full disk) is undone with ftruncate, so the file only ever holds whole
 * records, and the output is dropped rather than blocking the container.
 *
 * Flush on request: SIGUSR1 makes the logger read everything the pipes hold, write it (partial
 * lines too), and then count the flush in <path>.logger ("<pid> <flushes>\n", replaced
 * atomically). A reader that knows the container has exited sends SIGUSR1 and waits for the
 * count to move: after that, the log file holds everything the container wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FD_STDOUT 3
#define FD_STDERR 4
#define FD_READY 5

#define READ_CHUNK (64 * 1024)
#define MAX_LINE (16 * 1024)         /* Docker's json-file splits lines here */
#define OUT_CAP (256 * 1024)         /* records are batched into one write() */
#define PARTIAL_WAIT_NS 1000000000LL /* a partial line waits this long for its end */
/* One record: each byte may become a 6-byte \u00XX escape, plus the fixed fields. */
#define RECORD_MAX (MAX_LINE * 6 + 128)

struct stream {
  int fd;
  const char *name;
  bool eof;
  size_t len;             /* bytes of an unfinished line in buf */
  long long since;        /* when they arrived (CLOCK_MONOTONIC ns) */
  char buf[MAX_LINE];
};

static struct stream streams[2] = {
    {.fd = FD_STDOUT, .name = "stdout"},
    {.fd = FD_STDERR, .name = "stderr"},
};

static const char *log_path;
static char state_path[PATH_MAX];
static char state_tmp[PATH_MAX];
static long long max_size;  /* 0: no rotation */
static long max_files = 1;

static int log_fd = -1;
static long long file_size;
static char out[OUT_CAP];
static size_t out_len;
static unsigned long long flushes;

static char read_buf[READ_CHUNK];
static char time_text[64];

static long long now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The record time: when the bytes were read, in RFC 3339 with nanoseconds, UTC. */
static void stamp_time(void) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

static void open_log(void) {
  if (log_fd >= 0) return;
  log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (log_fd < 0) return;
  struct stat st;
  file_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* Writes the batched records. On failure they are dropped and the file cut back to whole records. */
static void flush_out(void) {
  if (out_len == 0) return;
  open_log();
  if (log_fd < 0) {
    out_len = 0;
    return;
  }
  size_t done = 0;
  while (done < out_len) {
    ssize_t n = write(log_fd, out + done, out_len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (done > 0 && ftruncate(log_fd, file_size) != 0) {
        /* Cannot undo: start the next records on a line of their own. */
        file_size += (long long)done;
        if (write(log_fd, "\n", 1) == 1) file_size++;
      }
      out_len = 0;
      return;
    }
    done += (size_t)n;
  }
  file_size += (long long)out_len;
  out_len = 0;
}

static void rotate(void) {
  flush_out();
  if (log_fd < 0) return;
  if (max_files <= 1) {
    if (ftruncate(log_fd, 0) == 0) file_size = 0;
    return;
  }
  char from[PATH_MAX + 32], to[PATH_MAX + 32];
  for (long i = max_files - 1; i >= 2; i--) {
    snprintf(from, sizeof from, "%s.%ld", log_path, i - 1);
    snprintf(to, sizeof to, "%s.%ld", log_path, i);
    rename(from, to); /* ENOENT: fewer files so far */
  }
  snprintf(to, sizeof to, "%s.1", log_path);
  if (rename(log_path, to) != 0) return; /* keep appending to the current file */
  close(log_fd);
  log_fd = -1;
  open_log();
}

/* The length of the longest prefix of s[0..n) that does not end inside a UTF-8 sequence. */
static size_t utf8_boundary(const unsigned char *s, size_t n) {
  size_t i = n;
  for (int back = 0; back < 3 && i > 0; back++) {
    unsigned char c = s[i - 1];
    if ((c & 0xC0) != 0x80) {
      size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return n - (i - 1) >= need ? n : (i - 1 > 0 ? i - 1 : n);
    }
    i--;
  }
  return n;
}

/* The length of a valid UTF-8 sequence at s (n bytes available), or 0 if it is not one. */
static size_t utf8_valid(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}

static size_t put(char *dst, const char *src) {
  size_t n = strlen(src);
  memcpy(dst, src, n);
  return n;
}

/* Encodes one record at out + out_len, rotating first when it would not fit in the file. */
static void emit(const struct stream *s, const char *data, size_t n) {
  if (OUT_CAP - out_len < RECORD_MAX) flush_out();
  char *rec = out + out_len;
  char *p = rec;
  static const char hex[] = "0123456789abcdef";
  p += put(p, "{\"log\":\"");
  const unsigned char *u = (const unsigned char *)data;
  for (size_t i = 0; i < n;) {
    unsigned char c = u[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *p++ = (char)c;
      i++;
    } else if (c < 0x80) {
      *p++ = '\\';
      switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
          p += put(p, "u00");
          *p++ = hex[c >> 4];
          *p++ = hex[c & 15];
      }
      i++;
    } else {
      size_t len = utf8_valid(u + i, n - i);
      if (len == 0) {
        p += put(p, "\\ufffd");
        i++;
      } else {
        memcpy(p, u + i, len);
        p += len;
        i += len;
      }
    }
  }
  p += put(p, "\",\"stream\":\"");
  p += put(p, s->name);
  p += put(p, "\",\"time\":\"");
  p += put(p, time_text);
  p += put(p, "\"}\n");
  size_t rec_len = (size_t)(p - rec);
  if (max_size > 0 && file_size + (long long)(out_len + rec_len) > max_size && file_size + (long long)out_len > 0) {
    /* The records before this one go to the current file; this one starts the next. rotate()
       writes only out[0, out_len), so the record is still there, after them. */
    size_t at = out_len;
    rotate();
    memmove(out + out_len, out + at, rec_len);
  }
  out_len += rec_len;
}

/* The unfinished line, as a partial record (Docker's: "log" without a trailing newline). */
static void emit_pending(struct stream *s) {
  if (s->len == 0) return;
  emit(s, s->buf, s->len);
  s->len = 0;
}

static void feed(struct stream *s, const char *p, size_t n) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    if (s->len == 0 && nl && take <= MAX_LINE) {
      emit(s, p, take);
      p += take;
      n -= take;
      continue;
    }
    if (s->len == 0) s->since = now_ns(CLOCK_MONOTONIC);
    size_t room = MAX_LINE - s->len;
    size_t c = take < room ? take : room;
    memcpy(s->buf + s->len, p, c);
    s->len += c;
    p += c;
    n -= c;
    if (s->buf[s->len - 1] == '\n') {
      emit_pending(s);
    } else if (s->len == MAX_LINE) {
      size_t cut = utf8_boundary((const unsigned char *)s->buf, s->len);
      emit(s, s->buf, cut);
      memmove(s->buf, s->buf + cut, s->len - cut);
      s->len -= cut;
      s->since = now_ns(CLOCK_MONOTONIC);
    }
  }
}

/* One read from a stream. Returns false when it would block (or hit EOF). */
static bool read_once(struct stream *s) {
  if (s->eof) return false;
  ssize_t n = read(s->fd, read_buf, sizeof read_buf);
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && errno == EAGAIN) return false;
  if (n <= 0) {
    s->eof = true;
    return false;
  }
  stamp_time();
  feed(s, read_buf, (size_t)n);
  return true;
}

/* Everything the pipes hold now, partial lines included. */
static void drain(void) {
  for (bool more = true; more;) {
    more = false;
    for (int i = 0; i < 2; i++) more |= read_once(&streams[i]);
  }
  stamp_time();
  for (int i = 0; i < 2; i++) emit_pending(&streams[i]);
  flush_out();
}

static void write_state(void) {
  int fd = open(state_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;
  char text[64];
  int n = snprintf(text, sizeof text, "%ld %llu\n", (long)getpid(), flushes);
  bool ok = write(fd, text, (size_t)n) == n;
  close(fd);
  if (ok) rename(state_tmp, state_path);
  else unlink(state_tmp);
}

static long long parse_number(const char *key, const char *value, long long min) {
  char *end;
  errno = 0;
  long long n = strtoll(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || n < min) {
    fprintf(stderr, "ctrd-logger: invalid %s %s\n", key, value);
    exit(2);
  }
  return n;
}

static void parse_args(int argc, char **argv) {
  if ((argc - 1) % 2 != 0) {
    fprintf(stderr, "ctrd-logger: arguments come in key/value pairs\n");
    exit(2);
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *key = argv[i], *value = argv[i + 1];
    if (strcmp(key, "path") == 0) log_path = value;
    else if (strcmp(key, "max-size") == 0) max_size = parse_number(key, value, 0);
    else if (strcmp(key, "max-files") == 0) max_files = (long)parse_number(key, value, 1);
    else {
      fprintf(stderr, "ctrd-logger: unknown argument %s\n", key);
      exit(2);
    }
  }
  if (!log_path || log_path[0] != '/' || strlen(log_path) + 32 >= PATH_MAX) {
    fprintf(stderr, "ctrd-logger: path must be an absolute file path\n");
    exit(2);
  }
  snprintf(state_path, sizeof state_path, "%s.logger", log_path);
  snprintf(state_tmp, sizeof state_tmp, "%s.logger.tmp", log_path);
}

int main(int argc, char **argv) {
  parse_args(argc, argv);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  int sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  for (int i = 0; i < 2; i++) {
    int flags = fcntl(streams[i].fd, F_GETFL);
    if (flags < 0) streams[i].eof = true; /* not given: nothing to log on it */
    else fcntl(streams[i].fd, F_SETFL, flags | O_NONBLOCK);
  }

  open_log();
  write_state();
  /* Ready: the shim may create the container now. A log that would not open is retried at every
     write; the container must not be held back by it. */
  if (write(FD_READY, "r", 1) < 0) { /* no ready pipe: run by hand */ }
  close(FD_READY);

  while (!(streams[0].eof && streams[1].eof)) {
    flush_out(); /* before waiting, so readers see what has arrived */
    int timeout = -1;
    long long now = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 2; i++) {
      if (streams[i].len == 0) continue;
      long long left = streams[i].since + PARTIAL_WAIT_NS - now;
      int ms = left <= 0 ? 0 : (int)(left / 1000000) + 1;
      if (timeout < 0 || ms < timeout) timeout = ms;
    }
    struct pollfd fds[3] = {
        {.fd = streams[0].eof ? -1 : FD_STDOUT, .events = POLLIN},
        {.fd = streams[1].eof ? -1 : FD_STDERR, .events = POLLIN},
        {.fd = sig_fd, .events = POLLIN},
    };
    if (poll(fds, 3, timeout) < 0 && errno != EINTR) break;

    bool flush_requested = false, terminate = false;
    struct signalfd_siginfo info;
    while (sig_fd >= 0 && read(sig_fd, &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGUSR1) flush_requested = true;
      else terminate = true;
    }
    for (int i = 0; i < 2; i++)
      if (fds[i].revents) read_once(&streams[i]);

    if (flush_requested || terminate) {
      drain();
      if (flush_requested) {
        flushes++;
        write_state();
      }
      if (terminate) break;
      continue;
    }
    now = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 2; i++) {
      if (streams[i].len > 0 && now - streams[i].since >= PARTIAL_WAIT_NS) {
        stamp_time();
        emit_pending(&streams[i]);
      }
    }
  }
  stamp_time();
  for (int i = 0; i < 2; i++) emit_pending(&streams[i]);
  flush_out();
  unlink(state_path);
  return 0;
}
