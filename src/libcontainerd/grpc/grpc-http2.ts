import type { OnReadOpts, Socket } from "node:net";
import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { codecOf } from "./codec.js";
import {
  type ClientStream,
  Http2Connection,
  type StreamEnd,
  type StreamListener,
} from "./http2/connection.js";
import { ErrorCode } from "./http2/frames.js";
import { encodeField, encodeHeaderBlock } from "./http2/hpack.js";

/**
 * gRPC over one HTTP/2 connection, on our own HTTP/2 client (./http2/): the seam connect's service
 * clients call through (`Transport`). Neither connect-node's fetch-API layer (Headers, URL, Request
 * objects per call) nor node:http2 (a Duplex per call, header objects, a callback from nghttp2 per
 * frame): both cost more client CPU per call than containerd's own Go client spends.
 *
 * The connection sends no HTTP/2 pings: gRPC-go servers (containerd) allow one ping per 5 minutes
 * and none without an active stream, and answer more with GOAWAY "too_many_pings". A unix socket's
 * peer going away closes the socket, which is noticed at once; TCP gets the kernel's keepalive.
 * A GOAWAY or a refused stream means the server never processed the call: a unary or
 * server-streaming call is sent again on a new connection, transparently, as gRPC clients do,
 * within the deadline of its first attempt.
 *
 * Flow control: the connection's window is given back as DATA arrives (one slow stream must not
 * stall the others), a stream's as its reader takes the messages (a caller that stops reading
 * Content.Read or events makes containerd wait, rather than us buffer without bound), as grpc-go.
 * A unary call's one reply is bounded by `maxMessageBytes`, so its window goes back on arrival.
 */
export interface Http2GrpcTransportOptions {
  /** `localhost` for a socket or pipe, `host:port` for TCP: only the `:authority`. */
  authority: string;
  /**
   * Opens the byte stream under HTTP/2 (a unix socket, a named pipe, a TCP socket), passing
   * `onread` to net.connect: reads go straight to the HTTP/2 connection.
   */
  createConnection: (onread: OnReadOpts) => Socket;
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

/**
 * What remains of a call's deadline of `timeoutMs` that started at `start` (performance.now()),
 * for an attempt after the first; DeadlineExceeded when nothing does. A call sent again keeps the
 * deadline its caller gave it, rather than a new one for each attempt.
 */
export function timeLeft(start: number, timeoutMs: number): number {
  const left = timeoutMs - (performance.now() - start);
  if (left <= 0) throw grpcError("deadline exceeded", Code.DeadlineExceeded);
  return left;
}

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

/** A unary call's answer as connect shapes it (no headers or trailers kept). */
export function unaryResponse<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  message: MessageShape<O>,
): UnaryResponse<I, O> {
  return {
    stream: false,
    service: method.parent,
    method,
    header: EMPTY_HEADERS,
    trailer: EMPTY_HEADERS,
    message,
  };
}

/** connect's name for each code, as its errors print it (`not_found`). */
const CODE_NAMES = new Map<Code, string>();

