import { createHash } from "node:crypto";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { HostPortTakenError } from "../network/host-ports.js";
import type { NetworkManager } from "../network/manager.js";
import type { PortMapping, PortRequest } from "../network/ports.js";
import { AddressInUseError } from "../network/subnet.js";
import {
  DEFAULT_NETWORK,
  HOST_NETWORK,
  type NetworkAttachment,
  type NetworkInfo,
  NO_NETWORK,
} from "../network/types.js";
import type { ContainerRecord, EndpointRecord } from "./containers/store.js";
import { badRequest, EngineError, notFound } from "./errors.js";
import {
  checkEndpointIpam,
  type EndpointIpamConfig,
  type EngineNetworks,
  extraHosts,
  type NetworkPlan,
  writeNameFiles,
} from "./network-plan.js";

/** The container's port requests: PortBindings, and with PublishAllPorts every exposed port on a free host port. */
export function portRequests(record: ContainerRecord): PortRequest[] {
  const requests: PortRequest[] = [];
  const bound = new Set<string>();
  for (const [key, bindings] of Object.entries(record.HostConfig.PortBindings)) {
    const [port = "0", protocol = "tcp"] = key.split("/");
    if (protocol !== "tcp" && protocol !== "udp")
      throw badRequest(`unsupported protocol ${protocol} in ${key}`);
    for (const binding of bindings) {
      bound.add(key);
      const hostPort = binding.HostPort === "" ? 0 : Number(binding.HostPort.split("-")[0]);
      requests.push({
        containerPort: Number(port),
        protocol,
        ...(binding.HostIp !== "" ? { hostIp: binding.HostIp } : {}),
        ...(hostPort > 0 ? { hostPort } : {}),
      });
    }
  }
  if (record.HostConfig.PublishAllPorts) {
    for (const key of Object.keys(record.Config.ExposedPorts ?? {})) {
      if (bound.has(key)) continue;
      const [port = "0", protocol = "tcp"] = key.split("/");
      if (protocol === "tcp" || protocol === "udp") requests.push({ containerPort: Number(port), protocol });
    }
  }
  return requests;
}

/** Finds a network by name, id or unique id prefix, as Docker does. */
export async function findNetwork(
  manager: NetworkManager,
  ref: string,
  opts?: CallOptions,
): Promise<NetworkInfo> {
  const networks = await manager.listNetworks(opts);
  const byName = networks.find((network) => network.name === ref);
  if (byName) return byName;
  const byId = networks.filter((network) => ref.length > 0 && network.id.startsWith(ref));
  if (byId.length === 1 && byId[0]) return byId[0];
  throw notFound(
    byId.length > 1
      ? `network ${ref} is ambiguous (${byId.length} matches found based on ID prefix)`
      : `network ${ref} not found`,
  );
}

/** The engine's networks on src/network: CNI bridge networks, `host` and `none`, ports published with portmap. */
export class CniNetworks implements EngineNetworks {
  constructor(
    readonly manager: NetworkManager,
    private readonly namespace: string,
  ) {}

  resolve(ref: string, opts?: CallOptions): Promise<string> {
    return this.networkName(ref, opts);
  }

  /** Docker's `default` is the bridge network; a network may be named by its id. */
  private async networkName(mode: string, opts?: CallOptions): Promise<string> {
    if (mode === "" || mode === "default") return DEFAULT_NETWORK;
    if (mode === NO_NETWORK || mode === HOST_NETWORK || mode === DEFAULT_NETWORK) return mode;
    if (mode.startsWith("container:"))
      throw badRequest("network mode container:NAME is not supported by this engine");
    try {
      return (await findNetwork(this.manager, mode, opts)).name;
    } catch (err) {
      if (isErrorCode(err, "not_found") || (err instanceof Error && /not found/.test(err.message)))
        throw notFound(`network ${mode} not found`);
      throw err;
    }
  }

