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
export {
  type Credentials,
  type CredentialsProvider,
  type Descriptor,
  defaultDockerConfigPath,
  dockerConfigCredentials,
  familiarRepository,
  formatPlatform,
  formatReference,
  hostPlatform,
  type ImageConfig,
  type ImageProcess,
  type ImageProcessOverrides,
  type ImageRecord,
  type ImageReference,
  type ImageService,
  type ImageServiceOptions,
  type ImportOptions,
  normalizeReference,
  type Platform,
  type PlatformOptions,
  type PullOptions,
  type PullProgress,
  type PushOptions,
  type PushProgress,
  parsePlatform,
  parseReference,
  type RegistryOptions,
  RemoteImageService,
  type RemoveImageOptions,
  type SaveOptions,
  unsupportedImageService,
} from "./images/index.js";
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
export {
  containerLogs,
  LOG_LABELS,
  type LogLine,
  type LogRecord,
  listLogFiles,
  loggerBinary,
  loggerUri,
  logOptionsFromLabels,
  parseRecord,
  type ReadLogsOptions,
  readLogs,
  removeLogFiles,
} from "./logs/index.js";
export {
  type AttachOptions,
  applyNetwork,
  CNI_VERSION,
  type CniConfigList,
  CniPluginError,
  CniPlugins,
  type CniResult,
  type CreateNetworkOptions,
  DEFAULT_BRIDGE,
  DEFAULT_NETWORK,
  DEFAULT_SUBNET,
  formatPortMapping,
  formatPorts,
  HOST_NETWORK,
  hostsFile,
  NETWORK_LABELS,
  type NetworkAttachment,
  type NetworkDetails,
  type NetworkEndpoint,
  type NetworkInfo,
  NetworkManager,
  type NetworkManagerOptions,
  NO_NETWORK,
  networkLabels,
  type PendingAttachment,
  type PortMapping,
  type PortProtocol,
  type PortRequest,
  parsePortSpec,
  portsFromLabels,
  resolvConf,
  USER_SUBNET_POOL,
} from "./network/index.js";
export {
  CPU_PERIOD_US,
  checkLinuxResources,
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH_ENV,
  defaultLinuxSpec,
  defaultWindowsSpec,
  findInitBinary,
  INIT_PATH,
  type LinuxRunOptions,
  type LinuxSpecOptions,
  linuxResources,
  OCI_VERSION,
  type OciLinux,
  type OciMount,
  type OciProcess,
  type OciSpec,
  type OciUser,
  type OciWindows,
  parseSize,
  parseUlimit,
  resourcesForUpdate,
  type Ulimit,
  type WindowsSpecOptions,
  windowsResources,
} from "./oci/index.js";
export {
  DEFAULT_LINUX_CONTAINERD_ADDRESS,
  DEFAULT_MANAGED_ROOT,
  DEFAULT_MANAGED_STATE_DIR,
  DEFAULT_WINDOWS_CONTAINERD_ADDRESS,
  type DetectPlatformInputs,
  defaultContainerdAddress,
  defaultStateDir,
  detectPlatform,
  type Environment,
  type HcsSchemaVersion,
  hcsSchemaVersion,
  type OperatingSystem,
  type PlatformFacts,
  parseWindowsBuild,
  WindowsBuild,
  type WindowsBuildName,
  windowsBuildName,
} from "./platform/index.js";
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
export {
  containerStatus,
  inspectContainer,
  type ObservedState,
  observe,
  type RememberedState,
  rememberedState,
  STATE_LABELS,
  ZERO_TIME,
} from "./state/index.js";