function codeName(code: Code): string {
  let name = CODE_NAMES.get(code);
  if (name === undefined) {
    name = (Code[code] ?? "unknown").replace(/(?<=[a-z])([A-Z])/g, "_$1").toLowerCase();
    CODE_NAMES.set(code, name);
  }
  return name;
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

/**
 * grpc-message's percent-encoding, undone byte by byte and read as UTF-8, as grpc-go does: one
 * invalid byte (a file name's) leaves the rest of the message decoded, not all of it encoded.
 */
function decodeGrpcMessage(text: string): string {
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text[i] === "%" ? text.slice(i + 1, i + 3) : "";
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      for (const byte of Buffer.from(text[i]!, "utf8")) bytes.push(byte);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Largest value gRPC's grpc-timeout header carries (8 ASCII digits). */
const MAX_TIMEOUT_DIGITS = 99_999_999;

/**
 * A deadline as grpc-timeout: in the smallest unit (m, S, M, H) whose value fits 8 digits, rounded
 * up, as grpc-go's encodeTimeout. containerd refuses more digits (a deadline of 28 h or more, in ms).
 */
export function grpcTimeout(timeoutMs: number): string {
  const ms = Math.max(1, Math.ceil(timeoutMs));
  for (const [unit, perUnit] of [
    ["m", 1],
    ["S", 1_000],
    ["M", 60_000],
    ["H", 3_600_000],
  ] as const) {
    const value = Math.ceil(ms / perUnit);
    if (value <= MAX_TIMEOUT_DIGITS) return `${value}${unit}`;
  }
  return `${MAX_TIMEOUT_DIGITS}H`;
}

interface Status {
  code: Code | typeof OK;
  message: string;
}

/** The gRPC status in a trailers block (or a trailers-only response's headers), if any. */
function statusIn(fields: string[]): Status | undefined {
  let raw: string | undefined;
  let message = "";
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === "grpc-status") raw = fields[i + 1];
    else if (fields[i] === "grpc-message") message = fields[i + 1]!;
  }
  if (raw === undefined) return undefined;
  const code = Number(raw);
  return {
    code: Number.isInteger(code) && code >= 0 && code <= 16 ? (code as Code | typeof OK) : Code.Unknown,
    message: decodeGrpcMessage(message),
  };
}

function httpStatusIn(fields: string[]): number {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === ":status") return Number(fields[i + 1]);
  return 0;
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

function prefix(length: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  return out;
}

/** A call's own headers, lowercase, into `into` (replacing what it holds under the same names). */
function headerRecord(init: CallHeaders, into: Map<string, string>): void {
  if (init === undefined) return;
  if (Array.isArray(init)) {
    for (const [key, value] of init) into.set(key.toLowerCase(), value);
  } else if (typeof (init as Headers).forEach === "function") {
    (init as Headers).forEach((value, key) => {
      into.set(key, value);
    });
  } else {
    for (const [key, value] of Object.entries(init as Record<string, string>))
      into.set(key.toLowerCase(), value);
  }
}

/** Where a call's response messages go as they arrive, then its end or its error. */
interface CallSink {
  /** A response message; throws (ending the call) when the call expects no more. */
  message(bytes: Uint8Array): void;
  finish(error?: Error): void;
  /** The server refused the call before processing it: send it again, or finish. */
  refused(refusal: RefusedError): void;
  readonly finished: boolean;
  /** Whether the stream's window goes back as the reader takes messages (`Call.taken`), not on arrival. */
  readonly windowOnRead: boolean;
  /** Whether the reader waits for a message now (see `Call.starved`). */
  readonly waiting: boolean;
}

/**
 * A unary call's one response message: no queue, no async iterator, one promise for the caller.
 * Most of a unary call's client CPU was that machinery, not HTTP/2.
 */
class UnaryReply implements CallSink {
  private reply: Uint8Array | undefined;
  private done = false;
  // One reply of at most maxMessageBytes: its window goes back on arrival.
  readonly windowOnRead = false;
  readonly waiting = false;
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

  /** Rejects the promise with the refusal: `withRetries` sends the call again. */
  refused(refusal: RefusedError): void {
    this.finish(refusal);
  }

  get finished(): boolean {
    return this.done;
  }
}

/**
 * Messages of one call as they arrive, then its end or its error: an async iterable for the caller.
 * The call's stream window goes back to the server as the iterator hands messages out.
 */
class Inbox implements AsyncIterable<Uint8Array>, CallSink {
  /** The call the messages come from: its latest attempt. */
  call!: Call;
  /** Sends the call again when refused; unset, a refusal ends it Unavailable. */
  resend: ((refusal: RefusedError) => void) | undefined;
  readonly windowOnRead = true;
  waiting = false;
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

  refused(refusal: RefusedError): void {
    if (this.resend) this.resend(refusal);
    else this.finish(connectionLoss(grpcError(refusal.message, Code.Unavailable, refusal)));
  }

