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
export {
  type AttachOptions,
  type ConnectOptions,
  type CreateNetworkOptions,
  DEFAULT_BRIDGE,
  DEFAULT_NETWORK,
  DEFAULT_SUBNET,
  HOST_NETWORK,
  NETWORK_LABELS,
  type NetworkAttachment,
  type NetworkDetails,
  type NetworkEndpoint,
  type NetworkInfo,
  NO_NETWORK,
  type PendingAttachment,
  USER_SUBNET_POOL,
} from "./types.js";
