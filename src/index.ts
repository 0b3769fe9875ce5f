/**
 * libcontainerd: one interface for running containers, whichever backend the host offers.
 * `createClient` picks it: containerd over gRPC (remote), or Windows HCS in-process (local).
 */

export * from "./images/index.js";
export {
  type BackendChoice,
  type CreateClientOptions,
  chooseBackend,
  createClient,
  type LibcontainerdClient,
} from "./libcontainerd/factory.js";
export { LocalClient, type LocalClientOptions } from "./libcontainerd/local/index.js";
export * from "./libcontainerd/remote/index.js";
export { parseSignal } from "./libcontainerd/signals.js";
export { cpuPercent, normalizeStats } from "./libcontainerd/stats.js";
export type { ManagedContainerd, ManagedContainerdOptions } from "./libcontainerd/supervisor/index.js";
export * from "./libcontainerd/types/index.js";
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
