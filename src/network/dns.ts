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

export function hostsFile(entries: readonly HostsEntry[]): string {
  const lines = [...HOSTS_HEADER, ...entries.map((entry) => `${entry.address}\t${entry.names.join(" ")}`)];
  return `${lines.join("\n")}\n`;
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
