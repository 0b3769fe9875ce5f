import { InvalidArgumentError } from "../types/errors.js";

export type ContainerdAddress =
  | { kind: "unix"; path: string }
  | { kind: "pipe"; path: string }
  | { kind: "tcp"; host: string; port: number };

const PIPE_PREFIX = /^(\\\\|\/\/)\.(\\|\/)pipe(\\|\/)/i;

/** Parses a containerd address: a socket path, `unix://PATH`, `\\.\pipe\NAME` (also `npipe://`), or `tcp://HOST:PORT`. */
export function parseAddress(address: string): ContainerdAddress {
  const raw = address.trim();
  if (raw === "") throw new InvalidArgumentError("containerd address is empty");
  if (raw.includes("\0")) throw new InvalidArgumentError("containerd address contains a NUL byte");
  if (PIPE_PREFIX.test(raw)) {
    const name = raw.replace(PIPE_PREFIX, "");
    if (!name || /[\\/]/.test(name))
      throw new InvalidArgumentError(`invalid named pipe address ${JSON.stringify(address)}`);
    return { kind: "pipe", path: `\\\\.\\pipe\\${name}` };
  }
  if (raw.startsWith("npipe://")) return parseAddress(raw.slice("npipe://".length).replace(/\//g, "\\"));
  if (raw.startsWith("unix://")) {
    const path = raw.slice("unix://".length);
    if (!path.startsWith("/"))
      throw new InvalidArgumentError(`unix socket address must be absolute: ${JSON.stringify(address)}`);
    return { kind: "unix", path };
  }
  if (raw.startsWith("tcp://")) {
    const rest = raw.slice("tcp://".length);
    const match = /^(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(rest);
    const port = match ? Number(match[2]) : Number.NaN;
    if (!match || !(port > 0 && port < 65536)) {
      throw new InvalidArgumentError(
        `invalid tcp address ${JSON.stringify(address)}: expected tcp://HOST:PORT`,
      );
    }
    return { kind: "tcp", host: match[1]!.replace(/^\[|\]$/g, ""), port };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new InvalidArgumentError(`unsupported containerd address scheme in ${JSON.stringify(address)}`);
  }
  if (!raw.startsWith("/"))
    throw new InvalidArgumentError(`containerd socket path must be absolute: ${JSON.stringify(address)}`);
  return { kind: "unix", path: raw };
}

/** `host:port`, with an IPv6 host in brackets so the port stays separable. */
export function hostPort(address: { host: string; port: number }): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function formatAddress(address: ContainerdAddress): string {
  return address.kind === "tcp" ? `tcp://${hostPort(address)}` : address.path;
}
