/**
 * libcontainerd: one interface for running containers, whichever backend the host offers.
 * `createClient` picks it: containerd over gRPC (remote), or Windows HCS in-process (local).
 *
 * This list is the package's API. The folders' own index files are explicit lists too; anything
 * not reachable from here (drivers' internals, test hooks) is not API.
 */

export {
  AlreadyExistsError,
  CanceledError,
  DataLossError,
  DeadlineExceededError,
  type ErrorCode,
  type ErrorDetails,
  type ErrorOrigin,
  errorFor,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  isErrorCode,
  LibcontainerdError,
  NotFoundError,
  NotImplementedError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";
export * from "./images/index.js";
export {
  type BackendChoice,
  type CreateClientOptions,
  chooseBackend,
  createClient,
  type LibcontainerdClient,
} from "./libcontainerd/factory.js";
// The local (HCS) backend loads koffi, a native addon: it is `libcontainerd/local`, loaded only when
// used (createClient imports it when it chooses the local backend).
export type { LocalClientOptions } from "./libcontainerd/local/client.js";
export type { LcowOptions } from "./libcontainerd/local/lcow.js";
export {
  type ContainerdAddress,
  DEFAULT_NAMESPACE,
  formatAddress,
  parseAddress,
  RemoteClient,
  type RemoteClientOptions,
  UNKNOWN_EXIT_CODE,
} from "./libcontainerd/remote/index.js";
export { parseSignal } from "./libcontainerd/signals.js";
export { cpuPercent, normalizeStats } from "./libcontainerd/stats.js";
export type { ManagedContainerd, ManagedContainerdOptions } from "./libcontainerd/supervisor/index.js";
export type {
  CallOptions,
  CheckpointOptions,
  Client,
  Container,
  ContainerInfo,
  EventsOptions,
  ExecOptions,
  ExitStatus,
  LogOptions,
  NewContainerOptions,
  NewTaskOptions,
  Process,
  ProcessInfo,
  StdioOptions,
  Task,
  TaskStatus,
} from "./libcontainerd/types/client.js";
export {
  type Backend,
  EVENT_TYPES,
  type EventType,
  type LibcontainerdEvent,
} from "./libcontainerd/types/events.js";
export type {
  ContainerInspect,
  ContainerInspectState,
  ContainerStatus,
} from "./libcontainerd/types/inspect.js";
export type {
  LinuxResources,
  ResourceLimits,
  Resources,
  ResourceUpdate,
  WindowsResources,
} from "./libcontainerd/types/resources.js";
export type {
  BlkioEntry,
  CgroupV1Stats,
  CgroupV2Stats,
  HcsStats,
  RawStats,
  Stats,
} from "./libcontainerd/types/stats.js";
export * from "./logs/index.js";
export * from "./network/index.js";
export * from "./oci/index.js";
export * from "./platform/index.js";
export type { OutputTarget } from "./run/output.js";
export { OWNER_PID_LABEL, OWNER_START_LABEL, ownerLabels, type ReapOptions, reap } from "./run/owner.js";
export { type RemoveContainerOptions, removeContainer } from "./run/remove.js";
export { DEFAULT_MAX_OUTPUT_BYTES, type RunOptions, type RunResult, run, runSpec } from "./run/run.js";
export {
  parseDaemonJson,
  type ResolvedRuntime,
  type RuntimeConfig,
  RuntimeRegistry,
  type RuntimeRegistryOptions,
  type RuntimeResolver,
} from "./runtime/index.js";
export * from "./state/index.js";