  get finished(): boolean {
    return this.done;
  }

  private notify(): void {
    // The reader has a message (or the end) to take: it no longer waits, and no more of the window
    // is raised for it (`Call.starved`) until it asks again.
    this.waiting = false;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        this.call.taken(next.byteLength);
        yield next;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      this.waiting = true;
      this.call.starved();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

/** A server's RST_STREAM code as a gRPC code (grpc-go's http2ErrConvTab). */
function codeOfReset(code: number): Code {
  switch (code) {
    case ErrorCode.REFUSED_STREAM:
      return Code.Unavailable;
    case ErrorCode.CANCEL:
      return Code.Canceled;
    case ErrorCode.FLOW_CONTROL_ERROR:
    case ErrorCode.ENHANCE_YOUR_CALM:
      return Code.ResourceExhausted;
    case ErrorCode.INADEQUATE_SECURITY:
      return Code.PermissionDenied;
    default:
      return Code.Internal;
  }
}

/** Splits the length-prefixed gRPC messages out of a stream's DATA chunks. */
class MessageParser {
  private buffer: Buffer = Buffer.alloc(0);
  /**
   * Chunks of a message not yet whole, beyond `buffer`, and their length: joined once the message
   * is complete. Joining at every 16 KiB DATA frame copied a 15 MiB reply ~7 GiB over.
   */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private wanted = 0;

  constructor(private readonly maxBytes: number) {}

  /** Hands `sink` the complete messages in `chunk` (and what came before it); throws on an oversized or compressed one. */
  push(chunk: Buffer, sink: CallSink): void {
    if (this.wanted > 0) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.buffer.length + this.partBytes < this.wanted) return;
      this.buffer = Buffer.concat([this.buffer, ...this.parts], this.buffer.length + this.partBytes);
      this.parts = [];
      this.partBytes = 0;
      this.wanted = 0;
    } else {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    }
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
      if (this.buffer.length < 5 + length) {
        this.wanted = 5 + length;
        return;
      }
      const message = this.buffer.subarray(5, 5 + length);
      this.buffer = this.buffer.subarray(5 + length);
      sink.message(message);
    }
  }

  get pending(): boolean {
    return this.buffer.length + this.partBytes > 0;
  }

  /** Octets still to come of the message begun (0 while none is, or its prefix is not whole). */
  get missing(): number {
    return this.wanted > 0 ? this.wanted - this.buffer.length - this.partBytes : 0;
  }
}

/**
 * One call on a stream: its response headers, messages and trailers become the sink's messages and
 * end; its deadline and its AbortSignal end it with RST_STREAM (CANCEL).
 */
class Call implements StreamListener {
  stream!: ClientStream;
  private readonly parser: MessageParser;
  private status: Status | undefined;
  private responded = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;
  /** Wakes a writer waiting for the stream to take more. */
  private wakeWriter: (() => void) | undefined;

