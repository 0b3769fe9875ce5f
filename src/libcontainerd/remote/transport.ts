import { connect as netConnect } from "node:net";
import { create, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  type Client as ConnectClient,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type ContainerdAddress, hostPort, parseAddress } from "./address.js";

export const NAMESPACE_HEADER = "containerd-namespace";
/** containerd's own default message limits. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * containerd sets no keepalive policy, so grpc-go's default enforcement applies: a PING within
 * 5 minutes of the previous one (while streams are open), or any PING without open streams, is a
 * strike, and the third strike ends the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
 * So PINGs go only on connections with open streams (an events stream, a wait), at most every
 * 5.5 minutes: enough to notice a containerd that vanished without closing the socket.
 */
export const KEEPALIVE_PING_INTERVAL_MS = 330_000;
export const GRPC_SERVER_MIN_PING_INTERVAL_MS = 300_000;

export interface ContainerdTransportOptions {
  address: string | ContainerdAddress;
  namespace: string;
  /** Tests only: a shorter interval shows what containerd does to a client that pings too often. */
  pingIntervalMs?: number;
}

/**
 * One HTTP/2 connection to containerd, shared by every service client. Every call carries the
 * namespace header; the socket (or pipe) decides where the bytes go, so the URL is only an authority.
 * A call that is safe to repeat is sent again once on a new connection when the old one ends
 * under it (GOAWAY, reset): see `retryWhenConnectionLost`.
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
    interceptors: [namespace, noteAnswers(addressKey(address)), retryWhenConnectionLost],
    acceptCompression: [],
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    pingIntervalMs: opts.pingIntervalMs ?? KEEPALIVE_PING_INTERVAL_MS,
    pingIdleConnection: false,
    nodeOptions:
      address.kind === "tcp"
        ? {}
        : {
            createConnection: () => netConnect(address.path),
          },
  });
}

const lastAnswers = new Map<string, number>();

function addressKey(address: ContainerdAddress): string {
  return address.kind === "tcp" ? hostPort(address) : address.path;
}

/**
 * When containerd at `address` (a socket path, or host:port) last answered a call made by this
 * process, errors included; undefined if it never did. The supervisor counts it as progress: a
 * containerd that answers calls is busy, not hung, even while its health checks time out.
 */
export function lastAnswerAt(address: string): number | undefined {
  return lastAnswers.get(address);
}

function noteAnswers(key: string): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      lastAnswers.set(key, Date.now());
      return res;
    } catch (err) {
      if (!isConnectionLoss(err) && !req.signal.aborted) lastAnswers.set(key, Date.now());
      throw err;
    }
  };
}

export function serviceClient<S extends DescService>(service: S, transport: Transport): ConnectClient<S> {
  return createClient(service, transport);
}

const TASKS = "containerd.services.tasks.v1.Tasks/";
const CONTAINERS = "containerd.services.containers.v1.Containers/";

/**
 * Unary methods that containerd may receive twice without harm: reads, Wait (asks again for the
 * same exit), and Kill (a second signal to the same process). Creates, starts, deletes and execs
 * are not repeated: the first may have happened.
 */
const REPEATABLE_METHODS = new Set([
  `${TASKS}Get`,
  `${TASKS}List`,
  `${TASKS}ListPids`,
  `${TASKS}Metrics`,
  `${TASKS}Wait`,
  `${TASKS}Kill`,
  `${CONTAINERS}Get`,
  `${CONTAINERS}List`,
  "containerd.services.version.v1.Version/Version",
  "containerd.services.namespaces.v1.Namespaces/List",
  "grpc.health.v1.Health/Check",
]);

/**
 * Whether a call failed because its connection ended under it (a GOAWAY, a reset or closed
 * session, a PING timeout), rather than because containerd answered with an error. containerd's
 * own answers carry a grpc-status and reach us with a server code; these are the client-side ones.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return false;
  if (err.metadata.has("grpc-status")) return false;
  switch (err.code) {
    case Code.Unavailable:
    case Code.Aborted:
    case Code.Canceled:
    case Code.ResourceExhausted:
      return true;
    case Code.Internal:
      return /session|goaway|stream closed|connection|socket/i.test(err.rawMessage);
    default:
      return false;
  }
}

/** A Kill repeated after its first copy may have arrived finds the process gone: that is success. */
function processAlreadyFinished(err: unknown): boolean {
  return (
    err instanceof ConnectError &&
    err.code === Code.NotFound &&
    /process already finished/.test(err.rawMessage)
  );
}

const retryWhenConnectionLost: Interceptor = (next) => async (req) => {
  if (req.stream || !REPEATABLE_METHODS.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
  try {
    return await next(req);
  } catch (err) {
    if (req.signal.aborted || !isConnectionLoss(err)) throw err;
    try {
      return await next(req);
    } catch (retryErr) {
      if (req.method.name !== "Kill" || !processAlreadyFinished(retryErr)) throw retryErr;
      return {
        stream: false,
        service: req.service,
        method: req.method,
        header: new Headers(),
        trailer: new Headers(),
        message: create(req.method.output),
      };
    }
  }
};
