/*
 * The object model's plumbing: the handle table, object lifetimes, per-handle event logs (sticky replay),
 * callback registrations with one dispatcher thread each, and the scheduler thread that delivers delayed
 * completion notifications.
 *
 * Locking: everything here runs under g_mu, except the callback invocation itself (the dispatcher drops g_mu
 * around cb()).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
fsystem *g_systems;

/* ---- threads ---- */

int spawn_thread(pthread_t *out, void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  sigset_t all, old;
  pthread_t tid;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 512 * 1024);
  /* New threads inherit the creator's mask: block every asynchronous signal so that Node's (or the host's)
   * handlers run on its own threads. */
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&tid, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc == 0 && out) *out = tid;
  return rc;
}

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fmt_time(sbuf *b, const struct timespec *ts) {
  struct tm tm;
  char buf[64];
  gmtime_r(&ts->tv_sec, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  sb_printf(b, "\"%s.%09ldZ\"", buf, (long)ts->tv_nsec);
}

/* ---- handle table ---- */

typedef struct hent {
  struct hent *next;
  uintptr_t v;
  int kind;
  void *obj;
} hent;

static hent *g_handles;
static uintptr_t g_next_handle = 0x7ac0000;

uintptr_t handle_add(int kind, void *obj) {
  hent *e = malloc(sizeof *e);
  if (!e) return 0;
  g_next_handle += 0x10; /* never reused while the library is loaded */
  e->v = g_next_handle;
  e->kind = kind;
  e->obj = obj;
  e->next = g_handles;
  g_handles = e;
  return e->v;
}

void *handle_lookup(uintptr_t v, int kind) {
  if (!v) return NULL;
  for (hent *e = g_handles; e; e = e->next)
    if (e->v == v) return e->kind == kind ? e->obj : NULL;
  return NULL;
}

void handle_remove(uintptr_t v) {
  for (hent **pp = &g_handles; *pp; pp = &(*pp)->next) {
    if ((*pp)->v == v) {
      hent *e = *pp;
      *pp = e->next;
      free(e);
      return;
    }
  }
}

int handle_count(void) {
  int n = 0;
  for (hent *e = g_handles; e; e = e->next) n++;
  return n;
}

void *handle_next(int kind, uintptr_t *cursor) {
  /* The table is a LIFO list; walk it by position after the entry whose value is *cursor. */
  hent *e = g_handles;
  if (*cursor) {
    while (e && e->v != *cursor) e = e->next;
    if (e) e = e->next;
  }
  for (; e; e = e->next) {
    if (e->kind == kind) {
      *cursor = e->v;
      return e->obj;
    }
  }
  return NULL;
}

/* ---- object lifetimes ---- */

void system_ref(fsystem *s) { s->refs++; }

void system_unref(fsystem *s) {
  if (--s->refs > 0) return;
  free(s->id);
  free(s->name);
  free(s->owner);
  free(s->system_type);
  free(s->runtime_os);
  free(s);
}

void process_ref(fprocess *p) { p->refs++; }

void process_unref(fprocess *p) {
  if (--p->refs > 0) return;
  fsystem *s = p->sys;
  free(p->image);
  free(p);
  if (s) system_unref(s);
}

static void event_free(event *e) {
  free(e->data);
  free(e);
}

static event *event_new(uint32_t type, int32_t status, const uint16_t *data) {
  event *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->type = type;
  e->status = status;
  if (data) {
    e->data = u16_dup_malloc(data);
    if (!e->data) {
      free(e);
      return NULL;
    }
  }
  return e;
}

static void reg_unref(freg *r) {
  if (--r->refs > 0) return;
  while (r->qhead) {
    event *e = r->qhead;
    r->qhead = e->next;
    event_free(e);
  }
  pthread_cond_destroy(&r->cv);
  free(r);
}

static fhandle *fhandle_new(int kind) {
  fhandle *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->kind = kind;
  h->value = handle_add(kind, h);
  if (!h->value) {
    free(h);
    return NULL;
  }
  return h;
}

fhandle *fhandle_new_system(fsystem *s) {
  fhandle *h = fhandle_new(K_SYSTEM);
  if (!h) return NULL;
  h->sys = s;
  system_ref(s);
  s->nhandles++;
  if (s->state == ST_STOPPED && s->exit_type) {
    char *data = system_exit_json(s);
    post_to_handle(h, HcsNotificationSystemExited, s->exit_status, data);
    free(data);
  }
  return h;
}

fhandle *fhandle_new_process(fprocess *p) {
  fhandle *h = fhandle_new(K_PROCESS);
  if (!h) return NULL;
  h->proc = p;
  process_ref(p);
  p->nhandles++;
  if (p->exited) {
    char *data = process_status_json(p);
    post_to_handle(h, HcsNotificationProcessExited, g_opt_process_exited_status, data);
    free(data);
  }
  return h;
}

void fhandle_close(fhandle *h) {
  handle_remove(h->value);
  for (freg *r = h->regs; r; r = r->next_on_handle) {
    r->h = NULL;
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
  }
  while (h->log_head) {
    event *e = h->log_head;
    h->log_head = e->next;
    event_free(e);
  }
  if (h->sys) {
    h->sys->nhandles--;
    system_unref(h->sys);
  }
  if (h->proc) {
    h->proc->nhandles--;
    process_unref(h->proc);
  }
  free(h);
}

/* ---- events ---- */

static void reg_enqueue(freg *r, const event *src) {
  if (r->stop) return;
  event *e = event_new(src->type, src->status, src->data);
  if (!e) return;
  if (r->qtail) r->qtail->next = e;
  else r->qhead = e;
  r->qtail = e;
  pthread_cond_broadcast(&r->cv);
}

void post_to_handle(fhandle *h, uint32_t type, int32_t status, const char *data_utf8) {
  uint16_t *data = data_utf8 ? utf8_to_u16_malloc(data_utf8) : NULL;
  event *e = event_new(type, status, data);
  free(data);
  if (!e) return;
  if (h->log_tail) h->log_tail->next = e;
  else h->log_head = e;
  h->log_tail = e;
  for (freg *r = h->regs; r; r = r->next_on_handle) reg_enqueue(r, e);
}

void post_system_exited(fsystem *s) {
  char *data = system_exit_json(s);
  uintptr_t cur = 0;
  fhandle *h;
  while ((h = handle_next(K_SYSTEM, &cur)))
    if (h->sys == s) post_to_handle(h, HcsNotificationSystemExited, s->exit_status, data);
  free(data);
}

void post_process_exited(fprocess *p) {
  char *data = process_status_json(p);
  uintptr_t cur = 0;
  fhandle *h;
  while ((h = handle_next(K_PROCESS, &cur)))
    if (h->proc == p) post_to_handle(h, HcsNotificationProcessExited, g_opt_process_exited_status, data);
  free(data);
}

void post_service_disconnect(void) {
  static const int kinds[] = {K_SYSTEM, K_PROCESS};
  for (size_t k = 0; k < 2; k++) {
    uintptr_t cur = 0;
    fhandle *h;
    while ((h = handle_next(kinds[k], &cur))) {
      event e = {NULL, HcsNotificationServiceDisconnect, 0, NULL};
      for (freg *r = h->regs; r; r = r->next_on_handle) reg_enqueue(r, &e);
    }
  }
}

char *process_status_json(fprocess *p) {
  sbuf b = {0};
  sb_printf(&b, "{\"ProcessId\":%u,\"Exited\":%s,\"ExitCode\":%u,\"LastWaitResult\":0}", (unsigned)p->pid,
            p->exited ? "true" : "false", p->exited ? (unsigned)p->exit_code : 0u);
  if (b.oom) {
    sb_free(&b);
    return NULL;
  }
  return b.p;
}

char *system_exit_json(fsystem *s) {
  sbuf b = {0};
  sb_printf(&b, "{\"Status\":%d,\"ExitType\":", s->exit_status);
  sb_jstr(&b, s->exit_type ? s->exit_type : "Unknown");
  sb_puts(&b, "}");
  if (b.oom) {
    sb_free(&b);
    return NULL;
  }
  return b.p;
}

/* ---- registrations ---- */

static void *reg_thread(void *arg) {
  freg *r = arg;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!r->stop && !r->qhead) pthread_cond_wait(&r->cv, &g_mu);
    if (r->stop) break;
    event *e = r->qhead;
    r->qhead = e->next;
    if (!r->qhead) r->qtail = NULL;
    r->running = 1;
    pthread_mutex_unlock(&g_mu);
    r->cb(e->type, r->ctx, e->status, e->data);
    pthread_mutex_lock(&g_mu);
    r->running = 0;
    pthread_cond_broadcast(&r->cv);
    event_free(e);
  }
  reg_unref(r);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

