import { isIP } from "node:net";
import { InvalidArgumentError } from "../libcontainerd/types/errors.js";

/** What Docker puts in every container's /etc/hosts before its own entries. */
const HOSTS_HEADER = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

export interface HostsEntry {
  address: string;
  names: string[];
}

/**
 * docker's `--add-host NAME:host-gateway`: the address that stands for the host as its containers
 * reach it (dockerd's host-gateway-ip, by default the default bridge's IPv4 gateway).
 */
export const HOST_GATEWAY = "host-gateway";

/**
 * `--add-host NAME:IP` (or NAME:host-gateway) as docker's opts.ValidateExtraHost reads it: split at
 * the first ':', since an IPv6 address has more.
 */
export function parseExtraHost(value: string): HostsEntry {
  const separator = value.indexOf(":");
  const address = value.slice(separator + 1);
  if (separator <= 0 || (isIP(address) === 0 && address !== HOST_GATEWAY))
    throw new InvalidArgumentError(`invalid IP address in add-host: ${JSON.stringify(value)}`);
  return { address, names: [value.slice(0, separator)] };
}

/** The entries with `host-gateway` replaced by `gateway`, as dockerd does when it writes the hosts file. */
export function withHostGateway(entries: readonly HostsEntry[], gateway: string): HostsEntry[] {
  return entries.map((entry) => (entry.address === HOST_GATEWAY ? { ...entry, address: gateway } : entry));
}

export function hostsFile(entries: readonly HostsEntry[]): string {
  return `${HOSTS_HEADER.join("\n")}\n${hostsLines(entries)}`;
}

/** The entries as hosts file lines, each ended by a newline. */
export function hostsLines(entries: readonly HostsEntry[]): string {
  return entries.map((entry) => `${entry.address}\t${entry.names.join(" ")}\n`).join("");
}

/** Docker's fallback when the host's resolvers are all loopback addresses a container cannot reach. */
const FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"];

function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1";
}

export function checkDnsServers(servers: readonly string[]): void {
  for (const server of servers) {
    if (isIP(server) === 0)
      throw new InvalidArgumentError(`invalid --dns ${JSON.stringify(server)}: not an IP address`);
  }
}

/**
 * The container's resolv.conf from the host's: its `search` and `options` kept, its nameservers
 * replaced by `dns` when given, loopback ones dropped otherwise (they would point into the
 * container's own namespace), as Docker does.
 */
export function resolvConf(hostResolvConf: string, dns: readonly string[] = []): string {
  const kept: string[] = [];
  const hostServers: string[] = [];
  for (const raw of hostResolvConf.split("\n")) {
    const line = raw.trim();
    const [keyword, value] = line.split(/\s+/, 2);
    if (keyword === "nameserver" && value) hostServers.push(value);
    else if (keyword === "search" || keyword === "domain" || keyword === "options") kept.push(line);
  }
  let servers = dns.length > 0 ? [...dns] : hostServers.filter((server) => !isLoopback(server));
  if (servers.length === 0) servers = FALLBACK_NAMESERVERS;
  return `${[...kept, ...servers.map((server) => `nameserver ${server}`)].join("\n")}\n`;
}