  constructor(
    readonly sink: CallSink,
    maxMessageBytes: number,
    private readonly signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    this.parser = new MessageParser(maxMessageBytes);
    if (signal) {
      this.onAbort = () => this.fail(grpcError("the operation was aborted", Code.Canceled, signal.reason));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(
        () => this.fail(grpcError("deadline exceeded", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  /** Ends the call with `error` and the stream with CANCEL. */
  fail(error: Error): void {
    this.sink.finish(error);
    if (!this.stream.closed) this.stream.cancel(ErrorCode.CANCEL);
  }

  /**
   * The reader took a message of `bytes` (with `windowOnRead`): those, and its 5-octet prefix, may
   * come again.
   */
  taken(bytes: number): void {
    this.stream.read(bytes + 5);
  }

  /** The reader waits: if a message has begun, the server must be able to send the rest of it. */
  starved(): void {
    const missing = this.parser.missing;
    if (missing > 0) this.stream.expect(missing);
  }

  /** Resolves once the stream took what was written, or ended. */
  writable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeWriter = resolve;
    });
  }

  onHeaders(fields: string[], _endStream: boolean): void {
    if (this.responded) {
      this.status = statusIn(fields) ?? this.status;
      return;
    }
    this.responded = true;
    this.status = statusIn(fields);
    const httpStatus = httpStatusIn(fields);
    if (httpStatus !== 200 && this.status === undefined) {
      this.fail(grpcError(`HTTP status ${httpStatus}`, HTTP_STATUS_CODES[httpStatus] ?? Code.Unknown));
    }
  }

  onData(chunk: Buffer): void {
    if (this.sink.finished) return;
    try {
      this.parser.push(chunk, this.sink);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (this.sink.waiting) this.starved();
  }

  onWritable(): void {
    const wake = this.wakeWriter;
    this.wakeWriter = undefined;
    wake?.();
  }

  onClose(end: StreamEnd): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.onAbort) this.signal?.removeEventListener("abort", this.onAbort);
    this.onWritable();
    if (this.sink.finished) return;
    const status = this.status;
    if (end.kind === "done") {
      if (!status) {
        this.sink.finish(
          grpcError("protocol error: the response ended without a grpc-status", Code.Internal),
        );
      } else if (status.code === OK && this.parser.pending) {
        this.sink.finish(grpcError("protocol error: truncated message", Code.Internal));
      } else {
        this.sink.finish(status.code === OK ? undefined : grpcError(status.message, status.code as Code));
      }
      return;
    }
    if (end.kind === "refused") {
      if (!this.responded) {
        this.sink.refused(new RefusedError("the server went away before processing the call (GOAWAY)"));
      } else {
        // It answered, yet names the call unprocessed: not sent again (part of the answer may be
        // out already), and not complete.
        this.sink.finish(
          connectionLoss(grpcError("connection to containerd lost (GOAWAY)", Code.Unavailable)),
        );
      }
      return;
    }
    if (end.kind === "reset") {
      if (!end.local && end.code === ErrorCode.REFUSED_STREAM && !this.responded) {
        this.sink.refused(new RefusedError("stream refused by the server"));
      } else if (end.local) {
        this.sink.finish(grpcError(`protocol error: HTTP/2 stream error (code ${end.code})`, Code.Internal));
      } else {
        // The server ended this stream, not the connection: grpc-go's client maps the code so.
        this.sink.finish(
          grpcError(`stream reset by containerd (HTTP/2 code ${end.code})`, codeOfReset(end.code)),
        );
      }
      return;
    }
    // The connection went away mid-call (containerd stopped or restarted). The underlying errno,
    // if any, stays on the cause so callers can tell "never connected" from "lost".
    const cause = systemError(end.cause) ?? end.cause;
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
    this.sink.finish(
      connectionLoss(
        grpcError(
          end.connected
            ? `connection to containerd lost${end.goawayCode ? ` (HTTP/2 code ${end.goawayCode})` : ""}`
            : `cannot connect to containerd${errno ? ` (${errno})` : ""}`,
          Code.Unavailable,
          cause,
        ),
      ),
    );
  }
}

export function createHttp2GrpcTransport(opts: Http2GrpcTransportOptions): Http2GrpcTransport {
  let connection: Http2Connection | undefined;
  let closed = false;

  const liveConnection = (): Http2Connection => {
    if (closed) throw grpcError("transport closed", Code.Unavailable);
    if (connection?.usable) return connection;
    const created: Http2Connection = new Http2Connection(opts.createConnection, {
      streamWindow: STREAM_WINDOW_BYTES,
      connectionWindow: SESSION_WINDOW_BYTES,
      // After a GOAWAY (or an error) no new stream may start there; calls in flight finish.
      onUnusable: () => {
        if (connection === created) connection = undefined;
      },
    });
    connection = created;
    return created;
  };

  /** What every call sends besides its path: static-table indices and literals, encoded once. */
  const pseudoFields: [string, string][] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", opts.authority],
  ];
  const regularFields: [string, string][] = [
    ["content-type", GRPC_CONTENT_TYPE],
    ["te", "trailers"],
    ...Object.entries(opts.header ?? {}).map(([k, v]): [string, string] => [k.toLowerCase(), v]),
  ];
  const pseudoBlock = encodeHeaderBlock(pseudoFields);
  const regularBlock = encodeHeaderBlock(regularFields);
  /** Each method's whole header block, built on its first call. */
  const blocks = new Map<string, Buffer>();

