/* Internal declarations shared by the fake-vmcompute sources. Not part of the ABI. */
#ifndef FAKE_INTERNAL_H
#define FAKE_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "fake.h"

#define API __attribute__((visibility("default")))

/* ---- HRESULTs ---- */
#define HR(x) ((int32_t)(uint32_t)(x))
#define S_OK 0
#define E_FAIL HR(0x80004005)
#define E_POINTER HR(0x80004003)
#define E_INVALIDARG HR(0x80070057)
#define E_OUTOFMEMORY HR(0x8007000E)
#define HR_WIN32(n) HR(0x80070000u | ((uint32_t)(n) & 0xffffu))
#define HR_FILE_NOT_FOUND HR_WIN32(2)
#define HR_ACCESS_DENIED HR_WIN32(5)
#define HR_INVALID_HANDLE HR_WIN32(6)
#define HR_DIRECTORY HR_WIN32(267)
#define HR_NOT_FOUND HR_WIN32(1168)
#define HR_TIMEOUT HR_WIN32(1460)
#define VMC_TERMINATED_DURING_START HR(0xC0370100)
#define VMC_PENDING HR(0xC0370103)
#define VMC_INVALID_STATE HR(0xC0370105)
#define VMC_UNEXPECTED_EXIT HR(0xC0370106)
#define VMC_INVALID_JSON HR(0xC037010D)
#define VMC_SYSTEM_NOT_FOUND HR(0xC037010E)
#define VMC_ALREADY_EXISTS HR(0xC037010F)
#define VMC_ALREADY_STOPPED HR(0xC0370110)
#define HCS_PROCESS_ALREADY_STOPPED HR(0x8037011F)

/* ---- utf16.c: conversions and the tracked CoTaskMem allocator ---- */
char *u16_to_utf8(const uint16_t *s); /* malloc; NULL in → NULL out; lone surrogates → U+FFFD */
uint16_t *utf8_to_u16_cotask(const char *s);
uint16_t *utf8_to_u16_malloc(const char *s);
uint16_t *u16_dup_cotask(const uint16_t *s);
uint16_t *u16_dup_malloc(const uint16_t *s);
/* Stores a CoTaskMemAlloc'd copy of utf8 into *out when out != NULL. */
int32_t out_str(uint16_t **out, const char *utf8);

/* ---- json.c ---- */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval {
  jtype t;
  int b;
  double n;
  char *s;      /* J_STR (NUL-terminated, may contain NUL: see slen) */
  size_t slen;
  size_t len;   /* J_ARR / J_OBJ element count */
  struct jval **items;
  char **keys;  /* J_OBJ */
} jval;

jval *json_parse(const char *text, char *err, size_t errlen);
void json_free(jval *v);
const jval *json_get(const jval *obj, const char *key); /* case-insensitive, an exact match wins; NULL if none */
const char *json_str(const jval *v);                    /* the string, or NULL if not a string */
int json_truthy(const jval *v);                         /* true only for JSON true */
int json_int(const jval *v, long long *out);            /* 1 if an integral number */

/* ---- sha1.c ---- */
void sha1_two(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t out[20]);

