export {
  DEFAULT_LINUX_CONTAINERD_ADDRESS,
  DEFAULT_MANAGED_ROOT,
  DEFAULT_MANAGED_STATE_DIR,
  DEFAULT_WINDOWS_CONTAINERD_ADDRESS,
  defaultContainerdAddress,
  defaultStateDir,
} from "./addresses.js";
export {
  type DetectPlatformInputs,
  detectPlatform,
  type Environment,
  type OperatingSystem,
  type PlatformFacts,
} from "./detect.js";
export {
  type HcsSchemaVersion,
  hcsSchemaVersion,
  parseWindowsBuild,
  WindowsBuild,
  type WindowsBuildName,
  windowsBuildName,
} from "./windows-builds.js";