  const headerBlock = (path: string, timeoutMs: number | undefined, header: CallHeaders): Buffer => {
    let block: Buffer | undefined;
    if (header === undefined || (Array.isArray(header) && header.length === 0)) {
      block = blocks.get(path);
      if (!block) {
        // Pseudo-header fields come first (RFC 9113 §8.3).
        block = Buffer.concat([pseudoBlock, encodeField(":path", path), regularBlock]);
        blocks.set(path, block);
      }
    } else {
      // A call's own headers take precedence over the transport's.
      const fields = new Map<string, string>([...pseudoFields, [":path", path], ...regularFields]);
      headerRecord(header, fields);
      block = encodeHeaderBlock(fields);
    }
    if (timeoutMs === undefined) return block;
    return Buffer.concat([block, encodeField("grpc-timeout", grpcTimeout(timeoutMs))]);
  };

  /**
   * Starts one call: the response's messages go to `sink`, which then ends with the call's status.
   * The caller writes the request messages to the call's stream.
   */
  const open = (
    path: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: CallHeaders,
    sink: CallSink,
  ): Call => {
    if (signal?.aborted) throw grpcError("the operation was aborted", Code.Canceled, signal.reason);
    const block = headerBlock(path, timeoutMs, header);
    const http2 = liveConnection();
    const call = new Call(sink, opts.maxMessageBytes, signal, timeoutMs);
    call.stream = http2.request(block, call, sink.windowOnRead);
    return call;
  };

