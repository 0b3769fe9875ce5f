import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CallOptions } from "../libcontainerd/types/client.js";
import type { ContainerRecord, EndpointRecord } from "./containers/store.js";
import { badRequest } from "./errors.js";

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

/**
 * The seam between the engine and networking: called when a container is created (its spec needs
 * the namespace) and when it is removed. Implementations: `LoopbackNetworks` below, and the CNI
 * networks of src/network when they are configured.
 */
export interface EngineNetworks {
  attach(record: ContainerRecord, dir: string, opts?: CallOptions): Promise<NetworkPlan>;
  detach(record: ContainerRecord, opts?: CallOptions): Promise<void>;
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
  if (host && existsSync("/etc/hosts")) copyFileSync("/etc/hosts", hostsPath);
  else
    writeFileSync(
      hostsPath,
      [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        ...(address ? [`${address}\t${hostname}`] : []),
        ...(record.HostConfig.ExtraHosts ?? []).map((entry) => {
          const [name = "", ip = ""] = entry.split(":", 2);
          return `${ip}\t${name}`;
        }),
        "",
      ].join("\n"),
    );
  const dns = record.HostConfig.Dns;
  if (dns.length > 0)
    writeFileSync(resolvConfPath, `${dns.map((server) => `nameserver ${server}`).join("\n")}\n`);
  else if (existsSync("/etc/resolv.conf")) copyFileSync("/etc/resolv.conf", resolvConfPath);
  else writeFileSync(resolvConfPath, "");
  writeFileSync(hostnamePath, `${hostname}\n`);
  return { hostsPath, resolvConfPath, hostnamePath };
}

/**
 * Networking without CNI: `host` shares the host's namespace, everything else gets a namespace of
 * its own with only loopback (Docker's `none`). Publishing ports needs real networks, so it is refused.
 */
export class LoopbackNetworks implements EngineNetworks {
  async attach(record: ContainerRecord, dir: string): Promise<NetworkPlan> {
    const mode = record.HostConfig.NetworkMode;
    const host = mode === "host";
    if (!host && mode !== "none" && mode !== "default" && mode !== "bridge")
      throw badRequest(`network ${mode} not found`);
    const wantsPorts =
      record.HostConfig.PublishAllPorts ||
      Object.values(record.HostConfig.PortBindings).some((bindings) => bindings.length > 0);
    if (wantsPorts && !host)
      throw badRequest("publishing ports needs bridge networking, which this engine was started without");
    return { host, ...writeNameFiles(record, dir, host), endpoints: {}, ports: {} };
  }

  async detach(): Promise<void> {}
}
