import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  connect as http2Connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import type { Duplex } from "node:stream";
import {
  create,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";

/**
 * gRPC over one HTTP/2 connection, straight on node:http2: the seam connect's service clients call
 * through (`Transport`), without connect-node's fetch-API layer (Headers, URL, Request objects per
 * call), which cost more client CPU per call than containerd's own Go client spends on a whole
 * container lifecycle, and ~0.1 s of import time.
 *
 * The connection sends no HTTP/2 pings: gRPC-go servers (containerd) allow one ping per 5 minutes
 * and none without an active stream, and answer more with GOAWAY "too_many_pings". A unix socket's
 * peer going away closes the socket, which is noticed at once; TCP gets the kernel's keepalive.
 * A GOAWAY or a refused stream means the server never processed the call: it is sent again on a
 * new connection, transparently, as gRPC clients do.
 */
export interface Http2GrpcTransportOptions {
  /** `localhost` for a socket or pipe, `host:port` for TCP: only the `:authority`. */
  authority: string;
  /** Opens the byte stream under HTTP/2 (a unix socket, a named pipe, a TCP socket). */
  createConnection: () => Duplex;
  /** Sent with every call (e.g. containerd's namespace). A call's own headers take precedence. */
  header?: Record<string, string>;
  /** Largest message sent or received. */
  maxMessageBytes: number;
}

export interface Http2GrpcTransport extends Transport {
  /** Closes the connection; calls in flight fail as Unavailable. */
  close(): void;
}

/** What connect passes as a call's own headers (fetch's HeadersInit). */
type CallHeaders = Parameters<Transport["unary"]>[3];
/** gRPC's OK, which connect's Code enum leaves out. */
const OK = 0;

const GRPC_CONTENT_TYPE = "application/grpc+proto";
/** How often a call that the server never processed (GOAWAY, refused stream) is sent again. */
const TRANSPARENT_RETRIES = 3;
/** Receive windows: large messages (image content, metrics) should not wait on WINDOW_UPDATEs. */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 32 * 1024 * 1024;

/** A call the server cannot have seen: safe to send again on a new connection. */
class RefusedError extends Error {}

/** Errors of calls whose connection ended under them (or never came up), as opposed to the server's answers. */
const connectionLosses = new WeakSet<Error>();

/**
 * Whether a call failed because its connection ended (GOAWAY and close, reset, socket gone) rather
 * than with containerd's answer. The server may or may not have processed it.
 */
export function isConnectionLoss(err: unknown): boolean {
  return err instanceof Error && connectionLosses.has(err);
}

function connectionLoss(error: ConnectError): ConnectError {
  connectionLosses.add(error);
  return error;
}

/**
 * connect's response shape wants Headers; we keep none, so every call shares one empty, read-only
 * instance. Not `new Headers()`: the first one loads Node's fetch implementation (undici), ~12 ms
 * of every ctrd command's start.
 */
const EMPTY_HEADERS: Headers = {
  append: readOnlyHeaders,
  delete: readOnlyHeaders,
  set: readOnlyHeaders,
  get: () => null,
  has: () => false,
  getSetCookie: () => [],
  forEach: () => {},
  keys: () => [][Symbol.iterator](),
  values: () => [][Symbol.iterator](),
  entries: () => [][Symbol.iterator](),
  [Symbol.iterator]: () => [][Symbol.iterator](),
};
function readOnlyHeaders(): never {
  throw new TypeError("a containerd response's headers are not kept (read-only)");
}
export function noHeaders(): Headers {
  return EMPTY_HEADERS;
}

/** connect's name for a code, as its errors print it (`not_found`). */
function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/(?<=[a-z])([A-Z])/g, "_$1").toLowerCase();
}