  /**
   * Sends again (on a new connection) a call that the server never processed, with what is left
   * of its deadline: `attempt` gets the timeout to send.
   */
  const withRetries = async <T>(
    timeoutMs: number | undefined,
    attempt: (timeoutMs: number | undefined) => Promise<T>,
  ): Promise<T> => {
    const start = timeoutMs === undefined ? 0 : performance.now();
    for (let tries = 0; ; tries++) {
      try {
        return await attempt(tries === 0 || timeoutMs === undefined ? timeoutMs : timeLeft(start, timeoutMs));
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
    open(path, signal, timeoutMs, header, reply).stream.write([body], true);
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

  const tooLarge = (bytes: number) =>
    // The caller's input (a spec, env or labels) is too large: theirs to fix, so InvalidArgument.
    grpcError(
      `request of ${bytes} bytes is larger than containerd accepts (${opts.maxMessageBytes} bytes)`,
      Code.InvalidArgument,
    );

  /** One request message of a stream as its DATA: the gRPC prefix and the message. */
  const requestParts = <I extends DescMessage>(
    schema: I,
    init: MessageInitShape<I>,
  ): readonly Uint8Array[] => {
    const parts = encodedParts(init);
    if (parts) {
      const length = parts.reduce((sum, part) => sum + part.byteLength, 0);
      if (length > opts.maxMessageBytes) throw tooLarge(length);
      return [prefix(length), ...parts];
    }
    return [framed(schema, init)];
  };

  /** A message behind its gRPC prefix, in one buffer. */
  const framed = <I extends DescMessage>(schema: I, init: MessageInitShape<I>): Buffer => {
    const body = codecOf(schema).encode(init, 5);
    const length = body.length - 5;
    if (length > opts.maxMessageBytes) throw tooLarge(length);
    body[0] = 0;
    body.writeUInt32BE(length, 1);
    return body;
  };

  /**
   * A server-streaming call: its one request is kept, so a refusal (before any answer) sends it
   * again as a unary call is, within the same retry budget and the first attempt's deadline.
   */
  const serverStream = <I extends DescMessage>(
    method: DescMethodStreaming<I>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: CallHeaders,
    input: AsyncIterable<MessageInitShape<I>>,
    inbox: Inbox,
  ): void => {
    const start = timeoutMs === undefined ? 0 : performance.now();
    const path = pathOf(method);
    // The stream opens now, in the caller's turn, its request (an async iterable) written once
    // read: a caller that subscribes to events and then lists tasks has its Subscribe go out first.
    const first = open(path, signal, timeoutMs, header, inbox);
    inbox.call = first;
    const request = (async () => {
      const parts: Uint8Array[] = [];
      for await (const init of input) parts.push(...requestParts(method.input, init));
      return parts;
    })();
    void request.then(
      (parts) => first.stream.write(parts, true),
      (err: unknown) => first.fail(err instanceof Error ? err : new Error(String(err))),
    );
    let tries = 0;
    inbox.resend = (refusal) => {
      if (tries++ >= TRANSPARENT_RETRIES) {
        inbox.finish(connectionLoss(grpcError(refusal.message, Code.Unavailable, refusal)));
        return;
      }
      // Not within the connection's own handling of the refusal (a GOAWAY goes through every
      // stream above its last id), and with the request at hand.
      void request.then(
        (parts) => {
          // The caller stopped reading meanwhile (see `messages`): nothing to send again for.
          if (inbox.finished) return;
          try {
            inbox.call = open(
              path,
              signal,
              timeoutMs === undefined ? undefined : timeLeft(start, timeoutMs),
              header,
              inbox,
            );
            inbox.call.stream.write(parts, true);
          } catch (err) {
            inbox.finish(err as Error);
          }
        },
        // A request that could not be encoded ended the call already (above).
        () => {},
      );
    };
  };

  /**
   * A client- or bidi-streaming call: its requests are written as the caller's iterable yields
   * them. Not sent again when refused: the iterable cannot be replayed; a refusal ends the call
   * Unavailable (see `Inbox.refused`).
   */
  const clientStream = <I extends DescMessage>(
    method: DescMethodStreaming<I>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: CallHeaders,
    input: AsyncIterable<MessageInitShape<I>>,
    inbox: Inbox,
  ): void => {
    const call = open(pathOf(method), signal, timeoutMs, header, inbox);
    inbox.call = call;
    const { stream } = call;
    const pump = async () => {
      try {
        for await (const init of input) {
          if (inbox.finished) return;
          if (!stream.write(requestParts(method.input, init)) && !stream.closed) await call.writable();
        }
        if (!stream.closed) stream.end();
      } catch (err) {
        inbox.finish(err instanceof Error ? err : new Error(String(err)));
        if (!stream.closed) stream.cancel(ErrorCode.CANCEL);
      }
    };
    void pump();
  };

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: CallHeaders,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const body = framed(method.input, input);
      const path = pathOf(method);
      const reply = await withRetries(timeoutMs, (timeout) => unaryOnce(path, signal, timeout, header, body));
      return unaryResponse(method, codecOf(method.output).decode(reply));
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: CallHeaders,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      const inbox = new Inbox();
      if (method.methodKind === "server_streaming")
        serverStream(method, signal, timeoutMs, header, input, inbox);
      else clientStream(method, signal, timeoutMs, header, input, inbox);
      async function* messages(): AsyncGenerator<MessageShape<O>> {
        try {
          const codec = codecOf(method.output);
          for await (const bytes of inbox) yield codec.decode(bytes);
        } finally {
          // The caller stopped reading early: end the call rather than leave the stream open (and
          // send it no more).
          inbox.finish();
          const { stream } = inbox.call;
          if (!stream.closed) stream.cancel(ErrorCode.CANCEL);
        }
      }
      return {
        stream: true,
        service: method.parent,
        method,
        header: EMPTY_HEADERS,
        trailer: EMPTY_HEADERS,
        message: messages(),
      };
    },

    close(): void {
      closed = true;
      connection?.destroy();
      connection = undefined;
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