  async attach(
    record: ContainerRecord,
    dir: string,
    opts: CallOptions = {},
    aliases: readonly string[] = [],
    ipam?: EndpointIpamConfig,
  ): Promise<NetworkPlan> {
    const network = await this.networkName(record.HostConfig.NetworkMode, opts);
    await this.checkIpam(network, ipam, opts);
    const hostname = record.Config.Hostname || record.Id.slice(0, 12);
    const names = dnsNames(record, network, aliases);
    // As dockerd: published ports are discarded on the host's network (create answers a warning).
    const requests = network === HOST_NETWORK ? [] : portRequests(record);
    const attachment = await this.manager
      .attach({
        ...opts,
        namespace: this.namespace,
        containerId: record.Id,
        network,
        ports: requests,
        publishWhileRunning: true,
        dns: record.HostConfig.Dns,
        hostname,
        extraHosts: extraHosts(record),
        ...(names.length > 0 ? { aliases: names } : {}),
        ...(ipam?.IPv4Address !== undefined ? { ipv4Address: ipam.IPv4Address } : {}),
      })
      .catch(addressInUse);
    const own = writeNameFiles(record, dir, network === HOST_NETWORK);
    return {
      host: network === HOST_NETWORK,
      ...(attachment.netnsPath !== undefined ? { netnsPath: attachment.netnsPath } : {}),
      hostsPath: attachment.hostsPath ?? own.hostsPath,
      resolvConfPath: attachment.resolvConfPath ?? own.resolvConfPath,
      hostnamePath: own.hostnamePath,
      endpoints: { [network]: await this.endpoint(record, attachment, aliases, opts, ipam) },
      // Taken at start (publishPorts): a container that does not run shows none, as dockerd's.
      ports: {},
    };
  }

  async publishPorts(record: ContainerRecord, opts?: CallOptions): Promise<ContainerRecord["Ports"]> {
    // Most containers publish nothing: no lock and no record read at each of their starts.
    if (portRequests(record).length === 0) return portsView([]);
    try {
      return portsView(await this.manager.publishPorts(this.namespace, record.Id, opts));
    } catch (err) {
      // dockerd's words (its port allocator's, or its userland proxy's bind for a port a host process
      // holds, through the endpoint join of the start), a 500 as there.
      if (!(err instanceof HostPortTakenError)) throw err;
      const why = err.byHost
        ? `Error starting userland proxy: listen ${err.protocol}4 ${err.binding}: bind: address already in use`
        : `Bind for ${err.binding} failed: port is already allocated`;
      throw new EngineError(
        500,
        `driver failed programming external connectivity on endpoint ${record.Name.slice(1)} (${record.Id}): ${why}`,
        { cause: err },
      );
    }
  }

  async unpublishPorts(record: ContainerRecord, opts?: CallOptions): Promise<void> {
    if (portRequests(record).length === 0) return;
    await this.manager.unpublishPorts(this.namespace, record.Id, opts);
  }

  async detach(record: ContainerRecord, opts?: CallOptions): Promise<void> {
    await this.manager.detach(this.namespace, record.Id, opts);
  }

  async connect(
    record: ContainerRecord,
    network: string,
    aliases: readonly string[],
    opts: CallOptions = {},
    ipam?: EndpointIpamConfig,
  ): Promise<EndpointRecord> {
    await this.checkIpam(network, ipam, opts);
    const names = dnsNames(record, network, aliases);
    const attachment = await this.manager
      .connect({
        ...opts,
        namespace: this.namespace,
        containerId: record.Id,
        network,
        ports: portRequests(record),
        ...(names.length > 0 ? { aliases: names } : {}),
        ...(ipam?.IPv4Address !== undefined ? { ipv4Address: ipam.IPv4Address } : {}),
      })
      .catch(addressInUse)
      .catch(async (err: unknown) => {
        // Connected already though the container's record does not say so (the engine was killed
        // between the two): the interface that is there is the endpoint.
        const existing = isErrorCode(err, "already_exists")
          ? (await this.manager.attachments(this.namespace, record.Id)).find((a) => a.network === network)
          : undefined;
        if (!existing) throw err;
        return existing;
      });
    return this.endpoint(record, attachment, aliases, opts, ipam);
  }