/* ---- schema.c: field-by-field validation (unknown fields and wrong shapes are errors) ---- */
enum {
  SCHEMA_V1_CONTAINER = 1,
  SCHEMA_V2_COMPUTE_SYSTEM,
  SCHEMA_V1_PROCESS,
  SCHEMA_V2_PROCESS,
  SCHEMA_PROCESS_MODIFY,
  SCHEMA_PROPERTY_QUERY,
  SCHEMA_SYSTEM_QUERY
};
int schema_check(const jval *doc, int which, char *msg, size_t n); /* 1 if valid, else 0 and a message */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;
void sb_putn(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_jstr(sbuf *b, const char *s); /* a quoted, escaped JSON string; NULL → null */
const char *sb_cstr(sbuf *b);
void sb_free(sbuf *b);

/* ---- model (notify.c) ---- */
enum { ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPING, ST_STOPPED };
enum { K_SYSTEM = 1, K_PROCESS, K_CALLBACK };

typedef struct event {
  struct event *next;
  uint32_t type;
  int32_t status;
  uint16_t *data; /* malloc'd or NULL */
} event;

struct fprocess;

typedef struct fsystem {
  int refs;
  int listed; /* in the registry (g_systems) */
  struct fsystem *next;
  char *id, *name, *owner, *system_type, *runtime_os;
  int schema_major, schema_minor;
  int state;
  int terminate_on_close;
  int processes_created; /* HcsCreateProcess successes: the first one in an LCOW system is its init process */
  int nhandles;
  int32_t exit_status;
  const char *exit_type;
  struct fprocess *procs;
  struct timespec created_at, started_at;
  /* accumulated from reaped processes */
  uint64_t dead_user100ns, dead_kernel100ns;
  uint64_t peak_commit;
} fsystem;

typedef struct fprocess {
  int refs;
  fsystem *sys;
  struct fprocess *next; /* in sys->procs */
  int tracked;           /* still in sys->procs */
  pid_t pid;
  int exited, reaped;
  int exit_code;
  int nhandles;
  char *image;
  struct timespec started_at;
  /* stdio relay */
  int console;
  int master_fd; /* pty master while the relay owns it, else -1 */
  int wake_fd;   /* eventfd that wakes the relay, -1 if no relay */
  int relay_alive;
  int stdin_close_requested;
  int has_stdin;
} fprocess;

struct freg;
typedef struct fhandle {
  int kind; /* K_SYSTEM or K_PROCESS */
  uintptr_t value;
  fsystem *sys;   /* K_SYSTEM (ref) */
  fprocess *proc; /* K_PROCESS (ref) */
  event *log_head, *log_tail;
  struct freg *regs;
} fhandle;

typedef struct freg {
  int refs;
  uintptr_t value;
  fhandle *h; /* NULL once the handle is closed */
  struct freg *next_on_handle;
  HCS_NOTIFICATION_CALLBACK cb;
  void *ctx;
  event *qhead, *qtail;
  int running, stop, thread_started;
  pthread_t thread;
  pthread_cond_t cv;
} freg;

extern pthread_mutex_t g_mu; /* one lock for the whole model; never held while a callback runs */
extern fsystem *g_systems;

/* options */
extern int g_opt_async_delay_ms, g_opt_sync_completion, g_opt_shutdown_timeout_ms, g_opt_unregister_timeout_ms,
    g_opt_inject_async, g_opt_block_signal, g_opt_block_create, g_opt_block_create_process,
    g_opt_process_exited_status;
/* Calls parked by the blocking options wait on this (with g_mu); broadcast on every exit and option change. */
extern pthread_cond_t g_block_cv;

/* handle table */
uintptr_t handle_add(int kind, void *obj);
void *handle_lookup(uintptr_t v, int kind); /* NULL if absent or of another kind */
void handle_remove(uintptr_t v);
int handle_count(void);
/* iterate handles of a kind: returns the next object after *cursor (0 = start) */
void *handle_next(int kind, uintptr_t *cursor);

fhandle *fhandle_new_system(fsystem *s);
fhandle *fhandle_new_process(fprocess *p);
void fhandle_close(fhandle *h); /* removes from the table, stops its registrations, frees */

void system_ref(fsystem *s);
void system_unref(fsystem *s);
void process_ref(fprocess *p);
void process_unref(fprocess *p);

/* events (g_mu held) */
void post_to_handle(fhandle *h, uint32_t type, int32_t status, const char *data_utf8);
void post_system_exited(fsystem *s);   /* to every handle of s */
void post_process_exited(fprocess *p); /* to every handle of p */
char *process_status_json(fprocess *p); /* malloc */
char *system_exit_json(fsystem *s);     /* malloc */
void post_service_disconnect(void);

int32_t reg_register(fhandle *h, HCS_NOTIFICATION_CALLBACK cb, void *ctx, uintptr_t *out);
int32_t reg_unregister(uintptr_t v, int kind_of_owner, char *msg, size_t msglen);

/* scheduler (g_mu held when scheduling; fn runs with g_mu held on the scheduler thread) */
int schedule(int delay_ms, void (*fn)(void *arg), void *arg);
void schedule_completion(uintptr_t handle, uint32_t type, int32_t status, const char *data_utf8);

/* threads: create detached, all async signals blocked, small stack */
int spawn_thread(pthread_t *out, void *(*fn)(void *), void *arg);

/* ---- process.c ---- */
typedef struct {
  char **argv;
  char **envp; /* NULL → inherit */
  char *exe;   /* resolved path */
  char *cwd;   /* NULL → inherit */
  int want_in, want_out, want_err, console;
  unsigned rows, cols;
} spawn_req;

int cmdline_to_argv(const char *cmdline, char ***argv_out); /* CommandLineToArgvW rules; returns argc or -1 */
void free_strv(char **v);
char *resolve_exe(const char *file, char **envp); /* malloc; NULL if not found (errno set) */
/* Forks and execs (g_mu NOT held). caller[] gets the caller's stdin/stdout/stderr fds (-1 if none); *relay is an
 * opaque relay description to hand to process_start_threads or process_discard_relay. */
int32_t process_spawn(const spawn_req *rq, pid_t *pid, int caller[3], void **relay, char *msg, size_t msglen);
int process_start_threads(fprocess *p, void *relay); /* g_mu held */
void process_discard_relay(void *relay);
void system_on_process_exit(fprocess *p); /* exports.c, g_mu held */
void system_signal_all(fsystem *s, int sig); /* g_mu held; process groups of live processes */
void process_request_stdin_close(fprocess *p);
int process_resize(fprocess *p, unsigned rows, unsigned cols);
void process_wake_relay(fprocess *p);
int wait_all_reaped(int timeout_ms); /* g_mu NOT held */

/* /proc sampling */
typedef struct {
  uint64_t user100ns, kernel100ns, rss_bytes, shared_bytes, vsize_bytes;
  uint64_t read_bytes, write_bytes, read_count, write_count;
  char comm[64];
  char state; /* R, S, D, T, t, Z, … */
} procstat;
int procstat_read(pid_t pid, procstat *ps);

/* time */
void fmt_time(sbuf *b, const struct timespec *ts); /* RFC3339Nano UTC */
uint64_t now_ms(void);

#endif
