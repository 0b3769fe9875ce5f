import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { badRequest, EngineError } from "./errors.js";

/** Request bodies the API parses as JSON are small; anything larger is refused before it is read. */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

/** The two ends of a hijacked connection: what the client sends (stdin) and where output goes. */
export interface Hijacked {
  input: Readable;
  output: Writable;
  /** Ends the connection (after the output is flushed). */
  end(): void;
}

/**
 * One request and the means to answer it, whether it came as an ordinary HTTP request or as an
 * `Upgrade: tcp` request whose socket node handed over raw. Handlers never see the difference.
 */
export interface Exchange {
  readonly method: string;
  /** The path without the `/vX.Y` prefix. */
  readonly path: string;
  /** The API version the client asked for (its prefix), or the server's when it gave none. */
  readonly apiVersion: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  params: Record<string, string>;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** The body parsed as JSON (`{}` when empty); 400 when it is not JSON or too large. */
  json(): Promise<unknown>;
  /** The body as a stream (image load), unparsed and unbounded. */
  body(): Readable;
  send(status: number, value: unknown, headers?: Record<string, string>): void;
  sendText(status: number, text: string, headers?: Record<string, string>): void;
  /** A streamed 200 response (events, logs, stats, pull progress). */
  stream(contentType: string, headers?: Record<string, string>): Writable;
  /** Takes the connection over for a raw stream, as dockerd does for attach and exec start. */
  hijack(contentType: string): Hijacked;
  /** Whether a response was started; an error after that can only end the connection. */
  readonly started: boolean;
}

export interface ExchangeBase {
  method: string;
  path: string;
  apiVersion: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  commonHeaders: Record<string, string>;
}

