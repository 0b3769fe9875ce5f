export {
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH_ENV,
  defaultLinuxSpec,
  defaultWindowsSpec,
  findInitBinary,
  INIT_PATH,
  type LinuxSpecOptions,
  OCI_VERSION,
  type WindowsSpecOptions,
} from "./defaults.js";
export {
  capabilitiesOf,
  type JoinableNamespace,
  joinNamespaces,
  type LinuxRunOptions,
  type NamespacePath,
  parseUlimit,
  type Ulimit,
} from "./linux-options.js";
export {
  CPU_PERIOD_US,
  checkLinuxResources,
  linuxResources,
  parseSize,
  resourcesForUpdate,
  windowsResources,
} from "./resources.js";
export {
  DEFAULT_SECCOMP_PROFILE_PATHS,
  findDefaultSeccompProfile,
  type OciSeccomp,
  ociSeccomp,
  parseSeccompProfile,
  type SeccompProfile,
} from "./seccomp.js";
export type { OciLinux, OciMount, OciProcess, OciSpec, OciUser, OciWindows } from "./spec.js";
