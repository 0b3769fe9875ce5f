/*
 * fake-vmcompute — a Linux test double of Windows' vmcompute.dll (the HCS "RPC" API).
 *
 * It exports the vmcompute functions hcsshim binds (see shared/reference/hcs-vmcompute.md §2) with the same
 * ABI, and runs real Linux processes for HcsCreateProcess. The local (HCS) backend of libcontainerd is tested
 * against it through real koffi bindings.
 *
 * ABI (identical to vmcompute.dll on x64):
 *   - every Hcs* export returns an HRESULT as int32_t (never `long`);
 *   - strings are NUL-terminated UTF-16LE (uint16_t *, never wchar_t);
 *   - HCS_SYSTEM / HCS_PROCESS / HCS_CALLBACK are opaque pointer-sized values, never 0 when valid, never
 *     reused during the life of the library;
 *   - out strings (`uint16_t **`) are allocated with this library's CoTaskMemAlloc and must be released with
 *     this library's CoTaskMemFree (or LocalFree). On success `*result` is left NULL; on failure the HRESULT
 *     is < 0 and `*result` holds a ResultError document
 *     {"Error":<hr>,"ErrorMessage":"…","ErrorEvents":[{"Message":"…","Provider":"{…}","EventId":n,"Source":"…"}]};
 *   - HCS_PROCESS_INFORMATION is 32 bytes; its Std* "handles" are pipe file descriptors cast to pointer width
 *     (0 when the pipe was not requested). Ownership passes to the caller, who close()s them.
 *
 * Notifications and threads (the contract for callers, e.g. koffi):
 *   - Asynchronous exports (Create/Start/Pause/Resume/Save) return HCS_E_OPERATION_PENDING (0xC0370103) with
 *     their out handle already filled in, then deliver the matching *Completed notification to the callbacks of
 *     the handle that started the operation. Shutdown/Terminate return pending; their completion is
 *     SystemExited, delivered to every handle of the system once all its processes have exited (their
 *     ProcessExited are posted first; across registrations delivery order is not guaranteed, each has its own
 *     thread). ProcessExited (status S_OK, or the "ProcessExitedStatus" option) goes to every handle of the
 *     process. PauseCompleted is sent once every process of the system is really stopped. In "SyncCompletion"
 *     mode the async exports return S_OK.
 *   - Each registration (HCS_CALLBACK) has its own dispatcher thread; its callbacks run there one at a time, in
 *     order, and that thread blocks until the callback returns. No internal lock is held while a callback
 *     runs, so callbacks may call back into the library (except Unregister of their own registration from a
 *     different thread than the one running the callback: see below).
 *   - Sticky events: every event of a handle is logged, and a registration made later gets the log replayed
 *     first (each event exactly once per registration). So an exit that happened before HcsRegister*Callback
 *     is still reported. A handle opened on an already-exited object starts with the exit in its log.
 *   - `notificationData` is NULL for completions; for SystemExited / ProcessExited it is a small JSON document
 *     ({"Status":hr,"ExitType":"…"} / ProcessStatus), valid only during the callback. Real vmcompute's data is
 *     unverified: do not rely on it. It belongs to the library (hcsshim never frees it, callback.go
 *     notificationWatcher): a CoTaskMemFree of it is an invalid free (FakeGetInvalidFrees).
 *   - HcsUnregister*Callback stops the registration (no callback starts after it returns) and waits for a
 *     callback that is running to return. CONTRACT: do not call it from the thread a running callback is
 *     waiting for (with koffi: the JS main thread while a callback is queued to it); call it from a worker
 *     (koffi `.async`). If it is called from the dispatcher thread itself (a native callback unregistering
 *     itself) it does not wait. If the wait exceeds the "UnregisterTimeoutMs" option (default 5000) it returns
 *     HRESULT_FROM_WIN32(ERROR_TIMEOUT) 0x800705B4 instead of deadlocking: the registration is already stopped,
 *     the callback handle stays valid and counted, and the caller must call Unregister again later (until then
 *     the callback function must stay alive).
 *   - Closing a system/process handle that still has registrations stops them (no further callbacks), but the
 *     callback handles stay counted in FakeGetOpenHandles until they are unregistered.
 *
 * Threads and signals: no library constructor, no thread started at load time. Threads (dispatcher, one
 * scheduler, one waiter per process, one stdio relay per process that needs one) start lazily with all
 * asynchronous signals blocked. No SIGCHLD handler is installed: each child is reaped by its own waiter thread
 * with waitid(P_PID) / wait4 on that pid only. Internal fds are O_CLOEXEC; children get exactly fds 0–2.
 * The library is linked with -z nodelete: dlclose (koffi lib.unload()) never unmaps code its threads run.
 */
#ifndef FAKE_VMCOMPUTE_H
#define FAKE_VMCOMPUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *HCS_SYSTEM;
typedef void *HCS_PROCESS;
typedef void *HCS_CALLBACK;

