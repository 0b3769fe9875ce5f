import { connect as netConnect } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { type Client as ConnectClient, createClient, type Transport } from "@connectrpc/connect";
import { type ContainerdAddress, hostPort, parseAddress } from "./address.js";
import { createHttp2GrpcTransport } from "./grpc-http2.js";

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
  return createHttp2GrpcTransport({
    authority: address.kind === "tcp" ? hostPort(address) : "localhost",
    createConnection:
      address.kind === "tcp"
        ? () =>
            netConnect({ host: address.host.replace(/^\[(.*)\]$/, "$1"), port: address.port }).setKeepAlive(
              true,
              30_000,
            )
        : () => netConnect(address.path),
    header: { [NAMESPACE_HEADER]: opts.namespace },
    maxMessageBytes: MAX_MESSAGE_BYTES,
  });
}

export function serviceClient<S extends DescService>(service: S, transport: Transport): ConnectClient<S> {
  return createClient(service, transport);
}
