export {
  type DaemonRuntimeSettings,
  normalizeRuntimeName,
  parseAddRuntime,
  parseDaemonJson,
  validateRuntimeEntry,
  validateRuntimes,
} from "./daemon-json.js";
export { createLookPath, type LookPath } from "./lookpath.js";
export {
  isPermissibleContainerdRuntimeName,
  RUNC_RUNTIME,
  RUNC_V1_SHIM,
  RUNC_V2_SHIM,
  RUNHCS_V1_SHIM,
} from "./names.js";
export { RuntimeRegistry, type RuntimeRegistryOptions, runcRoot } from "./registry.js";
export { RUNHCS_OPTIONS } from "./runhcs-options.js";
export {
  GENERIC_RUNTIME_OPTIONS,
  RUNC_V1_OPTIONS_TYPE_URL,
  RUNC_V2_OPTIONS,
  RUNC_V2_OPTIONS_TYPE_URL,
  shimOptionsFor,
} from "./shim-options.js";
export type { ResolvedRuntime, RuntimeConfig, RuntimeInfo, RuntimeResolver, ShimOptions } from "./types.js";
export { quoteShellArgument, wrapperScriptContent, wrapperScriptFileName } from "./wrapper-script.js";
