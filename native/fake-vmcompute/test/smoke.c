/* C-level smoke test of fake-vmcompute (run by `make check`). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "../fake.h"

static int failures;
#define CHECK(cond, ...)                                      \
  do {                                                        \
    if (!(cond)) {                                            \
      failures++;                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                           \
      fprintf(stderr, "\n");                                  \
    }                                                         \
  } while (0)

static uint16_t *W(const char *s) { /* ASCII → UTF-16, leaked on purpose (test only) */
  size_t n = strlen(s);
  uint16_t *w = calloc(n + 1, 2);
  for (size_t i = 0; i < n; i++) w[i] = (unsigned char)s[i];
  return w;
}

static char *A(const uint16_t *w) {
  if (!w) return strdup("(null)");
  size_t n = 0;
  while (w[n]) n++;
  char *s = malloc(n + 1);
  for (size_t i = 0; i <= n; i++) s[i] = (char)w[i];
  return s;
}

static char *take(uint16_t *w) {
  char *s = A(w);
  CoTaskMemFree(w);
  return s;
}

/* events */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
typedef struct {
  uint32_t type;
  uintptr_t ctx;
  int32_t status;
  pthread_t thread;
} ev;
static ev evs[256];
static int nev;

static void cb(uint32_t type, void *ctx, int32_t status, const uint16_t *data) {
  (void)data;
  pthread_mutex_lock(&mu);
  if (nev < 256) evs[nev++] = (ev){type, (uintptr_t)ctx, status, pthread_self()};
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static int wait_event(uintptr_t ctx, uint32_t type, int32_t *status, int ms) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ms / 1000;
  dl.tv_nsec += (ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&mu);
  for (;;) {
    for (int i = 0; i < nev; i++) {
      if (evs[i].ctx == ctx && evs[i].type == type) {
        if (status) *status = evs[i].status;
        int ok = !pthread_equal(evs[i].thread, pthread_self());
        evs[i].ctx = (uintptr_t)-1; /* consume */
        pthread_mutex_unlock(&mu);
        return ok ? 1 : -1;
      }
    }
    if (pthread_cond_timedwait(&cv, &mu, &dl) != 0) break;
  }
  pthread_mutex_unlock(&mu);
  return 0;
}

static char *read_all(int fd) {
  static char buf[65536];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
  buf[n] = 0;
  close(fd);
  return buf;
}

typedef struct {
  HCS_PROCESS proc;
  HCS_PROCESS_INFORMATION info;
  int32_t hr;
  char *result;
} proc_t;

static proc_t run(HCS_SYSTEM sys, const char *params) {
  proc_t p;
  uint16_t *res = NULL;
  memset(&p, 0, sizeof p);
  p.hr = HcsCreateProcess(sys, W(params), &p.info, &p.proc, &res);
  p.result = take(res);
  return p;
}

static int exit_code(HCS_PROCESS proc, uintptr_t ctx) {
  HCS_CALLBACK c = NULL;
  int32_t st;
  HcsRegisterProcessCallback(proc, cb, (void *)ctx, &c);
  int got = wait_event(ctx, HcsNotificationProcessExited, &st, 10000);
  CHECK(got == 1, "ProcessExited for ctx %lu (got %d)", (unsigned long)ctx, got);
  CHECK(HcsUnregisterProcessCallback(c) == 0, "unregister");
  uint16_t *props = NULL, *res = NULL;
  CHECK(HcsGetProcessProperties(proc, &props, &res) == 0, "props");
  char *s = take(props);
  CoTaskMemFree(res);
  int code = -1;
  char *e = strstr(s, "\"ExitCode\":");
  if (e) code = atoi(e + 11);
  CHECK(strstr(s, "\"Exited\":true") != NULL, "%s", s);
  free(s);
  return code;
}

