/**
 * The local backend: HCS in-process through vmcompute.dll (koffi). Where it differs from the
 * remote backend, and why:
 * - `newContainer` creates and starts the compute system (HCS has no stopped container);
 *   `create` is published then. `newTask` runs the init process at once; its exit is held
 *   until `start()` so events stay create → start → exit.
 * - SIGKILL terminates; other signals go through HcsSignalProcess from RS5 on, mapped as hcsshim
 *   does (signals.ts: a Windows guest gets console events, 0 CtrlC … 6/15 CtrlShutdown; a Linux
 *   guest the POSIX number); before RS5 the init process is stopped by shutting the container
 *   down and an exec is terminated (moby's behaviour).
 * - Every vmcompute call runs on the backend's own threads (vmcompute-threads.ts), so calls
 *   blocked in HCS never starve the others.
 * - pause/resume need Hyper-V isolation; updateResources and checkpoint are NotImplementedError.
 * - No reattach: `loadContainer` opens a system by id for inspection and deletion only, and
 *   `close()` terminates the containers this client created (their documents ask HCS to
 *   terminate on last handle close anyway).
 * - Stdio is available on the Linux fake (pipe fds); on Windows it is NotImplementedError for now.
 */
export { LocalClient, type LocalClientOptions } from "./client.js";
export { LOCAL_RUNTIME_NAME } from "./container.js";
export {
  type CreateDocument,
  createDocument,
  WINDOWS_BUILD_RS1,
  WINDOWS_BUILD_RS4,
  WINDOWS_BUILD_RS5,
} from "./documents.js";
export type { LcowOptions } from "./lcow.js";