int32_t reg_register(fhandle *h, HCS_NOTIFICATION_CALLBACK cb, void *ctx, uintptr_t *out) {
  freg *r = calloc(1, sizeof *r);
  if (!r) return E_OUTOFMEMORY;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);
  r->cb = cb;
  r->ctx = ctx; /* an opaque value handed back verbatim, never dereferenced (hcsshim passes small ints) */
  r->h = h;
  r->refs = 1;
  r->value = handle_add(K_CALLBACK, r);
  if (!r->value) {
    reg_unref(r);
    return E_OUTOFMEMORY;
  }
  /* Replay the handle's log: sticky events that happened before this registration. */
  for (event *e = h->log_head; e; e = e->next) reg_enqueue(r, e);
  r->refs++; /* the dispatcher thread's */
  if (spawn_thread(&r->thread, reg_thread, r) != 0) {
    r->refs--;
    handle_remove(r->value);
    reg_unref(r);
    return E_OUTOFMEMORY;
  }
  r->thread_started = 1;
  r->next_on_handle = h->regs;
  h->regs = r;
  *out = r->value;
  return S_OK;
}

int32_t reg_unregister(uintptr_t v, int kind_of_owner, char *msg, size_t msglen) {
  freg *r = handle_lookup(v, K_CALLBACK);
  if (!r || (r->h && r->h->kind != kind_of_owner)) {
    snprintf(msg, msglen, "unknown callback handle 0x%lx", (unsigned long)v);
    return HR_INVALID_HANDLE;
  }
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
  if (r->running && !pthread_equal(pthread_self(), r->thread)) {
    int timeout = g_opt_unregister_timeout_ms;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout > 0) {
      dl.tv_sec += timeout / 1000;
      dl.tv_nsec += (long)(timeout % 1000) * 1000000L;
      if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    }
    r->refs++;
    while (r->running) {
      if (timeout <= 0) {
        pthread_cond_wait(&r->cv, &g_mu);
      } else if (pthread_cond_timedwait(&r->cv, &g_mu, &dl) == ETIMEDOUT && r->running) {
        reg_unref(r);
        snprintf(msg, msglen,
                 "a callback of this registration is still running after %d ms; the registration is stopped, "
                 "call Unregister again later and never from the thread the callback waits for",
                 timeout);
        return HR_TIMEOUT;
      }
    }
    /* Another Unregister may have completed while we waited. */
    if (!handle_lookup(v, K_CALLBACK)) {
      reg_unref(r);
      return S_OK;
    }
    reg_unref(r);
  }
  if (r->h) {
    for (freg **pp = &r->h->regs; *pp; pp = &(*pp)->next_on_handle) {
      if (*pp == r) {
        *pp = r->next_on_handle;
        break;
      }
    }
    r->h = NULL;
  }
  handle_remove(v);
  reg_unref(r);
  return S_OK;
}