typedef struct {
  uint32_t ProcessId;
  uint32_t Reserved;
  void *StdInput;  /* pipe fd the caller writes, or 0 */
  void *StdOutput; /* pipe fd the caller reads, or 0 */
  void *StdError;  /* pipe fd the caller reads, or 0 */
} HCS_PROCESS_INFORMATION;

typedef void (*HCS_NOTIFICATION_CALLBACK)(uint32_t notificationType, void *context, int32_t notificationStatus,
                                          const uint16_t *notificationData);

/* HCS_NOTIFICATIONS */
#define HcsNotificationSystemExited 0x00000001u
#define HcsNotificationSystemCreateCompleted 0x00000002u
#define HcsNotificationSystemStartCompleted 0x00000003u
#define HcsNotificationSystemPauseCompleted 0x00000004u
#define HcsNotificationSystemResumeCompleted 0x00000005u
#define HcsNotificationSystemSaveCompleted 0x00000008u
#define HcsNotificationProcessExited 0x00010000u
#define HcsNotificationServiceDisconnect 0x01000000u

/* ---- vmcompute.dll exports (reference §2, same parameter order) ---- */
/* The RS1 build (-DFAKE_RS1) has RS1/RS2's race: ERROR_ACCESS_DENIED while any compute system is stopping. */
int32_t HcsEnumerateComputeSystems(const uint16_t *query, uint16_t **computeSystems, uint16_t **result);
int32_t HcsCreateComputeSystem(const uint16_t *id, const uint16_t *configuration, void *identity,
                               HCS_SYSTEM *computeSystem, uint16_t **result);
int32_t HcsOpenComputeSystem(const uint16_t *id, HCS_SYSTEM *computeSystem, uint16_t **result);
int32_t HcsCloseComputeSystem(HCS_SYSTEM computeSystem);
int32_t HcsStartComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result);
int32_t HcsShutdownComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result);
int32_t HcsTerminateComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result);
int32_t HcsPauseComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result);
int32_t HcsResumeComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result);
int32_t HcsSaveComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result); /* not RS1 */
int32_t HcsGetComputeSystemProperties(HCS_SYSTEM computeSystem, const uint16_t *propertyQuery,
                                      uint16_t **properties, uint16_t **result);
int32_t HcsModifyComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *configuration, uint16_t **result);
int32_t HcsModifyServiceSettings(const uint16_t *settings, uint16_t **result);
int32_t HcsGetServiceProperties(const uint16_t *propertyQuery, uint16_t **properties, uint16_t **result);
int32_t HcsRegisterComputeSystemCallback(HCS_SYSTEM computeSystem, HCS_NOTIFICATION_CALLBACK callback,
                                         void *context, HCS_CALLBACK *callbackHandle);
int32_t HcsUnregisterComputeSystemCallback(HCS_CALLBACK callbackHandle);
int32_t HcsCreateProcess(HCS_SYSTEM computeSystem, const uint16_t *processParameters,
                         HCS_PROCESS_INFORMATION *processInformation, HCS_PROCESS *process, uint16_t **result);
int32_t HcsOpenProcess(HCS_SYSTEM computeSystem, uint32_t processId, HCS_PROCESS *process, uint16_t **result);
int32_t HcsCloseProcess(HCS_PROCESS process);
int32_t HcsTerminateProcess(HCS_PROCESS process, uint16_t **result);
/* options: {"Signal":"CtrlC"|"CtrlBreak"|"CtrlClose"|"CtrlLogOff"|"CtrlShutdown"} for a Windows guest (→ SIGINT,
 * SIGQUIT, SIGHUP, SIGHUP, SIGTERM here), {"Signal":1..31} for a Linux guest; anything else is 0xC037010D. The exit
 * code of a process killed by signal n is 128+n (SIGTERM 143, SIGKILL 137), as containerd reports it. A signal to
 * an exited process is 0xC0370105. Absent from the RS1 build (-DFAKE_RS1). */
int32_t HcsSignalProcess(HCS_PROCESS process, const uint16_t *options, uint16_t **result);
int32_t HcsGetProcessInfo(HCS_PROCESS process, HCS_PROCESS_INFORMATION *processInformation, uint16_t **result);
int32_t HcsGetProcessProperties(HCS_PROCESS process, uint16_t **processProperties, uint16_t **result);
int32_t HcsModifyProcess(HCS_PROCESS process, const uint16_t *settings, uint16_t **result);
int32_t HcsRegisterProcessCallback(HCS_PROCESS process, HCS_NOTIFICATION_CALLBACK callback, void *context,
                                   HCS_CALLBACK *callbackHandle);
int32_t HcsUnregisterProcessCallback(HCS_CALLBACK callbackHandle);

