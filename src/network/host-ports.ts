import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { FailedPreconditionError } from "../libcontainerd/types/errors.js";
import { ANY_IPV4, type PortMapping, type PortProtocol, type PortRequest, sameHostBinding } from "./ports.js";

/**
 * Binds and releases `hostIp:port`: 0 when the port is in use by a host process, else the port bound
 * (the kernel's pick for port 0). The DNAT rules portmap writes would hide such a process, so a taken
 * port is refused up front, as dockerd's port proxy refuses it by failing to bind.
 */
function probe(protocol: PortProtocol, hostIp: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === "tcp") {
      const server = createServer();
      server.once("error", (err: NodeJS.ErrnoException) =>
        err.code === "EADDRINUSE" ? resolve(0) : reject(err),
      );
      server.listen({ host: hostIp, port, exclusive: true }, () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    } else {
      const socket = createSocket("udp4");
      socket.once("error", (err: NodeJS.ErrnoException) => {
        socket.close();
        if (err.code === "EADDRINUSE") resolve(0);
        else reject(err);
      });
      socket.bind({ address: hostIp, port, exclusive: true }, () => {
        const bound = socket.address().port;
        socket.close(() => resolve(bound));
      });
    }
  });
}

/**
 * A requested host port that another container publishes (`byHost` false) or a host process holds
 * (`byHost` true); `binding` is `hostIp:port`.
 */
export class HostPortTakenError extends FailedPreconditionError {
  constructor(
    message: string,
    readonly binding: string,
    readonly protocol: PortProtocol,
    readonly byHost: boolean,
  ) {
    super(message);
  }
}

function describe(request: PortRequest | PortMapping): string {
  return `${request.hostIp ?? ANY_IPV4}:${request.hostPort}/${request.protocol}`;
}

/**
 * The host side of each requested port: a given port is checked free (of host processes and of other
 * containers' published ports), a missing one is an ephemeral port the kernel picks. Call it under a
 * lock shared with whoever else publishes ports, and record the result before releasing it.
 */
export async function allocateHostPorts(
  requests: readonly PortRequest[],
  published: readonly { port: PortMapping; owner: string }[],
): Promise<PortMapping[]> {
  const taken = [...published];
  const mappings: PortMapping[] = [];
  for (const request of requests) {
    const hostIp = request.hostIp ?? ANY_IPV4;
    let hostPort = request.hostPort;
    if (hostPort !== undefined) {
      const clash = taken.find((other) => sameHostBinding(other.port, { ...request, hostIp }));
      if (clash) {
        throw new HostPortTakenError(
          `host port ${describe(request)} is already published by ${clash.owner}`,
          `${hostIp}:${hostPort}`,
          request.protocol,
          false,
        );
      }
      if ((await probe(request.protocol, hostIp, hostPort)) === 0) {
        throw new HostPortTakenError(
          `host port ${describe(request)} is already in use on the host`,
          `${hostIp}:${hostPort}`,
          request.protocol,
          true,
        );
      }
    } else {
      for (let attempt = 0; hostPort === undefined; attempt++) {
        const candidate = await probe(request.protocol, hostIp, 0);
        const mapping = { hostIp, hostPort: candidate, containerPort: 0, protocol: request.protocol };
        if (candidate !== 0 && !taken.some((other) => sameHostBinding(other.port, mapping)))
          hostPort = candidate;
        else if (attempt > 100)
          throw new FailedPreconditionError(`no free ephemeral ${request.protocol} port on ${hostIp}`);
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
  return mappings;
}
