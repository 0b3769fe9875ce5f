import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { FailedPreconditionError } from "../libcontainerd/types/errors.js";
import { ANY_IPV4, type PortMapping, type PortProtocol, type PortRequest, sameHostBinding } from "./ports.js";

/** A host port this process has bound: no other process can bind it until it is closed. */
export interface HeldPort {
  close(): void;
}

/**
 * Binds `hostIp:port` and keeps it bound (port 0: one the kernel picks): the bound port and its hold,
 * or undefined when it is in use. Portmap's DNAT rules would hide a host process that listens on a
 * published port, and send its clients to the container: so a taken port is refused up front, as
 * dockerd's port proxy refuses it by failing to bind, and a port published stays bound, as the proxy
 * holds it, so that nothing takes it afterwards (a server's `listen(0)` could be handed it). The
 * rules send the port's traffic to the container, so the socket is never used; a TCP connection that
 * reaches it anyway (before the rules are written) is closed. Neither keeps the process alive.
 */
function bindHostPort(
  protocol: PortProtocol,
  hostIp: string,
  port: number,
): Promise<{ port: number; held: HeldPort } | undefined> {
  return new Promise((resolve, reject) => {
    if (protocol === "tcp") {
      const server = createServer((connection) => connection.destroy());
      server.once("error", (err: NodeJS.ErrnoException) =>
        err.code === "EADDRINUSE" ? resolve(undefined) : reject(err),
      );
      server.listen({ host: hostIp, port, exclusive: true }, () => {
        server.unref();
        const address = server.address();
        resolve({
          port: typeof address === "object" && address ? address.port : port,
          held: { close: () => server.close() },
        });
      });
    } else {
      const socket = createSocket("udp4");
      socket.once("error", (err: NodeJS.ErrnoException) => {
        socket.close();
        if (err.code === "EADDRINUSE") resolve(undefined);
        else reject(err);
      });
      socket.bind({ address: hostIp, port, exclusive: true }, () => {
        socket.unref();
        resolve({ port: socket.address().port, held: { close: () => socket.close() } });
      });
    }
  });
}

function describe(request: PortRequest | PortMapping): string {
  return `${request.hostIp ?? ANY_IPV4}:${request.hostPort}/${request.protocol}`;
}

/**
 * The host side of each requested port: a given port is checked free (of host processes and of other
 * containers' published ports), a missing one is an ephemeral port the kernel picks; each is bound
 * (`held`) until the caller closes it. Call it under a lock shared with whoever else publishes ports,
 * and record the result before releasing it. On a failure nothing stays bound.
 */
export async function allocateHostPorts(
  requests: readonly PortRequest[],
  published: readonly { port: PortMapping; owner: string }[],
): Promise<{ mappings: PortMapping[]; held: HeldPort[] }> {
  const taken = [...published];
  const mappings: PortMapping[] = [];
  const held: HeldPort[] = [];
  // Ephemeral ports the kernel gave that another container publishes on another address: kept bound
  // until the end, so that the kernel does not hand them out again.
  const passedOver: HeldPort[] = [];
  try {
    for (const request of requests) {
      const hostIp = request.hostIp ?? ANY_IPV4;
      let hostPort = request.hostPort;
      if (hostPort !== undefined) {
        const clash = taken.find((other) => sameHostBinding(other.port, { ...request, hostIp }));
        if (clash) {
          throw new FailedPreconditionError(
            `host port ${describe(request)} is already published by ${clash.owner}`,
          );
        }
        const bound = await bindHostPort(request.protocol, hostIp, hostPort);
        if (!bound) {
          throw new FailedPreconditionError(`host port ${describe(request)} is already in use on the host`);
        }
        held.push(bound.held);
      } else {
        for (let attempt = 0; hostPort === undefined; attempt++) {
          const bound = await bindHostPort(request.protocol, hostIp, 0);
          const mapping = {
            hostIp,
            hostPort: bound?.port ?? 0,
            containerPort: 0,
            protocol: request.protocol,
          };
          if (bound && !taken.some((other) => sameHostBinding(other.port, mapping))) {
            hostPort = bound.port;
            held.push(bound.held);
          } else {
            if (bound) passedOver.push(bound.held);
            if (attempt > 100)
              throw new FailedPreconditionError(`no free ephemeral ${request.protocol} port on ${hostIp}`);
          }
        }
      }
      const mapping: PortMapping = {
        hostIp,
        hostPort,
        containerPort: request.containerPort,
        protocol: request.protocol,
      };
      taken.push({ port: mapping, owner: "this container" });
      mappings.push(mapping);
    }
  } catch (err) {
    for (const port of held) port.close();
    throw err;
  } finally {
    for (const port of passedOver) port.close();
  }
  return { mappings, held };
}

/**
 * The host ports this process holds, by attachment (its cniContainerId), until the attachment is torn
 * down here, or `current` says it is gone: torn down by another process (`ctrd rm` of a container
 * `ctrd serve` attached), which cannot close our sockets. That is asked before each allocation
 * (prune) and every 2 s while any port is held.
 */
export class HostPortHolds {
  private readonly holds = new Map<string, { ports: HeldPort[]; current: () => boolean }>();
  private timer: NodeJS.Timeout | undefined;

  add(key: string, ports: HeldPort[], current: () => boolean): void {
    if (ports.length === 0) return;
    this.release(key);
    this.holds.set(key, { ports, current });
    this.timer ??= setInterval(() => this.prune(), 2000).unref();
  }

  release(key: string): void {
    const hold = this.holds.get(key);
    if (!hold) return;
    this.holds.delete(key);
    for (const port of hold.ports) port.close();
    if (this.holds.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Releases the holds of attachments that are gone. */
  prune(): void {
    for (const [key, hold] of [...this.holds]) if (!hold.current()) this.release(key);
  }
}