  /** dockerd's 400s for an endpoint's own addresses, before anything is set up. */
  private async checkIpam(
    network: string,
    ipam: EndpointIpamConfig | undefined,
    opts: CallOptions,
  ): Promise<void> {
    if (!ipam) return;
    const info =
      network === NO_NETWORK || network === HOST_NETWORK
        ? undefined
        : await findNetwork(this.manager, network, opts).catch(() => undefined);
    checkEndpointIpam(network, info, ipam);
  }

  async disconnect(record: ContainerRecord, network: string, opts?: CallOptions): Promise<boolean> {
    const attachment = (await this.manager.attachments(this.namespace, record.Id)).find(
      (candidate) => candidate.network === network,
    );
    // Not on it though the container's record says so (the engine was killed between the two): done.
    if (!attachment) return false;
    await this.manager.disconnect(this.namespace, record.Id, network, opts);
    return attachment.ports.length > 0;
  }

  /** NetworkSettings.Networks[NAME] for an attachment. */
  private async endpoint(
    record: ContainerRecord,
    attachment: NetworkAttachment,
    aliases: readonly string[],
    opts?: CallOptions,
    ipam?: EndpointIpamConfig,
  ): Promise<EndpointRecord> {
    const network = attachment.network;
    const [ip = "", prefix = "0"] = (attachment.addresses[0] ?? "").split("/");
    const info =
      network === NO_NETWORK || network === HOST_NETWORK
        ? undefined
        : await findNetwork(this.manager, network, opts).catch(() => undefined);
    return {
      NetworkID: info?.id ?? "",
      // One endpoint per network, as libnetwork's: the first network's keeps the id it always had.
      EndpointID: !info
        ? ""
        : (attachment.interfaceName ?? "eth0") === "eth0"
          ? record.Id
          : createHash("sha256").update(`${record.Id}/${network}`).digest("hex"),
      Gateway: attachment.gateway ?? "",
      IPAddress: ip,
      IPPrefixLen: Number(prefix),
      MacAddress: attachment.macAddress ?? "",
      Aliases: isUserNetwork(network) ? [...new Set([record.Id.slice(0, 12), ...aliases])] : null,
      ...(ipam?.IPv4Address !== undefined ? { IPAMConfig: { IPv4Address: ipam.IPv4Address } } : {}),
    };
  }
}

/** NetworkSettings.Ports for the mappings published. */
function portsView(mappings: readonly PortMapping[]): ContainerRecord["Ports"] {
  const ports: ContainerRecord["Ports"] = {};
  for (const mapping of mappings) {
    const key = `${mapping.containerPort}/${mapping.protocol}`;
    ports[key] = [...(ports[key] ?? []), { HostIp: mapping.hostIp, HostPort: String(mapping.hostPort) }];
  }
  return ports;
}

/** dockerd's IPAM error for an address another endpoint holds: a 403 (libnetwork's ErrIPAlreadyAllocated). */
function addressInUse(err: unknown): never {
  if (err instanceof AddressInUseError) throw new EngineError(403, err.message, { cause: err });
  throw err;
}

function isUserNetwork(network: string): boolean {
  return network !== DEFAULT_NETWORK && network !== HOST_NETWORK && network !== NO_NETWORK;
}

/**
 * As Docker's embedded DNS: on a user network the others find a container by its name, its short id
 * and its aliases (there); on the default bridge by none of them.
 */
function dnsNames(record: ContainerRecord, network: string, aliases: readonly string[]): string[] {
  return isUserNetwork(network)
    ? [...new Set([record.Name.slice(1), record.Id.slice(0, 12), ...aliases])]
    : [];
}
