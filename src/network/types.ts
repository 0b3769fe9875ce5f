import type { CallOptions } from "../libcontainerd/types/client.js";
import type { HostsEntry } from "./dns.js";
import type { PortMapping, PortRequest } from "./ports.js";

/** The network modes besides a named (CNI bridge) network. */
export const NO_NETWORK = "none";
export const HOST_NETWORK = "host";
/** The default bridge network's name (Docker's), its Linux bridge device and subnet. */
export const DEFAULT_NETWORK = "bridge";
export const DEFAULT_BRIDGE = "ctrd0";
export const DEFAULT_SUBNET = "10.210.0.0/16";
/** Where user networks created without a subnet get a /24 from. */
export const USER_SUBNET_POOL = "10.211.0.0/16";

/** Labels a caller puts on the container so that others (ps, port, the engine) can show its network. */
export const NETWORK_LABELS = { network: "io.ctrd.network", ports: "io.ctrd.ports" } as const;

export interface NetworkInfo {
  name: string;
  /** 64 hex digits, as Docker's network ids. */
  id: string;
  driver: "bridge";
  /** The Linux bridge device. */
  bridge: string;
  subnet: string;
  gateway: string;
  createdAt: string;
  /** The default network: created on first use, re-created on next use after removal. */
  isDefault: boolean;
  labels: Record<string, string>;
  /** Created with a subnet of its own (`--subnet`): only such a network takes a container's own address. */
  subnetConfigured?: boolean;
}

export interface NetworkEndpoint {
  namespace: string;
  containerId: string;
  /** CIDR, e.g. `10.210.0.2/16`. */
  address: string;
  ports: PortMapping[];
}

export interface NetworkDetails extends NetworkInfo {
  containers: NetworkEndpoint[];
}

export interface CreateNetworkOptions extends CallOptions {
  name: string;
  /** IPv4 CIDR; default: a free /24 from USER_SUBNET_POOL. Refused when it overlaps another network (any state dir's) or a host interface's address; a host route does not refuse it (as dockerd). */
  subnet?: string;
  /** Default: the subnet's first address. */
  gateway?: string;
  /** The bridge device; default `ctrd-` and ten hex digits of the network id. */
  bridge?: string;
  labels?: Record<string, string>;
}

export interface AttachOptions extends CallOptions {
  namespace: string;
  containerId: string;
  /** `none` (the default), `host`, or a network's name. */
  network?: string;
  /** `[hostIp:][hostPort:]containerPort[/tcp|udp]` strings or parsed requests. */
  ports?: readonly (string | PortRequest)[];
  /**
   * The ports are only recorded: taken by `publishPorts` at each start of the task and given back by
   * `unpublishPorts` when it ends, as dockerd holds a container's ports only while it runs.
   */
  publishWhileRunning?: boolean;
  /** Nameservers for the container's resolv.conf instead of the host's. */
  dns?: readonly string[];
  /** The container's hostname, added to its /etc/hosts entry (default: the container id). */
  hostname?: string;
  /**
   * More names the container answers to in the hosts files of a user network, e.g. the container's
   * name when its id is a digest (Docker's names and network aliases).
   */
  aliases?: readonly string[];
  /** More lines for the container's own /etc/hosts (docker's --add-host), kept when the file is redone. */
  extraHosts?: readonly HostsEntry[];
  /** The container's own IPv4 address on the network (docker's --ip): a user network created with a subnet. */
  ipv4Address?: string;
}

/** `NetworkManager.connect`: one more network for a container attached to a named network. */
export interface ConnectOptions extends CallOptions {
  namespace: string;
  containerId: string;
  /** A named network (not `none` or `host`). */
  network: string;
  /** Names the container answers to on this network only (its DNS aliases there). */
  aliases?: readonly string[];
  /** Its own IPv4 address there (`docker network connect --ip`), as AttachOptions' ipv4Address. */
  ipv4Address?: string;
  /**
   * The container's port requests, published while it runs (as AttachOptions' with publishWhileRunning)
   * when this network becomes its first (eth0: it was disconnected from every other), as dockerd gives
   * a sandbox's port bindings to its first endpoint when it has none.
   */
  ports?: readonly (string | PortRequest)[];
}

/** What a container's network is; `applyNetwork` puts it into the spec. */
export interface NetworkAttachment {
  namespace: string;
  containerId: string;
  network: string;
  /** The netns file for the spec's network namespace (named networks). */
  netnsPath?: string;
  /** Mounted read-only on /etc/hosts and /etc/resolv.conf. */
  hostsPath?: string;
  resolvConfPath?: string;
  /** CIDRs of the container's interface. */
  addresses: string[];
  gateway?: string;
  /** The MAC address of the container's interface. */
  macAddress?: string;
  /** The container's interface on this network: eth0 for the first, ethN for those connected later. */
  interfaceName?: string;
  ports: PortMapping[];
}

/** An attachment being set up (see `NetworkManager.prepare`). */
export interface PendingAttachment {
  /** The paths for the spec; no addresses yet. */
  attachment: NetworkAttachment;
  /** The whole attachment once the plugins are done. */
  ready: Promise<NetworkAttachment>;
}
