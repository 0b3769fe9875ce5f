import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { type HostsEntry, parseExtraHost } from "../network/dns.js";
import {
  isUserNetwork,
  ONLY_CONFIGURED_SUBNETS,
  ONLY_USER_NETWORKS,
  staticAddressRefusal,
} from "../network/subnet.js";
import type { NetworkInfo } from "../network/types.js";
import type { ContainerRecord, EndpointRecord } from "./containers/store.js";
import { badRequest, conflict } from "./errors.js";

/** What a container's spec needs from networking, and what inspect shows of it. */
export interface NetworkPlan {
  /** Share the host's network namespace. */
  host: boolean;
  /** Join this network namespace (none and neither host: a new one with only loopback). */
  netnsPath?: string;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  endpoints: Record<string, EndpointRecord>;
  ports: ContainerRecord["Ports"];
}

/** EndpointSettings.IPAMConfig as a request gives it (docker's --ip, --ip6): the container's own addresses. */
export interface EndpointIpamConfig {
  IPv4Address?: string;
  IPv6Address?: string;
}

/** EndpointSettings.IPAMConfig's addresses from a request body; undefined when it names none. */
export function endpointIpamConfig(value: unknown): EndpointIpamConfig | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const fields = value as Record<string, unknown>;
  const config: EndpointIpamConfig = {};
  for (const field of ["IPv4Address", "IPv6Address"] as const) {
    const address = fields[field];
    if (typeof address === "string" && address !== "") config[field] = address;
  }
  return Object.keys(config).length > 0 ? config : undefined;
}

/**
 * dockerd's refusals of an endpoint's own addresses (validateEndpointSettings), as its 400 words them:
 * "invalid endpoint settings:" and the reasons, one alone or each on a line of its own. Our networks
 * have no IPv6 subnet, so an IPv6 address is refused as on a dockerd network without one.
 */
export function checkEndpointIpam(
  name: string,
  network: NetworkInfo | undefined,
  ipam: EndpointIpamConfig | undefined,
): void {
  const reasons: string[] = [];
  const v4 = ipam?.IPv4Address;
  if (v4 !== undefined) {
    const refusal = staticAddressRefusal(name, network, v4);
    if (refusal) reasons.push(refusal);
  }
  if (ipam?.IPv6Address !== undefined)
    reasons.push(isUserNetwork(name, network) ? ONLY_CONFIGURED_SUBNETS : ONLY_USER_NETWORKS);
  const unique = [...new Set(reasons)];
  if (unique.length === 1) throw badRequest(`invalid endpoint settings:\n${unique[0]}`);
  if (unique.length > 1) throw badRequest(`invalid endpoint settings:\n* ${unique.join("\n* ")}`);
}

/**
 * The seam between the engine and networking: called when a container is created (its spec needs
 * the namespace) and when it is removed. The implementation: CniNetworks (src/network).
 */
export interface EngineNetworks {
  /**
   * `aliases`: more names it answers to on a user network (NetworkingConfig's, `--network-alias`);
   * `ipam`: its own address there (`--ip`).
   */
  attach(
    record: ContainerRecord,
    dir: string,
    opts?: CallOptions,
    aliases?: readonly string[],
    ipam?: EndpointIpamConfig,
  ): Promise<NetworkPlan>;
  detach(record: ContainerRecord, opts?: CallOptions): Promise<void>;
  /** A network's name from what a request names it by (name, id, id prefix, `default`). */
  resolve(ref: string, opts?: CallOptions): Promise<string>;
  /** One more network for a container (created or running): its endpoint there. */
  connect(
    record: ContainerRecord,
    network: string,
    aliases: readonly string[],
    opts?: CallOptions,
    ipam?: EndpointIpamConfig,
  ): Promise<EndpointRecord>;
  /**
   * Before each start of the task: its published ports taken (they are only recorded at attach, as
   * dockerd allocates them when the sandbox's endpoints are joined) and their forwarding added;
   * NetworkSettings.Ports of the run.
   */
  publishPorts(record: ContainerRecord, opts?: CallOptions): Promise<ContainerRecord["Ports"]>;
  /** After the task ended (or failed to start): its published ports given back. Idempotent. */
  unpublishPorts(record: ContainerRecord, opts?: CallOptions): Promise<void>;
  /** Takes the container off one network; true when its published ports went with it. */
  disconnect(record: ContainerRecord, network: string, opts?: CallOptions): Promise<boolean>;
}

/**
 * HostConfig.ExtraHosts (`docker run --add-host NAME:IP`) as hosts file entries; the network manager
 * resolves `host-gateway` and writes them into the container's hosts file, on every network mode.
 */
export function extraHosts(record: ContainerRecord): HostsEntry[] {
  return (record.HostConfig.ExtraHosts ?? []).map(parseExtraHost);
}

/** /etc/hosts, /etc/hostname and /etc/resolv.conf for a container, in its engine dir. */
export function writeNameFiles(
  record: ContainerRecord,
  dir: string,
  host: boolean,
  address?: string,
): {
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
} {
  const hostname = record.Config.Hostname || record.Id.slice(0, 12);
  const hostsPath = join(dir, "hosts");
  const resolvConfPath = join(dir, "resolv.conf");
  const hostnamePath = join(dir, "hostname");
  // No ExtraHosts here: with any, the network manager writes the hosts file the container gets.
  if (host && existsSync("/etc/hosts")) copyFileSync("/etc/hosts", hostsPath);
  else
    writeFileSync(
      hostsPath,
      [
        "127.0.0.1\tlocalhost\n",
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
        ...(address ? [`${address}\t${hostname}\n`] : []),
      ].join(""),
    );
  const dns = record.HostConfig.Dns;
  if (dns.length > 0)
    writeFileSync(resolvConfPath, `${dns.map((server) => `nameserver ${server}`).join("\n")}\n`);
  else if (existsSync("/etc/resolv.conf")) copyFileSync("/etc/resolv.conf", resolvConfPath);
  else writeFileSync(resolvConfPath, "");
  writeFileSync(hostnamePath, `${hostname}\n`);
  return { hostsPath, resolvConfPath, hostnamePath };
}

/** Refusals of a network connect that dockerd makes before any work (daemon/container_operations.go). */
export function checkConnectable(record: ContainerRecord, network: string): void {
  const mode = record.HostConfig.NetworkMode;
  if (network === "host")
    throw badRequest("container cannot be disconnected from host network or connected to host network");
  if (mode === "host" || mode.startsWith("container:"))
    throw badRequest(
      "container sharing network namespace with another container or host cannot be connected to any other network",
    );
  if (mode === "none" || network === "none" || record.Networks.none)
    throw badRequest(
      "Container cannot be connected to multiple networks with one of the networks in private (none) mode",
    );
}

/** dockerd's errRemovalContainer: a container being removed is neither connected nor disconnected. */
export function checkNotRemoved(record: ContainerRecord): void {
  if (record.State.Status === "removing" || record.State.Status === "dead")
    throw conflict(
      `Container ${record.Id} is marked for removal and cannot be connected or disconnected to the network`,
    );
}

export function isRunning(record: ContainerRecord): boolean {
  return ["running", "paused", "restarting"].includes(record.State.Status);
}