/* ---- scheduler ---- */

typedef struct sitem {
  struct sitem *next;
  uint64_t due;
  void (*fn)(void *);
  void *arg;
} sitem;

static sitem *g_sched;
static int g_sched_running;
static pthread_cond_t g_sched_cv;

static void *sched_thread(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    if (!g_sched) {
      /* Idle: exit after a while so a quiet library holds no threads. */
      struct timespec dl;
      clock_gettime(CLOCK_MONOTONIC, &dl);
      dl.tv_sec += 2;
      if (pthread_cond_timedwait(&g_sched_cv, &g_mu, &dl) == ETIMEDOUT && !g_sched) break;
      continue;
    }
    uint64_t now = now_ms();
    if (g_sched->due > now) {
      uint64_t wait = g_sched->due - now;
      struct timespec dl;
      clock_gettime(CLOCK_MONOTONIC, &dl);
      dl.tv_sec += (time_t)(wait / 1000);
      dl.tv_nsec += (long)(wait % 1000) * 1000000L;
      if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&g_sched_cv, &g_mu, &dl);
      continue;
    }
    sitem *it = g_sched;
    g_sched = it->next;
    it->fn(it->arg);
    free(it);
  }
  g_sched_running = 0;
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

int schedule(int delay_ms, void (*fn)(void *), void *arg) {
  static int cv_ready;
  if (!cv_ready) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_sched_cv, &ca);
    pthread_condattr_destroy(&ca);
    cv_ready = 1;
  }
  sitem *it = calloc(1, sizeof *it);
  if (!it) return -1;
  it->due = now_ms() + (uint64_t)(delay_ms > 0 ? delay_ms : 0);
  it->fn = fn;
  it->arg = arg;
  sitem **pp = &g_sched;
  while (*pp && (*pp)->due <= it->due) pp = &(*pp)->next; /* stable: FIFO for equal due times */
  it->next = *pp;
  *pp = it;
  if (!g_sched_running) {
    if (spawn_thread(NULL, sched_thread, NULL) != 0) {
      *pp = it->next;
      free(it);
      return -1;
    }
    g_sched_running = 1;
  }
  pthread_cond_broadcast(&g_sched_cv);
  return 0;
}

typedef struct {
  uintptr_t handle;
  uint32_t type;
  int32_t status;
  char *data;
} completion;

static void fire_completion(void *arg) {
  completion *c = arg;
  fhandle *h = handle_lookup(c->handle, K_SYSTEM);
  if (h) post_to_handle(h, c->type, c->status, c->data);
  free(c->data);
  free(c);
}

void schedule_completion(uintptr_t handle, uint32_t type, int32_t status, const char *data_utf8) {
  completion *c = calloc(1, sizeof *c);
  if (!c) return;
  c->handle = handle;
  c->type = type;
  c->status = status;
  c->data = data_utf8 ? strdup(data_utf8) : NULL;
  if (schedule(g_opt_async_delay_ms, fire_completion, c) != 0) {
    /* No thread available: deliver through the handle log anyway (a registration's thread will run it). */
    fire_completion(c);
  }
}