/* COM task memory (the allocator of every out string). CoTaskMemFree(NULL) is a no-op; freeing a pointer that
 * is not live (double free, foreign pointer) is ignored and counted (FakeGetInvalidFrees). LocalFree does the
 * same and returns NULL. */
void *CoTaskMemAlloc(size_t cb);
void CoTaskMemFree(void *pv);
void *LocalFree(void *hMem);

/* ---- Test-only exports (the contract the TypeScript tests code against) ---- */

/* Number of CoTaskMemAlloc'd blocks not yet freed. */
int32_t FakeGetLiveAllocations(void);

/* Open system handles + open process handles + callback registrations not yet unregistered. */
int32_t FakeGetOpenHandles(void);

/* The configuration document (verbatim) of the last HcsCreateComputeSystem call, valid or not. S_OK; *doc is a
 * CoTaskMemAlloc'd string (counts as an allocation until freed), empty when there was none since load/reset. */
int32_t FakeGetLastCreateDocument(uint16_t **doc);
/* The last document HcsModifyComputeSystem accepted (NULL if none), CoTaskMemAlloc'd. */
int32_t FakeGetLastModifyDocument(uint16_t **doc);

/* The NEXT call of the export named exportName (e.g. u"HcsCreateProcess") fails with hresult and returns
 * resultErrorJson verbatim in its `result` out string (NULL → a default ResultError naming the injection).
 * Injections queue per export and take effect before any handle, document or state check; the failing call has
 * no side effects. If the option "InjectAsync" is 1
 * when this is called and the export is asynchronous (Create/Start/Pause/Resume/Save), the call instead
 * returns pending (Create still returns a handle; the system is then Stopped) and the *Completed notification
 * carries hresult as its status (the notification data is resultErrorJson, if any). */
void FakeInjectFailure(const uint16_t *exportName, int32_t hresult, const uint16_t *resultErrorJson);

/* Options (unknown keys are ignored):
 *   "AsyncDelayMs"        delay before completion notifications, default 1;
 *   "SyncCompletion"      1 = async exports complete synchronously with S_OK and send no *Completed
 *                         notification (SystemExited is still sent when the system stops), default 0;
 *   "ShutdownTimeoutMs"   HcsShutdownComputeSystem sends SIGTERM, then SIGKILL after this; < 0 = never, default 5000;
 *   "UnregisterTimeoutMs" the longest HcsUnregister*Callback waits for a running callback; <= 0 = forever,
 *                         default 5000;
 *   "InjectAsync"         see FakeInjectFailure, default 0;
 *   "BlockSignalProcess"  1 = HcsSignalProcess delivers the signal, then returns only once the process has exited
 *                         or the option is cleared (servercore's behaviour), default 0;
 *   "BlockCreateComputeSystem" 1 = HcsCreateComputeSystem waits, before doing anything, until the option is
 *                         cleared (a slow utility VM), default 0;
 *   "BlockCreateProcess"  the same for HcsCreateProcess, default 0;
 *   "ProcessExitedStatus" the status ProcessExited carries (a failing HRESULT: the wait itself failed, for which
 *                         hcsshim reports exit code -1 whatever the process properties say), default 0 (S_OK).
 * Blocked calls hold no lock; setting any option or FakeReset releases those whose option went to 0. */
void FakeSetOption(const uint16_t *key, int32_t value);

/* Kills every process (SIGKILL, waits up to 2 s for them to be reaped), drops every compute system from the
 * registry (ids become free, Enumerate returns []), clears injected failures, the last create document and the
 * options. Open handles stay valid (and counted) until closed, registrations until unregistered, and
 * allocations until freed: tests want to see leaks. Exits are still notified to registered callbacks. */
void FakeReset(void);

/* ---- Optional extras (scenario scripting) ---- */

/* CoTaskMemFree/LocalFree calls on pointers that were not live (double frees, foreign pointers). */
int32_t FakeGetInvalidFrees(void);

/* Crash a system: SIGKILL its processes, then SystemExited with status hresult (0 → 0xC0370106
 * UNEXPECTED_EXIT) and ExitType "UnexpectedExit". Returns S_OK, 0xC037010E (unknown id) or 0xC0370110. */
int32_t FakeCrashComputeSystem(const uint16_t *id, int32_t hresult);

/* Deliver ServiceDisconnect (0x01000000, status 0) to every active registration. */
void FakeServiceDisconnect(void);

/* Calls currently parked by the Block* options. */
int32_t FakeGetBlockedCalls(void);

/* ---- layer export ---- */

/* vmcompute's NameToGuid. HCS's algorithm is unpublished: the fake's GUID is a version-5 name-based UUID (see
 * exports.c), stable per name but NOT the value real HCS computes. */
int32_t NameToGuid(const uint16_t *name, void *guid);

#ifdef __cplusplus
}
#endif

#endif /* FAKE_VMCOMPUTE_H */
