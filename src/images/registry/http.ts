import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { abortError } from "../../libcontainerd/call.js";
import { UnavailableError } from "../../libcontainerd/types/errors.js";

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /** What the request is for, in error messages. */
  what: string;
}

export interface TlsSettings {
  /** PEM CA certificate(s) trusted besides the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Accept any certificate (a registry on a self-signed cert the caller vouches for). */
  insecureSkipVerify?: boolean;
}

const MAX_REDIRECTS = 5;

/**
 * HTTP/1.1 to one registry, keep-alive (layers are fetched over a few reused connections). Bodies
 * are streamed both ways; redirects (blob storage behind a 307) are followed, without the
 * registry's Authorization when they leave its host.
 */
export class HttpClient {
  private readonly http = new HttpAgent({ keepAlive: true, maxSockets: 16 });
  private readonly https: HttpsAgent;

  constructor(tls: TlsSettings = {}) {
    this.https = new HttpsAgent({
      keepAlive: true,
      maxSockets: 16,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
    });
  }

  async send(req: HttpRequest): Promise<IncomingMessage> {
    let url = req.url;
    let headers = { ...req.headers };
    for (let hop = 0; ; hop++) {
      const res = await this.once({ ...req, url, headers });
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location || hop >= MAX_REDIRECTS) {
        return res;
      }
      res.resume();
      const next = new URL(location, url);
      if (next.host !== url.host) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      url = next;
    }
  }

  private once(req: HttpRequest): Promise<IncomingMessage> {
    const signal = req.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal, req.what));
    return new Promise((resolve, reject) => {
      const https = req.url.protocol === "https:";
      const request = (https ? httpsRequest : httpRequest)(req.url, {
        method: req.method,
        headers: { "user-agent": "libcontainerd", ...req.headers },
        agent: https ? this.https : this.http,
      });
      const onAbort = () => request.destroy(abortError(signal as AbortSignal, req.what));
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener("abort", onAbort);
      request.on("response", (res) => {
        res.once("close", cleanup);
        // An abort after the headers ends the body with the same typed error.
        resolve(res);
      });
      request.on("error", (err) => {
        cleanup();
        reject(
          signal?.aborted
            ? abortError(signal, req.what)
            : new UnavailableError(`${req.what}: ${networkMessage(err, req.url)}`, { cause: err }),
        );
      });
      const body = req.body;
      if (body === undefined) request.end();
      else if (Buffer.isBuffer(body)) request.end(body);
      else {
        body.on("error", (err) => request.destroy(err));
        body.pipe(request);
      }
    });
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

function networkMessage(err: Error, url: URL): string {
  const code = (err as { code?: unknown }).code;
  if (code === "ECONNREFUSED") return `connection refused by ${url.host}`;
  if (typeof code === "string" && /CERT|SSL|TLS|SELF_SIGNED|VERIFY|ISSUER|SIGNATURE/.test(code))
    return `TLS to ${url.host} failed (${code}): give its CA (ca) or use plainHttp for a plain-HTTP registry`;
  if (/wrong version number|packet length too long/i.test(err.message))
    return `${url.host} does not speak TLS: it may be a plain-HTTP registry (plainHttp)`;
  return typeof code === "string" ? `${err.message} (${code})` : err.message;
}

/** Reads a whole (small) body, refusing more than `limit` bytes. */
export async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers["content-length"] ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw new BodyTooLargeError(`${what}: ${declared} bytes is more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      res.destroy();
      throw new BodyTooLargeError(`${what}: more than the ${limit} bytes allowed`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export class BodyTooLargeError extends Error {}