/**
 * A ConnectError, as everything downstream expects (connect's `instanceof` holds), built without
 * ConnectError's constructor: that makes a `new Headers()` for the error's metadata (loading Node's
 * fetch implementation on the first error, and costing every one after), and a stack trace that
 * would only point into this file's stream handlers. Expected errors (the NotFound that every
 * container delete asks for) should cost next to nothing.
 */
function grpcError(message: string, code: Code, cause?: unknown): ConnectError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error(message.length > 0 ? `[${codeName(code)}] ${message}` : `[${codeName(code)}]`);
  Error.stackTraceLimit = limit;
  const connectError: ConnectError = Object.setPrototypeOf(error, ConnectError.prototype);
  return Object.assign(connectError, {
    name: "ConnectError",
    rawMessage: message,
    code,
    metadata: EMPTY_HEADERS,
    details: [],
    cause,
  });
}

const HTTP_STATUS_CODES: Record<number, Code> = {
  400: Code.Internal,
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.Unimplemented,
  429: Code.Unavailable,
  502: Code.Unavailable,
  503: Code.Unavailable,
  504: Code.Unavailable,
};

function decodeGrpcMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(",") : (value ?? "");
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The gRPC status in a trailers block (or a trailers-only response's headers), if any. */
function statusIn(headers: IncomingHttpHeaders): { code: Code | typeof OK; message: string } | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const code = Number(Array.isArray(raw) ? raw[0] : raw);
  return {
    code: Number.isInteger(code) && code >= 0 && code <= 16 ? (code as Code | typeof OK) : Code.Unknown,
    message: decodeGrpcMessage(headers["grpc-message"]),
  };
}

/**
 * A streamed request its caller encoded already, as the protobuf bytes in parts (a content write:
 * a few field-header bytes, then the data as the buffers it arrived in). The stream writes the
 * parts behind the gRPC prefix as they are: no protobuf encoding, no copy of the data.
 */
const ENCODED = Symbol("encoded request");

/** `init` (what the message holds, for whoever reads it) sent as `parts` exactly. */
export function preEncoded<T extends object>(init: T, parts: readonly Uint8Array[]): T {
  return Object.assign(init, { [ENCODED]: parts });
}

function encodedParts(init: object): readonly Uint8Array[] | undefined {
  return (init as { [ENCODED]?: readonly Uint8Array[] })[ENCODED];
}

/** Messages from this size on are written as prefix + message (see `stream`), not copied. */
const LARGE_MESSAGE_BYTES = 64 * 1024;

function prefix(length: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  return out;
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.byteLength);
  out[0] = 0;
  out.writeUInt32BE(bytes.byteLength, 1);
  out.set(bytes, 5);
  return out;
}

function headerRecord(init: CallHeaders, into: OutgoingHttpHeaders): void {
  if (init === undefined) return;
  if (Array.isArray(init)) {
    for (const [key, value] of init) into[key.toLowerCase()] = value;
  } else if (typeof (init as Headers).forEach === "function") {
    (init as Headers).forEach((value, key) => {
      into[key] = value;
    });
  } else {
    for (const [key, value] of Object.entries(init as Record<string, string>))
      into[key.toLowerCase()] = value;
  }
}

/** Where a call's response messages go as they arrive, then its end or its error. */
interface CallSink {
  /** A response message; throws (ending the call) when the call expects no more. */
  message(bytes: Uint8Array): void;
  finish(error?: Error): void;
  readonly finished: boolean;
}

/**
 * A unary call's one response message: no queue, no async iterator, one promise for the caller.
 * Most of a unary call's client CPU was that machinery, not HTTP/2.
 */
class UnaryReply implements CallSink {
  private reply: Uint8Array | undefined;
  private done = false;
  readonly promise: Promise<Uint8Array>;
  private resolve!: (reply: Uint8Array) => void;
  private reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise<Uint8Array>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  message(bytes: Uint8Array): void {
    if (this.reply) throw grpcError("protocol error: more than one response message", Code.Unimplemented);
    this.reply = bytes;
  }