async function readBounded(source: Readable, limit: number, prefix?: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = prefix && prefix.length > 0 ? [prefix] : [];
  let size = prefix?.length ?? 0;
  for await (const chunk of source) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > limit) throw new EngineError(413, `request body is larger than ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(raw: Buffer): unknown {
  const text = raw.toString("utf8").trim();
  if (text === "") return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`invalid JSON in the request body: ${(err as Error).message}`);
  }
}

function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers["content-length"];
  if (value === undefined) return undefined;
  const length = Number(value);
  if (!Number.isSafeInteger(length) || length < 0) throw badRequest("invalid Content-Length");
  return length;
}

/** An ordinary request: node parsed it and gives a ServerResponse. */
export class HttpExchange implements Exchange {
  readonly method: string;
  readonly path: string;
  readonly apiVersion: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  params: Record<string, string> = {};
  readonly signal: AbortSignal;
  private readonly common: Record<string, string>;

  constructor(
    base: ExchangeBase,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.method = base.method;
    this.path = base.path;
    this.apiVersion = base.apiVersion;
    this.query = base.query;
    this.headers = base.headers;
    this.common = base.commonHeaders;
    const controller = new AbortController();
    this.signal = controller.signal;
    res.once("close", () => controller.abort());
  }

  get started(): boolean {
    return this.res.headersSent;
  }

  async json(): Promise<unknown> {
    const length = declaredLength(this.headers);
    if (length !== undefined && length > MAX_JSON_BODY)
      throw new EngineError(413, `request body is larger than ${MAX_JSON_BODY} bytes`);
    return parseJsonBody(await readBounded(this.req, MAX_JSON_BODY));
  }

  body(): Readable {
    return this.req;
  }

  send(status: number, value: unknown, headers: Record<string, string> = {}): void {
    const text = status === 204 || status === 304 ? "" : `${JSON.stringify(value)}\n`;
    this.res.writeHead(status, {
      ...this.common,
      ...(text === "" ? {} : { "Content-Type": "application/json" }),
      ...headers,
    });
    this.res.end(this.method === "HEAD" ? undefined : text);
  }

  sendText(status: number, text: string, headers: Record<string, string> = {}): void {
    this.res.writeHead(status, {
      ...this.common,
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(text)),
      ...headers,
    });
    this.res.end(this.method === "HEAD" ? undefined : text);
  }

  stream(contentType: string, headers: Record<string, string> = {}): Writable {
    this.res.writeHead(200, { ...this.common, "Content-Type": contentType, ...headers });
    this.res.flushHeaders();
    return this.res;
  }

  hijack(contentType: string): Hijacked {
    // No Upgrade asked for (dockerode without hijack): output over the response, no stdin.
    this.res.writeHead(200, { ...this.common, "Content-Type": contentType });
    this.res.flushHeaders();
    this.req.resume();
    const input = new PassThrough();
    input.end();
    return { input, output: this.res, end: () => this.res.end() };
  }
}

/**
 * A request with `Upgrade: tcp`: node gives the socket before reading any body. The JSON body
 * (exec start sends one) is read by Content-Length from the socket; responses are written raw.
 */
export class UpgradeExchange implements Exchange {
  readonly method: string;
  readonly path: string;
  readonly apiVersion: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  params: Record<string, string> = {};
  readonly signal: AbortSignal;
  private head: Buffer;
  private responded = false;
  private readonly common: Record<string, string>;

  constructor(
    base: ExchangeBase,
    private readonly socket: Socket,
    head: Buffer,
  ) {
    this.method = base.method;
    this.path = base.path;
    this.apiVersion = base.apiVersion;
    this.query = base.query;
    this.headers = base.headers;
    this.common = base.commonHeaders;
    this.head = head;
    const controller = new AbortController();
    this.signal = controller.signal;
    socket.once("close", () => controller.abort());
    socket.on("error", () => {});
  }

  get started(): boolean {
    return this.responded;
  }

  async json(): Promise<unknown> {
    if (this.headers["transfer-encoding"] !== undefined)
      throw badRequest("a chunked body cannot come with Upgrade");
    const length = declaredLength(this.headers) ?? 0;
    if (length > MAX_JSON_BODY)
      throw new EngineError(413, `request body is larger than ${MAX_JSON_BODY} bytes`);
    const body = await this.take(length);
    return parseJsonBody(body);
  }

  body(): Readable {
    throw badRequest("this endpoint takes no upgraded connection");
  }

  /** Exactly `length` bytes of body from what came with the headers and then from the socket. */
  private take(length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const done = (): boolean => {
        if (this.head.length < length) return false;
        const body = this.head.subarray(0, length);
        this.head = this.head.subarray(length);
        this.socket.off("data", onData);
        this.socket.off("close", onClose);
        this.socket.pause();
        resolve(body);
        return true;
      };
      const onData = (chunk: Buffer): void => {
        this.head = Buffer.concat([this.head, chunk]);
        done();
      };
      const onClose = (): void => reject(badRequest("the connection closed before the body arrived"));
      if (done()) return;
      this.socket.on("data", onData);
      this.socket.once("close", onClose);
      this.socket.resume();
    });
  }

  private writeHead(status: number, headers: Record<string, string>): void {
    this.responded = true;
    // dockerd's hijack answers "101 UPGRADED" (api/server/router/container); clients only read the code.
    const reason = status === 101 ? "UPGRADED" : (STATUS_CODES[status] ?? "Unknown");
    const lines = [`HTTP/1.1 ${status} ${reason}`];
    for (const [name, value] of Object.entries({ ...this.common, ...headers }))
      lines.push(`${name}: ${value}`);
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  }

  send(status: number, value: unknown, headers: Record<string, string> = {}): void {
    const text = status === 204 || status === 304 ? "" : `${JSON.stringify(value)}\n`;
    this.writeHead(status, {
      ...(text === "" ? {} : { "Content-Type": "application/json" }),
      "Content-Length": String(Buffer.byteLength(text)),
      Connection: "close",
      ...headers,
    });
    this.socket.end(text);
  }

  sendText(status: number, text: string, headers: Record<string, string> = {}): void {
    this.writeHead(status, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(text)),
      Connection: "close",
      ...headers,
    });
    this.socket.end(text);
  }

  stream(contentType: string, headers: Record<string, string> = {}): Writable {
    this.writeHead(200, { "Content-Type": contentType, Connection: "close", ...headers });
    return this.socket;
  }

  hijack(contentType: string): Hijacked {
    // dockerd answers 101 UPGRADED with these headers (api/server/router/container/exec.go, attach).
    this.writeHead(101, { "Content-Type": contentType, Connection: "Upgrade", Upgrade: "tcp" });
    if (this.head.length > 0) this.socket.unshift(this.head);
    this.head = Buffer.alloc(0);
    this.socket.resume();
    return { input: this.socket, output: this.socket, end: () => this.socket.end() };
  }
}

/** Query booleans as Docker reads them: `1`, `true`, `True` are true (httputils.BoolValue). */
export function queryBool(query: URLSearchParams, name: string, fallback = false): boolean {
  const value = query.get(name);
  if (value === null) return fallback;
  const lower = value.trim().toLowerCase();
  return !(lower === "" || lower === "0" || lower === "no" || lower === "false" || lower === "none");
}

export function queryInt(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null || value === "") return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(value)}`);
  return parsed;
}

/**
 * filters.Args.MatchKVList: every `key` (present) or `key=value` (equal) of `wanted` is on `labels`. The
 * key ends at the first `=`: a value may hold more of them (`label=url=a=b`), as Go's SplitN(…, 2) keeps.
 * Own keys only: `label=constructor` matches no object's prototype.
 */
export function labelsMatch(labels: Record<string, string>, wanted: readonly string[]): boolean {
  return wanted.every((label) => {
    const at = label.indexOf("=");
    if (at < 0) return Object.hasOwn(labels, label);
    const key = label.slice(0, at);
    return Object.hasOwn(labels, key) && labels[key] === label.slice(at + 1);
  });
}

/** `filters={"label":["a=b"],"status":{"running":true}}`, both forms Docker accepts, as name → values. */
export function queryFilters(query: URLSearchParams): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  const raw = query.get("filters");
  if (raw === null || raw === "") return filters;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badRequest(`invalid filter ${JSON.stringify(raw)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw badRequest(`invalid filter ${JSON.stringify(raw)}`);
  for (const [name, value] of Object.entries(parsed)) {
    if (Array.isArray(value)) filters.set(name, value.map(String));
    else if (typeof value === "object" && value !== null)
      filters.set(
        name,
        Object.entries(value)
          .filter(([, on]) => on === true)
          .map(([key]) => key),
      );
    else throw badRequest(`invalid filter ${JSON.stringify(raw)}`);
  }
  return filters;
}