static int count_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) >= 0) n++;
  return n;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* like Node */
  int fds_at_start = count_fds();
  uint16_t *res = NULL;
  int32_t hr, st;
  int code;
  HCS_SYSTEM sys = NULL;
  HCS_CALLBACK scb = NULL;

  /* bad JSON → 0xC037010D with a ResultError */
  hr = HcsCreateComputeSystem(W("bad"), W("{\"SchemaVersion\":"), NULL, &sys, &res);
  char *r = take(res);
  CHECK(hr == (int32_t)0xC037010D && sys == NULL, "hr %x", hr);
  CHECK(strstr(r, "\"Error\":-1070137075") && strstr(r, "ErrorEvents"), "%s", r);
  free(r);

  /* create: pending, then SystemCreateCompleted from another thread, replayed to a late registration */
  const char *doc =
      "{\"Owner\":\"smoke\",\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"Container\":{\"Storage\":{"
      "\"Layers\":[{\"Id\":\"b6f5c1a2-0000-4000-8000-000000000001\",\"Path\":\"C:\\\\layers\\\\base\"}],"
      "\"Path\":\"\\\\\\\\?\\\\Volume{0b6c9a8e-2a2c-4f0e-9b7a-5f1f3b7a1c11}\\\\\"}},"
      "\"ShouldTerminateOnLastHandleClosed\":true}";
  res = NULL;
  hr = HcsCreateComputeSystem(W("c1"), W(doc), NULL, &sys, &res);
  CHECK(hr == (int32_t)0xC0370103 && sys != NULL && res == NULL, "create hr %x", hr);
  usleep(20000);
  CHECK(HcsRegisterComputeSystemCallback(sys, cb, (void *)1, &scb) == 0, "register");
  CHECK(wait_event(1, HcsNotificationSystemCreateCompleted, &st, 2000) == 1 && st == 0, "create completed");
  uint16_t *last = NULL;
  CHECK(FakeGetLastCreateDocument(&last) == 0, "last doc");
  r = take(last);
  CHECK(strcmp(r, doc) == 0, "%s", r);
  free(r);
  hr = HcsCreateComputeSystem(W("c1"), W(doc), NULL, &(HCS_SYSTEM){0}, &res);
  CHECK(hr == (int32_t)0xC037010F, "dup %x", hr);
  CoTaskMemFree(res);
  res = NULL;
  hr = HcsStartComputeSystem(sys, W(""), &res);
  CHECK(hr == (int32_t)0xC0370103, "start %x", hr);
  CHECK(wait_event(1, HcsNotificationSystemStartCompleted, &st, 2000) == 1 && st == 0, "start completed");
  hr = HcsStartComputeSystem(sys, W(""), &res);
  CHECK(hr == (int32_t)0xC0370105, "start twice %x", hr);
  CoTaskMemFree(res);
  res = NULL;

  /* a process with stdout, exit code, exit replayed after the fact */
  proc_t p = run(sys, "{\"CommandLine\":\"sh -c \\\"echo hello; echo err >&2; exit 3\\\"\",\"CreateStdOutPipe\":true,"
                      "\"CreateStdErrPipe\":true,\"ConsoleSize\":[0,0]}");
  CHECK(p.hr == 0, "create process %x %s", p.hr, p.result);
  CHECK(p.info.ProcessId > 0 && p.info.StdInput == NULL && p.info.StdOutput && p.info.StdError, "info");
  CHECK(strcmp(read_all((int)(intptr_t)p.info.StdOutput), "hello\n") == 0, "stdout");
  CHECK(strcmp(read_all((int)(intptr_t)p.info.StdError), "err\n") == 0, "stderr");
  usleep(50000);
  CHECK(exit_code(p.proc, 10) == 3, "exit 3");
  CHECK(HcsCloseProcess(p.proc) == 0, "close");
  CHECK(HcsCloseProcess(p.proc) == (int32_t)0x80070006, "double close");

  /* CommandLineToArgvW */
  p = run(sys, "{\"CommandLine\":\"printf [%s] a \\\"b c\\\" d\\\\\\\"e \\\"\\\" f\\\\\\\\g \\\"h\\\\\\\\\\\"\","
               "\"CreateStdOutPipe\":true}");
  CHECK(p.hr == 0, "printf %x %s", p.hr, p.result);
  char *out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "[a][b c][d\"e][][f\\\\g][h\\]") == 0, "argv: %s", out);
  CHECK(exit_code(p.proc, 11) == 0, "printf exit");
  HcsCloseProcess(p.proc);

  /* children get exactly fds 0-2 */
  p = run(sys, "{\"CommandLine\":\"sh -c \\\"ls /proc/$$/fd\\\"\",\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true}");
  CHECK(p.hr == 0, "ls fds %x %s", p.hr, p.result);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "0\n1\n2\n") == 0, "child fds: %s", out);
  close((int)(intptr_t)p.info.StdInput);
  CHECK(exit_code(p.proc, 21) == 0, "ls exit");
  HcsCloseProcess(p.proc);

  /* environment + working directory */
  p = run(sys, "{\"CommandLine\":\"sh -c \\\"echo $FOO; pwd\\\"\",\"WorkingDirectory\":\"/tmp\","
               "\"Environment\":{\"FOO\":\"bar baz\",\"PATH\":\"/usr/bin:/bin\"},\"CreateStdOutPipe\":true}");
  CHECK(p.hr == 0, "env %x %s", p.hr, p.result);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "bar baz\n/tmp\n") == 0, "env: %s", out);
  CHECK(exit_code(p.proc, 12) == 0, "env exit");
  HcsCloseProcess(p.proc);

  /* a Windows container takes no LCOW fields (strict schema: unknown to its guest) */
  p = run(sys, "{\"CommandArgs\":[\"sh\"],\"OCISpecification\":{\"ociVersion\":\"1.0.2\",\"process\":{}}}");
  CHECK(p.hr == (int32_t)0xC037010D, "lcow fields on a Windows container %x", p.hr);
  free(p.result);

  /* stdin relay and CloseHandle StdIn while the caller still holds its end */
  p = run(sys, "{\"CommandLine\":\"cat\",\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true}");
  CHECK(p.hr == 0, "cat %x %s", p.hr, p.result);
  CHECK(write((int)(intptr_t)p.info.StdInput, "abc", 3) == 3, "write");
  hr = HcsModifyProcess(p.proc, W("{\"Operation\":\"CloseHandle\",\"CloseHandle\":{\"Handle\":\"StdIn\"}}"), &res);
  CHECK(hr == 0, "modify %x", hr);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "abc") == 0, "cat: %s", out);
  CHECK(exit_code(p.proc, 13) == 0, "cat exit");
  close((int)(intptr_t)p.info.StdInput);
  hr = HcsModifyProcess(p.proc, W("{\"Operation\":\"CloseHandle\",\"CloseHandle\":{\"Handle\":\"StdIn\"}}"), &res);
  CHECK(hr == (int32_t)0xC0370105, "modify after exit %x", hr);
  CoTaskMemFree(res);
  res = NULL;
  HcsCloseProcess(p.proc);

  /* signals: CtrlShutdown → 143, CtrlC → 130, terminate → 137, second system handle + OpenProcess */
  p = run(sys, "{\"CommandLine\":\"sleep 30\"}");
  CHECK(p.hr == 0, "sleep %x", p.hr);
  hr = HcsSignalProcess(p.proc, W("{\"Signal\":15}"), &res);
  CHECK(hr == (int32_t)0xC037010D, "a number to a Windows guest %x", hr);
  CoTaskMemFree(res);
  res = NULL;
  hr = HcsSignalProcess(p.proc, W("{\"Signal\":\"CtrlShutdown\"}"), &res);
  CHECK(hr == 0, "signal %x", hr);
  CHECK(exit_code(p.proc, 14) == 143, "CtrlShutdown → 143");
  hr = HcsSignalProcess(p.proc, W("{\"Signal\":\"CtrlShutdown\"}"), &res);
  CHECK(hr == (int32_t)0xC0370105, "signal exited %x", hr);
  CoTaskMemFree(res);
  res = NULL;
  HcsCloseProcess(p.proc);
  p = run(sys, "{\"CommandLine\":\"sleep 30\"}");
  hr = HcsSignalProcess(p.proc, W("{\"Signal\":\"CtrlC\"}"), &res);
  CHECK(exit_code(p.proc, 15) == 130, "CtrlC → 130");
  HcsCloseProcess(p.proc);
  p = run(sys, "{\"CommandLine\":\"sleep 30\"}");
  HCS_SYSTEM sys2 = NULL;
  HCS_PROCESS p2 = NULL;
  CHECK(HcsOpenComputeSystem(W("c1"), &sys2, &res) == 0 && sys2 && sys2 != sys, "open");
  CHECK(HcsOpenProcess(sys2, p.info.ProcessId, &p2, &res) == 0 && p2, "open process");
  CHECK(HcsTerminateProcess(p2, &res) == 0, "terminate");
  CHECK(exit_code(p.proc, 16) == 137, "SIGKILL → 137");
  CHECK(exit_code(p2, 17) == 137, "second handle sees the exit");
  CHECK(HcsTerminateProcess(p2, &res) == (int32_t)0x8037011F, "terminate exited");
  CoTaskMemFree(res);
  res = NULL;
  HcsCloseProcess(p2);
  HcsCloseProcess(p.proc);
  CHECK(HcsOpenProcess(sys2, 999999, &p2, &res) == (int32_t)0x80070490, "open unknown pid");
  CoTaskMemFree(res);
  res = NULL;

  /* console: pty with ConsoleSize, resize */
  p = run(sys, "{\"CommandLine\":\"sh -c \\\"stty size; tty >/dev/null && echo tty\\\"\",\"EmulateConsole\":true,"
               "\"CreateStdOutPipe\":true,\"ConsoleSize\":[30,100]}");
  CHECK(p.hr == 0, "console %x %s", p.hr, p.result);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "30 100\r\ntty\r\n") == 0, "console: %s", out);
  CHECK(exit_code(p.proc, 18) == 0, "console exit");
  HcsCloseProcess(p.proc);

  /* not found */
  CHECK(HcsCreateProcess(sys, W("{\"CommandLine\":\"/nonexistent/x\"}"), &p.info, &p.proc, &res) == (int32_t)0x80070002,
        "enoent");
  CoTaskMemFree(res);
  res = NULL;

  /* properties */
  p = run(sys, "{\"CommandLine\":\"sleep 30\"}");
  uint16_t *props = NULL;
  CHECK(HcsGetComputeSystemProperties(sys, W("{\"PropertyTypes\":[\"ProcessList\",\"Statistics\"]}"), &props, &res) ==
            0,
        "props");
  r = take(props);
  CHECK(strstr(r, "\"State\":\"Running\"") && strstr(r, "\"ImageName\":\"sleep\"") && strstr(r, "Uptime100ns"), "%s",
        r);
  free(r);
  CHECK(HcsEnumerateComputeSystems(W("{\"Owners\":[\"smoke\"]}"), &props, &res) == 0, "enum");
  r = take(props);
  CHECK(r[0] == '[' && strstr(r, "\"Id\":\"c1\""), "%s", r);
  free(r);
  CHECK(HcsEnumerateComputeSystems(W("{\"Owners\":[\"nobody\"]}"), &props, &res) == 0, "enum");
  r = take(props);
  CHECK(strcmp(r, "[]") == 0, "%s", r);
  free(r);

  /* injection */
  FakeInjectFailure(W("HcsStartComputeSystem"), (int32_t)0x80070005, NULL);
  HCS_SYSTEM sys3;
  CHECK(HcsCreateComputeSystem(W("c2"), W("{\"SystemType\":\"Container\",\"Name\":\"c2\",\"Layers\":[{\"ID\":\"b6f5c1a2-0000-4000-8000-"
                                          "000000000001\",\"Path\":\"C:\\\\layers\\\\base\"}],\"VolumePath\":"
                                          "\"\\\\\\\\?\\\\Volume{0b6c9a8e-2a2c-4f0e-9b7a-5f1f3b7a1c11}\"}"), NULL,
                               &sys3, &res) == (int32_t)0xC0370103,
        "create v1");
  CHECK(HcsStartComputeSystem(sys3, W(""), &res) == (int32_t)0x80070005 && res, "injected");
  r = take(res);
  res = NULL;
  CHECK(strstr(r, "injected failure for HcsStartComputeSystem") != NULL, "%s", r);
  free(r);
  HcsCloseComputeSystem(sys3);

  /* shutdown: processes die, SystemExited to both handles */
  HCS_CALLBACK scb2;
  CHECK(HcsRegisterComputeSystemCallback(sys2, cb, (void *)2, &scb2) == 0, "register 2");
  hr = HcsShutdownComputeSystem(sys, W(""), &res);
  CHECK(hr == (int32_t)0xC0370103, "shutdown %x", hr);
  CHECK(wait_event(1, HcsNotificationSystemExited, &st, 5000) == 1, "exited 1");
  CHECK(wait_event(2, HcsNotificationSystemExited, &st, 5000) == 1, "exited 2");
  CHECK(exit_code(p.proc, 19) == 143, "shutdown SIGTERM");
  HcsCloseProcess(p.proc);
  CHECK(HcsShutdownComputeSystem(sys, W(""), &res) == (int32_t)0xC0370110, "already stopped");
  CoTaskMemFree(res);
  res = NULL;
  CHECK(HcsUnregisterComputeSystemCallback(scb) == 0, "unreg");
  CHECK(HcsUnregisterComputeSystemCallback(scb2) == 0, "unreg2");
  CHECK(HcsUnregisterComputeSystemCallback(scb2) == (int32_t)0x80070006, "unreg twice");
  HcsCloseComputeSystem(sys);
  HcsCloseComputeSystem(sys2);
  CHECK(HcsOpenComputeSystem(W("c1"), &sys2, &res) == (int32_t)0xC037010E, "gone");
  CoTaskMemFree(res);
  res = NULL;

  /* a second system: console stdin, resize, pause/resume, shutdown escalation, crash, last-handle close */
  HCS_SYSTEM s3 = NULL;
  HCS_CALLBACK c3 = NULL;
  CHECK(HcsCreateComputeSystem(W("c3"), W(doc), NULL, &s3, &res) == (int32_t)0xC0370103, "create c3");
  CHECK(HcsRegisterComputeSystemCallback(s3, cb, (void *)3, &c3) == 0, "register c3");
  CHECK(HcsStartComputeSystem(s3, NULL, &res) == (int32_t)0xC0370103, "start c3");
  CHECK(wait_event(3, HcsNotificationSystemStartCompleted, &st, 2000) == 1, "c3 started");

  p = run(s3, "{\"CommandLine\":\"cat\",\"EmulateConsole\":true,\"CreateStdInPipe\":true,\"CreateStdOutPipe\":true}");
  CHECK(p.hr == 0, "console cat %x %s", p.hr, p.result);
  CHECK(write((int)(intptr_t)p.info.StdInput, "hi\n", 3) == 3, "write");
  usleep(100000);
  hr = HcsModifyProcess(p.proc, W("{\"Operation\":\"CloseHandle\",\"CloseHandle\":{\"Handle\":\"StdIn\"}}"), &res);
  CHECK(hr == 0, "close console stdin %x", hr);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "hi\r\nhi\r\n") == 0, "console cat: '%s'", out);
  code = exit_code(p.proc, 30);
  CHECK(code == 0, "console cat exit %d", code);
  close((int)(intptr_t)p.info.StdInput);
  HcsCloseProcess(p.proc);

  p = run(s3, "{\"CommandLine\":\"sh -c \\\"sleep 0.3; stty size\\\"\",\"EmulateConsole\":true,\"CreateStdOutPipe\":true}");
  hr = HcsModifyProcess(p.proc, W("{\"Operation\":\"ConsoleSize\",\"ConsoleSize\":{\"Height\":40,\"Width\":120}}"), &res);
  CHECK(hr == 0, "resize %x", hr);
  out = read_all((int)(intptr_t)p.info.StdOutput);
  CHECK(strcmp(out, "40 120\r\n") == 0, "resized: '%s'", out);
  CHECK(exit_code(p.proc, 31) == 0, "resize exit");
  HcsCloseProcess(p.proc);

  p = run(s3, "{\"CommandLine\":\"sh -c \\\"trap '' TERM; sleep 30\\\"\"}");
  CHECK(p.hr == 0, "trap %x %s", p.hr, p.result);
  usleep(200000); /* let sh install the trap */
  CHECK(HcsPauseComputeSystem(s3, W(""), &res) == (int32_t)0xC0370103, "pause");
  CHECK(wait_event(3, HcsNotificationSystemPauseCompleted, &st, 2000) == 1, "paused");
  CHECK(HcsCreateProcess(s3, W("{\"CommandLine\":\"true\"}"), &(HCS_PROCESS_INFORMATION){0}, &(HCS_PROCESS){0}, &res) ==
            (int32_t)0xC0370105,
        "create while paused");
  CoTaskMemFree(res);
  res = NULL;
  char path[64], stat[256] = "";
  snprintf(path, sizeof path, "/proc/%u/stat", p.info.ProcessId);
  int stopped = 0;
  for (int i = 0; i < 100 && !stopped; i++) { /* D (in exec) turns into T shortly */
    FILE *fp = fopen(path, "r");
    stopped = fp && fgets(stat, sizeof stat, fp) && strstr(stat, ") T ");
    if (fp) fclose(fp);
    if (!stopped) usleep(10000);
  }
  CHECK(stopped, "stopped: %s", stat);
  CHECK(HcsResumeComputeSystem(s3, W(""), &res) == (int32_t)0xC0370103, "resume");
  CHECK(wait_event(3, HcsNotificationSystemResumeCompleted, &st, 2000) == 1, "resumed");
  FakeSetOption(W("ShutdownTimeoutMs"), 200);
  CHECK(HcsShutdownComputeSystem(s3, W(""), &res) == (int32_t)0xC0370103, "shutdown c3");
  CHECK(wait_event(3, HcsNotificationSystemExited, &st, 5000) == 1 && st == 0, "escalated exit");
  code = exit_code(p.proc, 32);
  CHECK(code == 137, "escalated to SIGKILL: %d", code);
  HcsCloseProcess(p.proc);
  HcsUnregisterComputeSystemCallback(c3);
  HcsCloseComputeSystem(s3);

  CHECK(HcsCreateComputeSystem(W("c4"), W(doc), NULL, &s3, &res) == (int32_t)0xC0370103, "create c4");
  CHECK(HcsRegisterComputeSystemCallback(s3, cb, (void *)4, &c3) == 0, "register c4");
  HcsStartComputeSystem(s3, NULL, &res);
  CHECK(wait_event(4, HcsNotificationSystemStartCompleted, &st, 2000) == 1, "c4 started");
  CHECK(FakeCrashComputeSystem(W("c4"), 0) == 0, "crash");
  CHECK(wait_event(4, HcsNotificationSystemExited, &st, 5000) == 1 && st == (int32_t)0xC0370106, "crash exit %x", st);
  HcsUnregisterComputeSystemCallback(c3);
  HcsCloseComputeSystem(s3);

  CHECK(HcsCreateComputeSystem(W("c5"), W(doc), NULL, &s3, &res) == (int32_t)0xC0370103, "create c5");
  HcsStartComputeSystem(s3, NULL, &res);
  usleep(20000);
  p = run(s3, "{\"CommandLine\":\"sleep 30\"}");
  HCS_SYSTEM s5b = NULL;
  HCS_PROCESS p5b = NULL;
  CHECK(HcsOpenComputeSystem(W("c5"), &s5b, &res) == 0, "open c5");
  CHECK(HcsOpenProcess(s5b, p.info.ProcessId, &p5b, &res) == 0, "open p5");
  HcsCloseProcess(p.proc);
  HcsCloseComputeSystem(s3);
  HcsCloseComputeSystem(s5b); /* last handle + ShouldTerminateOnLastHandleClosed → killed */
  CHECK(exit_code(p5b, 33) == 137, "terminated on last handle close");
  HcsCloseProcess(p5b);
  CHECK(HcsOpenComputeSystem(W("c5"), &s5b, &res) == (int32_t)0xC037010E, "c5 gone");
  CoTaskMemFree(res);
  res = NULL;

  FakeReset();
  CHECK(FakeGetOpenHandles() == 0, "handles %d", FakeGetOpenHandles());
  CHECK(FakeGetLiveAllocations() == 0, "allocations %d", FakeGetLiveAllocations());
  usleep(100000); /* relay threads close their fds once the last process is reaped */
  CHECK(count_fds() == fds_at_start, "fds %d → %d", fds_at_start, count_fds());
  CoTaskMemFree(W("x"));
  CHECK(FakeGetInvalidFrees() == 1, "invalid frees");
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("smoke: ok\n");
  return 0;
}
