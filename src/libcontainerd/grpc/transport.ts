import { connect as netConnect } from "node:net";
import { create, type DescService } from "@bufbuild/protobuf";
import {
  type CallOptions,
  Code,
  type Client as ConnectClient,
  ConnectError,
  createClient,
  type Transport,
} from "@connectrpc/connect";
import { type ContainerdAddress, hostPort, parseAddress } from "./address.js";
import {
  createHttp2GrpcTransport,
  type Http2GrpcTransport,
  isConnectionLoss,
  timeLeft,
  unaryResponse,
} from "./grpc-http2.js";

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
 * A call that is safe to repeat is sent once more when its connection ends under it (see
 * `repeatSafeCalls`), and every answer is noted for the supervisor (see `lastAnswerAt`).
 */
export function createContainerdTransport(opts: ContainerdTransportOptions): Http2GrpcTransport {
  const address = typeof opts.address === "string" ? parseAddress(opts.address) : opts.address;
  const transport = createHttp2GrpcTransport({
    authority: address.kind === "tcp" ? hostPort(address) : "localhost",
    createConnection:
      address.kind === "tcp"
        ? (onread) =>
            netConnect({
              host: address.host.replace(/^\[(.*)\]$/, "$1"),
              port: address.port,
              onread,
            }).setKeepAlive(true, 30_000)
        : (onread) => netConnect({ path: address.path, onread }),
    header: { [NAMESPACE_HEADER]: opts.namespace },
    maxMessageBytes: MAX_MESSAGE_BYTES,
  });
  return repeatSafeCalls(transport, address.kind === "tcp" ? hostPort(address) : address.path);
}

export function serviceClient<S extends DescService>(service: S, transport: Transport): ConnectClient<S> {
  return stoppableStreams(service, createClient(service, transport));
}

/**
 * A service client made on first use, its descriptors loaded then: building a service's protobuf
 * descriptors costs a command's start 1-5 ms, and most commands never call snapshots or namespaces.
 */
export function lazyServiceClient<S extends DescService>(
  load: () => Promise<S>,
  transport: Transport,
): () => Promise<ConnectClient<S>> {
  let client: Promise<ConnectClient<S>> | undefined;
  return () => {
    client ??= load().then((service) => stoppableStreams(service, createClient(service, transport)));
    return client;
  };
}

type StreamingMethod = (input: unknown, options?: CallOptions) => AsyncIterable<unknown>;

/**
 * connect's client hands a stream's messages out through an iterable without `return()` (it leaves
 * it out on purpose), so a caller that stops reading early (a `break`, a throw in the loop, a
 * pipeline that failed) never reaches the transport, whose stream would stay open, held at its
 * flow-control window, with containerd's handler and our socket (a process that cannot exit).
 * Each call of a server- or bidi-streaming method gets a signal of its own, aborted by `return()`.
 */
function stoppableStreams<S extends DescService>(service: S, client: ConnectClient<S>): ConnectClient<S> {
  const methods = client as unknown as Record<string, StreamingMethod>;
  for (const method of service.methods) {
    if (method.methodKind !== "server_streaming" && method.methodKind !== "bidi_streaming") continue;
    const call = methods[method.localName];
    if (!call) continue;
    methods[method.localName] = (input, options) => {
      const stop = new AbortController();
      const signal = options?.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
      const messages = call(input, { ...options, signal })[Symbol.asyncIterator]();
      const iterator: AsyncIterableIterator<unknown> = {
        next: () => messages.next(),
        return: async (value?: unknown) => {
          stop.abort();
          return { done: true, value };
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    };
  }
  return client;
}

/**
 * Unary methods containerd may receive twice without harm: reads, Wait (asks again for the same
 * exit), and Kill (a second signal to the same process). Creates, starts, deletes and execs are not
 * repeated: the first may have happened.
 */
const REPEATABLE_METHODS = new Set([
  "containerd.services.tasks.v1.Tasks/Get",
  "containerd.services.tasks.v1.Tasks/List",
  "containerd.services.tasks.v1.Tasks/ListPids",
  "containerd.services.tasks.v1.Tasks/Metrics",
  "containerd.services.tasks.v1.Tasks/Wait",
  "containerd.services.tasks.v1.Tasks/Kill",
  "containerd.services.containers.v1.Containers/Get",
  "containerd.services.containers.v1.Containers/List",
  "containerd.services.version.v1.Version/Version",
  "containerd.services.namespaces.v1.Namespaces/List",
]);

/** A Kill repeated after its first copy may have arrived finds the process gone: that is success. */
function processAlreadyFinished(err: unknown): boolean {
  return (
    err instanceof ConnectError &&
    err.code === Code.NotFound &&
    /process already finished/.test(err.rawMessage)
  );
}

const lastAnswers = new Map<string, number>();

/**
 * When containerd at `address` (a socket path, or host:port) last answered a call made by this
 * process, errors included; undefined if it never did. The supervisor counts it as progress: a
 * containerd that answers calls is busy, not hung, even while its health checks time out.
 */
export function lastAnswerAt(address: string): number | undefined {
  return lastAnswers.get(address);
}

/**
 * A GOAWAY (containerd restarting, or a server enforcing its limits) or a reset may end the
 * connection while a call is in flight; the transport already resends calls the server never saw.
 * Here a repeatable call whose fate is unknown is sent once more on a new connection, so a kill or
 * a read at that moment succeeds instead of failing as Unavailable, within the call's deadline.
 */
function repeatSafeCalls(inner: Http2GrpcTransport, addressKey: string): Http2GrpcTransport {
  const answered = (err?: unknown, signal?: AbortSignal): void => {
    if (err === undefined || (!isConnectionLoss(err) && !signal?.aborted))
      lastAnswers.set(addressKey, Date.now());
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const start = timeoutMs === undefined ? 0 : performance.now();
      const attempt = async (timeout: number | undefined) => {
        try {
          const response = await inner.unary(method, signal, timeout, header, input, contextValues);
          answered();
          return response;
        } catch (err) {
          answered(err, signal);
          throw err;
        }
      };
      try {
        return await attempt(timeoutMs);
      } catch (err) {
        if (!isConnectionLoss(err) || signal?.aborted) throw err;
        if (!REPEATABLE_METHODS.has(`${method.parent.typeName}/${method.name}`)) throw err;
        try {
          // The same deadline as the first copy had, not a new one.
          return await attempt(timeoutMs === undefined ? undefined : timeLeft(start, timeoutMs));
        } catch (retryErr) {
          if (method.name !== "Kill" || !processAlreadyFinished(retryErr)) throw retryErr;
          return unaryResponse(method, create(method.output));
        }
      }
    },
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      inner.stream(method, signal, timeoutMs, header, input, contextValues),
    close: () => inner.close(),
  };
}