  finish(error?: Error): void {
    if (this.done) return;
    this.done = true;
    if (error) this.reject(error);
    else if (this.reply) this.resolve(this.reply);
    else this.reject(grpcError("protocol error: missing response message", Code.Unimplemented));
  }

  get finished(): boolean {
    return this.done;
  }
}

/** Messages of one call as they arrive, then its end or its error: an async iterable for the caller. */
class Inbox implements AsyncIterable<Uint8Array>, CallSink {
  private readonly queue: Uint8Array[] = [];
  private done = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  message(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.notify();
  }

  finish(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.notify();
  }

  get finished(): boolean {
    return this.done;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

/** Splits the length-prefixed gRPC messages out of a stream's DATA chunks. */
class MessageParser {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  /** Hands `sink` the complete messages in `chunk` (and what came before it); throws on an oversized or compressed one. */
  push(chunk: Buffer, sink: CallSink): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      if (this.buffer[0] !== 0) {
        throw grpcError("protocol error: compressed message without negotiated encoding", Code.Internal);
      }
      const length = this.buffer.readUInt32BE(1);
      if (length > this.maxBytes) {
        throw grpcError(
          `message larger than ${this.maxBytes} bytes (${length} bytes)`,
          Code.ResourceExhausted,
        );
      }
      if (this.buffer.length < 5 + length) return;
      const message = this.buffer.subarray(5, 5 + length);
      this.buffer = this.buffer.subarray(5 + length);
      sink.message(message);
    }
  }

  get pending(): boolean {
    return this.buffer.length > 0;
  }
}

