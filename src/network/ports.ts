import { isIP, isIPv4 } from "node:net";
import { InvalidArgumentError } from "../libcontainerd/types/errors.js";

export type PortProtocol = "tcp" | "udp";

/** A published port as asked for: no host port means an ephemeral one, no host IP means all IPv4 addresses. */
export interface PortRequest {
  hostIp?: string;
  hostPort?: number;
  containerPort: number;
  protocol: PortProtocol;
}

/** A published port as set up: the host side is always known. `0.0.0.0` is every IPv4 address of the host. */
export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
}

export const ANY_IPV4 = "0.0.0.0";

function port(text: string, what: string, spec: string): number {
  const value = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= 1 && value <= 65535)) {
    const range = text.includes("-") ? " (port ranges are not supported)" : "";
    throw new InvalidArgumentError(
      `invalid port mapping ${JSON.stringify(spec)}: ${what} ${JSON.stringify(text)} is not a port from 1 to 65535${range}`,
    );
  }
  return value;
}

/**
 * docker's `-p` syntax: `[hostIp:][hostPort:]containerPort[/tcp|/udp]`, e.g. `8080:80`,
 * `127.0.0.1:8080:80`, `127.0.0.1::53/udp`, `80` (an ephemeral host port). IPv4 host addresses only.
 */
export function parsePortSpec(spec: string): PortRequest {
  const slash = spec.lastIndexOf("/");
  const protocolText = slash >= 0 ? spec.slice(slash + 1).toLowerCase() : "tcp";
  if (protocolText !== "tcp" && protocolText !== "udp") {
    throw new InvalidArgumentError(
      `invalid port mapping ${JSON.stringify(spec)}: protocol ${JSON.stringify(protocolText)} is neither tcp nor udp`,
    );
  }
  const body = slash >= 0 ? spec.slice(0, slash) : spec;
  const parts = body.split(":");
  if (parts.length > 3 || body === "") {
    const hint = body.includes("[") || parts.length > 3 ? " (IPv6 host addresses are not supported)" : "";
    throw new InvalidArgumentError(
      `invalid port mapping ${JSON.stringify(spec)}: want [hostIp:][hostPort:]containerPort[/tcp|udp]${hint}`,
    );
  }
  const containerPort = port(parts[parts.length - 1] ?? "", "container port", spec);
  const request: PortRequest = { containerPort, protocol: protocolText };
  const hostPortText = parts.length >= 2 ? (parts[parts.length - 2] ?? "") : "";
  if (hostPortText !== "") request.hostPort = port(hostPortText, "host port", spec);
  if (parts.length === 3) {
    const hostIp = parts[0] ?? "";
    if (!isIPv4(hostIp)) {
      const why = isIP(hostIp) ? "IPv6 host addresses are not supported" : "not an IPv4 address";
      throw new InvalidArgumentError(
        `invalid port mapping ${JSON.stringify(spec)}: host IP ${JSON.stringify(hostIp)}: ${why}`,
      );
    }
    if (hostIp !== ANY_IPV4) request.hostIp = hostIp;
  }
  return request;
}

/** docker's `ps` form: `127.0.0.1:8080->80/tcp`. */
export function formatPortMapping(mapping: PortMapping): string {
  return `${mapping.hostIp}:${mapping.hostPort}->${mapping.containerPort}/${mapping.protocol}`;
}

/** Two host bindings collide when the ports and protocols match and either covers the other's address. */
export function sameHostBinding(a: PortMapping | PortRequest, b: PortMapping | PortRequest): boolean {
  const ipA = a.hostIp ?? ANY_IPV4;
  const ipB = b.hostIp ?? ANY_IPV4;
  return (
    a.protocol === b.protocol &&
    a.hostPort === b.hostPort &&
    (ipA === ipB || ipA === ANY_IPV4 || ipB === ANY_IPV4)
  );
}
