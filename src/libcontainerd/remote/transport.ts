import { connect as netConnect } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import {
  type Client as ConnectClient,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type ContainerdAddress, hostPort, parseAddress } from "./address.js";

export const NAMESPACE_HEADER = "containerd-namespace";
/** containerd's own default message limits. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface ContainerdTransportOptions {
  address: string | ContainerdAddress;
  namespace: string;
}

/**
 * One HTTP/2 connection to containerd, shared by every service client. Every call carries the
 * namespace header; the socket (or pipe) decides where the bytes go, so the URL is only an authority.
 */
export function createContainerdTransport(opts: ContainerdTransportOptions): Transport {
  const address = typeof opts.address === "string" ? parseAddress(opts.address) : opts.address;
  const namespace: Interceptor = (next) => (req) => {
    if (!req.header.has(NAMESPACE_HEADER)) req.header.set(NAMESPACE_HEADER, opts.namespace);
    return next(req);
  };
  const baseUrl = address.kind === "tcp" ? `http://${hostPort(address)}` : "http://localhost";
  return createGrpcTransport({
    baseUrl,
    interceptors: [namespace],
    acceptCompression: [],
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    // Idle connections are pinged so a containerd that went away is noticed by the next call.
    pingIntervalMs: 30_000,
    nodeOptions:
      address.kind === "tcp"
        ? {}
        : {
            createConnection: () => netConnect(address.path),
          },
  });
}

export function serviceClient<S extends DescService>(service: S, transport: Transport): ConnectClient<S> {
  return createClient(service, transport);
}
