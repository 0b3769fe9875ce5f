/* Concurrency stress (make stress): 8 threads × 25 processes with callbacks, stdin close, terminate and
 * unregister racing the exits. Every exit must be delivered; no handles or allocations may remain. Build it
 * with -fsanitize=thread (CFLAGS) to look for races. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include "../fake.h"
static uint16_t *W(const char *s) { size_t n = strlen(s); uint16_t *w = calloc(n + 1, 2); for (size_t i = 0; i < n; i++) w[i] = (unsigned char)s[i]; return w; }
static atomic_int exits, calls, missed;
static atomic_int seen[8];
static void cb(uint32_t type, void *ctx, int32_t status, const uint16_t *data) {
  (void)ctx; (void)status; (void)data;
  atomic_fetch_add(&calls, 1);
  if (type == HcsNotificationProcessExited) { atomic_fetch_add(&exits, 1); atomic_fetch_add(&seen[(long)ctx], 1); }
  if (rand() % 4 == 0) usleep(1000);
}
static HCS_SYSTEM sys;
static void *worker(void *arg) {
  long id = (long)arg;
  uint16_t *params = W("{\"CommandLine\":\"sh -c \\\"echo x; exit 2\\\"\",\"CreateStdOutPipe\":true,\"CreateStdInPipe\":true}");
  for (int i = 0; i < 25; i++) {
    HCS_PROCESS_INFORMATION info; HCS_PROCESS p; uint16_t *res = NULL;
    int32_t hr = HcsCreateProcess(sys, params, &info, &p, &res);
    if (hr) { printf("create %x\n", hr); CoTaskMemFree(res); continue; }
    HCS_CALLBACK c;
    if ((i + id) % 3) usleep(rand() % 2000);
    HcsRegisterProcessCallback(p, cb, (void *)id, &c);
    char buf[64];
    while (read((int)(intptr_t)info.StdOutput, buf, sizeof buf) > 0) {}
    close((int)(intptr_t)info.StdOutput);
    if (i % 2) close((int)(intptr_t)info.StdInput);
    else { HcsModifyProcess(p, W("{\"Operation\":\"CloseHandle\",\"CloseHandle\":{\"Handle\":\"All\"}}"), &res); CoTaskMemFree(res); res = NULL; close((int)(intptr_t)info.StdInput); }
    if (i % 5 == 0) { HcsTerminateProcess(p, &res); CoTaskMemFree(res); res = NULL; }
    uint16_t *props = NULL;
    HcsGetProcessProperties(p, &props, &res); CoTaskMemFree(props);
    if (rand() % 2) usleep(rand() % 3000);
    int waited = 0;
    while (atomic_load(&seen[id]) < i + 1 && waited < 3000) { usleep(1000); waited++; }
    if (atomic_load(&seen[id]) < i + 1) { atomic_fetch_add(&missed, 1); atomic_store(&seen[id], i + 1); }
    int32_t u = HcsUnregisterProcessCallback(c);
    if (u) printf("unreg %x\n", u);
    HcsCloseProcess(p);
  }
  return NULL;
}
int main(void) {
  signal(SIGPIPE, SIG_IGN);
  uint16_t *res = NULL;
  HcsCreateComputeSystem(W("stress"), W("{\"SystemType\":\"Container\",\"Layers\":[{\"ID\":\"b6f5c1a2-0000-4000-8000-000000000001\","
                                   "\"Path\":\"C:\\\\layers\\\\base\"}],\"VolumePath\":"
                                   "\"\\\\\\\\?\\\\Volume{0b6c9a8e-2a2c-4f0e-9b7a-5f1f3b7a1c11}\"}"), NULL, &sys, &res);
  HcsStartComputeSystem(sys, NULL, &res);
  usleep(10000);
  pthread_t t[8];
  for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  uint16_t *props = NULL;
  HcsGetComputeSystemProperties(sys, W("{\"PropertyTypes\":[\"ProcessList\",\"Statistics\"]}"), &props, &res); CoTaskMemFree(props);
  HcsTerminateComputeSystem(sys, NULL, &res);
  usleep(100000);
  HcsCloseComputeSystem(sys);
  FakeReset();
  usleep(200000);
  int ok = atomic_load(&missed) == 0 && atomic_load(&exits) == 200 && FakeGetOpenHandles() == 0 &&
           FakeGetLiveAllocations() == 0 && FakeGetInvalidFrees() == 0;
  printf("stress: %s missed=%d exits=%d calls=%d handles=%d allocs=%d invalid=%d\n", ok ? "ok" : "FAILED",
         atomic_load(&missed), atomic_load(&exits), atomic_load(&calls), FakeGetOpenHandles(), FakeGetLiveAllocations(), FakeGetInvalidFrees());
  return ok ? 0 : 1;
}
