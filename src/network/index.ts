export { CNI_VERSION, type CniConfigList, CniPluginError, CniPlugins, type CniResult } from "./cni.js";
export { hostsFile, resolvConf } from "./dns.js";
export { NetworkManager, type NetworkManagerOptions } from "./manager.js";
export {
  formatPortMapping,
  type PortMapping,
  type PortProtocol,
  type PortRequest,
  parsePortSpec,
} from "./ports.js";
export { applyNetwork, formatPorts, networkLabels, portsFromLabels } from "./spec.js";
export * from "./types.js";
