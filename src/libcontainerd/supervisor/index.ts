export { CONTAINERD_FALLBACK_DIRS, findContainerdBinary } from "./binary.js";
export { type ContainerdLogLevel, containerdConfigToml, DISABLED_PLUGINS } from "./config.js";
export { type ManagedContainerdLayout, managedContainerdLayout } from "./layout.js";
export {
  type ContainerdExitedEvent,
  type ContainerdRestartedEvent,
  type ContainerdStartedEvent,
  type ContainerdUnhealthyEvent,
  ManagedContainerd,
  type ManagedContainerdEvents,
  type ManagedContainerdOptions,
  type RestartBackoff,
  type ShutdownOptions,
} from "./supervisor.js";