export function createHttp2GrpcTransport(opts: Http2GrpcTransportOptions): Http2GrpcTransport {
  let session: ClientHttp2Session | undefined;
  let active = 0;
  let refd = false;
  let unrefQueued = false;
  let closed = false;

  const liveSession = (): ClientHttp2Session => {
    if (closed) throw grpcError("transport closed", Code.Unavailable);
    if (session && !session.closed && !session.destroyed) return session;
    const created = http2Connect(`http://${opts.authority}`, {
      createConnection: () => opts.createConnection(),
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW_BYTES },
      // Node's default (10 MB) ends every stream with ENHANCE_YOUR_CALM once that much waits for
      // containerd's flow-control window: a pull writing several layers at once gets there.
      maxSessionMemory: 128,
    });
    created.on("connect", () => {
      connected.add(created);
      created.setLocalWindowSize(SESSION_WINDOW_BYTES);
    });
    // Errors reach the calls through their streams (with this one as the cause: the errno of a
    // socket that never connected); the session's own event must not crash the process.
    created.on("error", (err) => sessionErrors.set(created, err));
    const forget = () => {
      if (session === created) session = undefined;
    };
    // After a GOAWAY no new stream may start on this session; calls in flight finish (or are refused).
    created.on("goaway", forget);
    created.on("close", forget);
    // A new session starts ref'd only while calls are in flight.
    if (refd) created.ref();
    else created.unref();
    session = created;
    return created;
  };

  // The connection keeps the process alive only while a call is in flight (an event stream, a Wait).
  // Between back-to-back calls it stays ref'd: the unref waits a turn of the event loop, so a
  // sequence of calls does not toggle the socket's handle for each one.
  const began = (s: ClientHttp2Session) => {
    active++;
    if (!refd) {
      s.ref();
      refd = true;
    }
  };
  const ended = () => {
    if (--active > 0 || unrefQueued) return;
    unrefQueued = true;
    setImmediate(() => {
      unrefQueued = false;
      if (active === 0 && refd) {
        session?.unref();
        refd = false;
      }
    });
  };

  /** What every call sends; a call adds its path (and its own headers, its deadline). */
  const baseHeaders: OutgoingHttpHeaders = {
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_CONTENT_TYPE]: GRPC_CONTENT_TYPE,
    te: "trailers",
    ...opts.header,
  };

  /**
   * Starts one call: the response's messages go to `sink`, which then ends with the call's status.
   * The caller writes the request messages to the returned stream.
   */
  const open = (
    path: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: CallHeaders,
    sink: CallSink,
  ): ClientHttp2Stream => {
    const s = liveSession();
    const headers: OutgoingHttpHeaders = { ...baseHeaders, [constants.HTTP2_HEADER_PATH]: path };
    if (header !== undefined) headerRecord(header, headers);
    if (timeoutMs !== undefined) headers["grpc-timeout"] = `${Math.max(1, Math.ceil(timeoutMs))}m`;
    let stream: ClientHttp2Stream;
    try {
      stream = s.request(headers, { endStream: false });
    } catch (err) {
      // The session closed between our check and the request: nothing was sent.
      throw new RefusedError("connection closed before the call was sent", { cause: err });
    }
    began(s);
    const parser = new MessageParser(opts.maxMessageBytes);
    let status: { code: Code | typeof OK; message: string } | undefined;
    let responded = false;
    let streamError: Error | undefined;
    let timer: NodeJS.Timeout | undefined;

    const fail = (error: Error) => {
      sink.finish(error);
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    };
    const onAbort = () => fail(grpcError("the operation was aborted", Code.Canceled, signal?.reason));
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => fail(grpcError("deadline exceeded", Code.DeadlineExceeded)), timeoutMs);
    }

    stream.on("response", (h) => {
      responded = true;
      const httpStatus = Number(h[constants.HTTP2_HEADER_STATUS]);
      status = statusIn(h);
      if (httpStatus !== 200 && status === undefined) {
        fail(grpcError(`HTTP status ${httpStatus}`, HTTP_STATUS_CODES[httpStatus] ?? Code.Unknown));
      }
    });
    stream.on("trailers", (t) => {
      status = statusIn(t) ?? status;
    });
    stream.on("data", (chunk: Buffer) => {
      if (sink.finished) return;
      try {
        parser.push(chunk, sink);
      } catch (err) {
        fail(err as Error);
      }
    });
    stream.on("error", (err) => {
      streamError = err;
    });
    stream.on("close", () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      ended();
      if (sink.finished) return;
      if (status) {
        if (status.code === OK && parser.pending) {
          sink.finish(grpcError("protocol error: truncated message", Code.Internal));
        } else {
          sink.finish(status.code === OK ? undefined : grpcError(status.message, status.code as Code));
        }
        return;
      }
      const rstCode = stream.rstCode;
      if (!responded && rstCode === constants.NGHTTP2_REFUSED_STREAM) {
        sink.finish(new RefusedError("stream refused by the server", { cause: streamError }));
        return;
      }
      // The connection went away mid-call (containerd stopped or restarted). The underlying errno,
      // if any, stays on the cause so callers can tell "never connected" from "lost".
      const cause = systemError(sessionErrors.get(s)) ?? systemError(streamError) ?? streamError;
      const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
      sink.finish(
        connectionLoss(
          grpcError(
            s.connecting || !connected.has(s)
              ? `cannot connect to containerd${errno ? ` (${errno})` : ""}`
              : `connection to containerd lost${rstCode ? ` (HTTP/2 code ${rstCode})` : ""}`,
            Code.Unavailable,
            cause,
          ),
        ),
      );
    });
    return stream;
  };

  /** Sends again (on a new connection) a call that the server never processed. */
  const withRetries = async <T>(attempt: () => Promise<T>): Promise<T> => {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof RefusedError)) throw err;
        if (tries >= TRANSPARENT_RETRIES) {
          throw connectionLoss(grpcError(err.message, Code.Unavailable, err));
        }
      }
    }
  };

  /** One unary call: the request in one write, its one response message. */
  const unaryOnce = (
    path: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: CallHeaders,
    body: Buffer,
  ): Promise<Uint8Array> => {
    const reply = new UnaryReply();
    open(path, signal, timeoutMs, header, reply).end(body);
    return reply.promise;
  };

  const pathOf = (method: DescMethodUnary | DescMethodStreaming): string => {
    let path = paths.get(method);
    if (path === undefined) {
      path = `/${method.parent.typeName}/${method.name}`;
      paths.set(method, path);
    }
    return path;
  };

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: CallHeaders,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const request = create(method.input, input);
      const body = frame(toBinary(method.input, request));
      if (body.length - 5 > opts.maxMessageBytes) {
        // The caller's input (a spec, env or labels) is too large: theirs to fix, so InvalidArgument.
        throw grpcError(
          `request of ${body.length - 5} bytes is larger than containerd accepts (${opts.maxMessageBytes} bytes)`,
          Code.InvalidArgument,
        );
      }
      const path = pathOf(method);
      const reply = await withRetries(() => unaryOnce(path, signal, timeoutMs, header, body));
      return {
        stream: false,
        service: method.parent,
        method,
        header: noHeaders(),
        trailer: noHeaders(),
        message: fromBinary(method.output, reply) as MessageShape<O>,
      };
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: CallHeaders,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      // A stream is retried only while nothing of it went out but its headers (see RefusedError).
      const inbox = new Inbox();
      const stream = await withRetries(async () => open(pathOf(method), signal, timeoutMs, header, inbox));
      const pump = async () => {
        try {
          for await (const init of input) {
            if (inbox.finished) return;
            const parts = encodedParts(init);
            let sent: boolean;
            if (parts) {
              // Corked: the prefix and the parts reach the session as one writev.
              stream.cork();
              stream.write(prefix(parts.reduce((sum, part) => sum + part.byteLength, 0)));
              sent = parts.reduce((ok, part) => stream.write(part) && ok, true);
              stream.uncork();
            } else {
              const bytes = toBinary(method.input, create(method.input, init));
              // A large message (a content write) goes out behind its own 5-byte prefix rather
              // than copied into one framed buffer.
              if (bytes.byteLength < LARGE_MESSAGE_BYTES) sent = stream.write(frame(bytes));
              else {
                stream.write(prefix(bytes.byteLength));
                sent = stream.write(bytes);
              }
            }
            if (!sent) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  stream.off("drain", done);
                  stream.off("close", done);
                  resolve();
                };
                stream.on("drain", done);
                stream.on("close", done);
              });
            }
          }
          if (!stream.closed) stream.end();
        } catch (err) {
          inbox.finish(err instanceof Error ? err : new Error(String(err)));
          if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        }
      };
      void pump();
      async function* messages(): AsyncGenerator<MessageShape<O>> {
        try {
          for await (const bytes of inbox) yield fromBinary(method.output, bytes);
        } catch (err) {
          if (err instanceof RefusedError) {
            throw grpcError(err.message, Code.Unavailable, err);
          }
          throw err;
        } finally {
          // The caller stopped reading early: end the call rather than leave the stream open.
          if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        }
      }
      return {
        stream: true,
        service: method.parent,
        method,
        header: noHeaders(),
        trailer: noHeaders(),
        message: messages(),
      };
    },

    close(): void {
      closed = true;
      session?.destroy();
      session = undefined;
    },
  };
}

/** The system error (ECONNREFUSED, ENOENT, ECONNRESET, …) behind a node error, if there is one. */
function systemError(err: unknown): Error | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return e;
    e = e.cause;
  }
  return undefined;
}

/** `/package.Service/Method` of each method, built once. */
const paths = new WeakMap<DescMethodUnary | DescMethodStreaming, string>();
/** The error each session died of, if it died of one. */
const sessionErrors = new WeakMap<ClientHttp2Session, Error>();
/** Sessions whose connection was made (a failure on the others never reached the server). */
const connected = new WeakSet<ClientHttp2Session>();
