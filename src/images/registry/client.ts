import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import {
  DataLossError,
  type ErrorCode,
  errorFor,
  InvalidArgumentError,
  type LibcontainerdError,
  NotFoundError,
  UnauthenticatedError,
} from "../../libcontainerd/types/errors.js";
import type { BlobBatch } from "../content-writer.js";
import { type Descriptor, MANIFEST_ACCEPT, sha256 } from "../media-types.js";
import { type ImageReference, registryHost } from "../reference.js";
import { type Challenge, parseChallenges } from "./auth.js";
import { getSlabBody } from "./blob-reader.js";
import type { Credentials, CredentialsProvider } from "./credentials.js";
import { BodyTooLargeError, HttpClient, type HttpRequest, readBody, type TlsSettings } from "./http.js";

export interface RegistryOptions extends TlsSettings {
  /**
   * Talk plain HTTP. Default: plain HTTP for `localhost`, `127.0.0.1` and `::1` unless a CA is
   * given, HTTPS everywhere else.
   */
  plainHttp?: boolean;
  /** Fixed credentials, or a lookup (e.g. `dockerConfigCredentials()`); none means anonymous. */
  credentials?: Credentials | CredentialsProvider;
}

/** containerd's limit for a manifest or index (remotes/docker: 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;

function isLocalhost(host: string): boolean {
  const name = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return name === "localhost" || name === "127.0.0.1" || name === "::1";
}

/** The registry's error document (distribution spec), as one line. */
function registryErrors(body: Buffer): string {
  try {
    const doc = JSON.parse(body.toString("utf8")) as { errors?: { code?: string; message?: string }[] };
    const parts = (doc.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(": "));
    if (parts.length > 0) return parts.join("; ");
  } catch {}
  return body.toString("utf8").trim().slice(0, 200);
}

function kindOfStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return "unauthenticated";
  if (status === 404) return "not_found";
  if (status === 400 || status === 405 || status === 413 || status === 415) return "invalid_argument";
  if (status === 429 || status >= 500) return "unavailable";
  return "internal";
}

interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  signal?: AbortSignal | undefined;
  what: string;
}

/**
 * A client of one repository on an OCI distribution registry (distribution's spec.md): manifests,
 * blobs, uploads, with the auth flows the docker CLI and containerd use: anonymous, Basic, and Bearer
 * tokens from the realm a 401 names (scope `repository:<path>:<actions>`).
 */
export class RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  private readonly http: HttpClient;
  private authorization: string | undefined;
  private credentials: Credentials | undefined | null = null;
  private readonly scopes: string[];

  constructor(
    readonly ref: ImageReference,
    private readonly options: RegistryOptions = {},
    actions: "pull" | "pull,push" = "pull",
    extraScopes: string[] = [],
  ) {
    this.host = registryHost(ref.domain);
    const plain = options.plainHttp ?? (isLocalhost(this.host) && options.ca === undefined);
    this.baseUrl = `${plain ? "http" : "https"}://${this.host}`;
    this.http = new HttpClient(options);
    this.scopes = [`repository:${ref.path}:${actions}`, ...extraScopes];
  }

  close(): void {
    this.http.close();
  }

  private url(path: string): URL {
    return new URL(`/v2/${this.ref.path}/${path}`, this.baseUrl);
  }

  /** Sends a request, answering a 401 challenge once. The body must be a Buffer if a challenge may come. */
  async send(url: URL, opts: SendOptions): Promise<IncomingMessage> {
    const request = (): HttpRequest => ({
      method: opts.method ?? "GET",
      url,
      headers: { ...opts.headers, ...(this.authorization ? { authorization: this.authorization } : {}) },
      ...(opts.body !== undefined ? { body: opts.body } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      what: opts.what,
    });
    let res = await this.http.send(request());
    if (res.statusCode !== 401) return res;
    const body = await readBody(res, MAX_ERROR_BODY, opts.what).catch(() => Buffer.alloc(0));
    const challenges = parseChallenges(res.headers["www-authenticate"]);
    const canRetry = opts.body === undefined || Buffer.isBuffer(opts.body);
    const challenge = challenges.find((c) => c.scheme === "bearer") ?? challenges[0];
    if (!challenge || !canRetry) throw this.statusError(401, body, opts.what);
    const before = this.authorization;
    await this.authorize(challenge, opts.signal);
    if (this.authorization === before) throw this.statusError(401, body, opts.what);
    res = await this.http.send(request());
    if (res.statusCode === 401) {
      const again = await readBody(res, MAX_ERROR_BODY, opts.what).catch(() => Buffer.alloc(0));
      throw this.statusError(401, again, opts.what);
    }
    return res;
  }

  private async lookupCredentials(signal: AbortSignal | undefined): Promise<Credentials | undefined> {
    if (this.credentials !== null) return this.credentials;
    const source = this.options.credentials;
    this.credentials = typeof source === "function" ? await source(this.ref.domain, signal) : source;
    return this.credentials;
  }

  private async authorize(challenge: Challenge, signal: AbortSignal | undefined): Promise<void> {
    const creds = await this.lookupCredentials(signal);
    const basic = creds
      ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`
      : undefined;
    if (challenge.scheme === "basic") {
      if (!basic)
        throw new UnauthenticatedError(
          `${this.host} wants a user name and password and none were given (docker login, or credentials)`,
        );
      this.authorization = basic;
      return;
    }
    const realm = challenge.params.realm;
    if (!realm) throw new UnauthenticatedError(`${this.host} asked for a bearer token without a realm`);
    const tokenUrl = new URL(realm);
    if (challenge.params.service) tokenUrl.searchParams.set("service", challenge.params.service);
    for (const scope of this.scopes) tokenUrl.searchParams.append("scope", scope);
    const what = `get a token for ${this.host} from ${tokenUrl.host}`;
    const res = await this.http.send({
      method: "GET",
      url: tokenUrl,
      headers: basic ? { authorization: basic } : {},
      ...(signal ? { signal } : {}),
      what,
    });
    const body = await readBody(res, MAX_ERROR_BODY, what);
    if (res.statusCode !== 200) {
      throw new UnauthenticatedError(
        `${what}: ${res.statusCode} ${registryErrors(body)}${creds ? " (are the credentials right?)" : ""}`,
      );
    }
    let token: unknown;
    try {
      const doc = JSON.parse(body.toString("utf8")) as { token?: unknown; access_token?: unknown };
      token = doc.token ?? doc.access_token;
    } catch {}
    if (typeof token !== "string" || token === "")
      throw new UnauthenticatedError(`${what}: the answer holds no token`);
    this.authorization = `Bearer ${token}`;
  }

  statusError(status: number, body: Buffer, what: string): LibcontainerdError {
    const detail = registryErrors(body);
    const kind = kindOfStatus(status);
    const hint =
      kind === "unauthenticated"
        ? this.credentials
          ? " (the registry refused the credentials)"
          : " (no credentials were given)"
        : "";
    return errorFor(kind, `${what}: ${this.host} answered ${status}${detail ? ` ${detail}` : ""}${hint}`);
  }

  private async expect(res: IncomingMessage, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.statusCode ?? 0)) return;
    const body = await readBody(res, MAX_ERROR_BODY, what).catch(() => Buffer.alloc(0));
    throw this.statusError(res.statusCode ?? 0, body, what);
  }

  /**
   * Resolves a tag or digest to the manifest or index it names, with its bytes (checked against
   * the digest the reference or the registry gives).
   */
  async resolve(signal?: AbortSignal): Promise<{ descriptor: Descriptor; content: Buffer }> {
    const reference = this.ref.digest ?? this.ref.tag ?? "latest";
    const what = `resolve ${this.ref.domain}/${this.ref.path}:${reference}`.replace(":sha256", "@sha256");
    const res = await this.send(this.url(`manifests/${reference}`), {
      headers: { accept: MANIFEST_ACCEPT },
      signal,
      what,
    });
    if (res.statusCode === 404) {
      await readBody(res, MAX_ERROR_BODY, what).catch(() => undefined);
      throw new NotFoundError(`${what}: not found in the registry`);
    }
    await this.expect(res, [200], what);
    const content = await this.readManifestBody(res, what);
    const digest = sha256(content);
    const expected = this.ref.digest ?? headerDigest(res);
    if (expected?.startsWith("sha256:") && expected !== digest)
      throw new DataLossError(`${what}: the manifest's bytes hash to ${digest}, not ${expected}`);
    const mediaType = manifestMediaType(res, content, what);
    return { descriptor: { mediaType, digest, size: content.length }, content };
  }

  /** A manifest or index by its descriptor, verified. */
  async fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    const what = `fetch manifest ${desc.digest}`;
    const res = await this.send(this.url(`manifests/${desc.digest}`), {
      headers: { accept: MANIFEST_ACCEPT },
      signal,
      what,
    });
    await this.expect(res, [200], what);
    const content = await this.readManifestBody(res, what);
    verify(content, desc, what);
    return content;
  }

  private async readManifestBody(res: IncomingMessage, what: string): Promise<Buffer> {
    try {
      return await readBody(res, MAX_MANIFEST_BYTES, what);
    } catch (err) {
      if (err instanceof BodyTooLargeError)
        throw new InvalidArgumentError(`${err.message} (a manifest may be at most 4 MiB)`, { cause: err });
      throw err;
    }
  }

  /** A small blob (an image config), verified. */
  async fetchSmallBlob(desc: Descriptor, limit: number, signal?: AbortSignal): Promise<Buffer> {
    const what = `fetch blob ${desc.digest}`;
    if (desc.size > limit)
      throw new InvalidArgumentError(`${what}: ${desc.size} bytes is more than ${limit}`);
    const { stream } = await this.openBlob(desc, 0, signal);
    const content = await readBody(stream, limit, what);
    verify(content, desc, what);
    return content;
  }

  /**
   * A blob's bytes from `offset` on (HTTP Range). The answer's `offset` is where the stream really
   * starts: 0 when the registry ignored the range.
   */
  async openBlob(
    desc: Descriptor,
    offset: number,
    signal?: AbortSignal,
  ): Promise<{ stream: IncomingMessage; offset: number }> {
    const what = `fetch blob ${desc.digest}`;
    const res = await this.send(this.url(`blobs/${desc.digest}`), {
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      signal,
      what,
    });
    if (res.statusCode === 404) {
      res.resume();
      throw new NotFoundError(`${what}: the registry has no such blob`);
    }
    if (offset > 0 && res.statusCode === 206) return { stream: res, offset };
    if (offset > 0 && res.statusCode === 416) {
      res.resume();
      return this.openBlob(desc, 0, signal);
    }
    await this.expect(res, [200], what);
    return { stream: res, offset: 0 };
  }

  /**
   * A blob's bytes from `offset` on, for a content write: over plain HTTP read into reusable slabs
   * (SlabBody: far less CPU per byte), else (HTTPS, or an answer the slab reader leaves to
   * node:http) as openBlob's stream.
   */
  async openBlobForWrite(
    desc: Descriptor,
    offset: number,
    signal?: AbortSignal,
  ): Promise<
    { batches: AsyncIterable<BlobBatch>; offset: number } | { stream: IncomingMessage; offset: number }
  > {
    if (this.baseUrl.startsWith("http:")) {
      const headers: Record<string, string> = this.authorization ? { Authorization: this.authorization } : {};
      const what = `fetch blob ${desc.digest}`;
      const slabs = await getSlabBody(this.url(`blobs/${desc.digest}`), headers, offset, signal, what);
      if (slabs) return { batches: slabs.body, offset: slabs.offset };
    }
    return this.openBlob(desc, offset, signal);
  }

  async blobExists(digest: string, signal?: AbortSignal): Promise<boolean> {
    const what = `check blob ${digest}`;
    const res = await this.send(this.url(`blobs/${digest}`), { method: "HEAD", signal, what });
    res.resume();
    if (res.statusCode === 404) return false;
    await this.expect(res, [200], what);
    return true;
  }

  /** Starts an upload, or mounts the blob from another repository of the same registry (201: done). */
  private async startUpload(
    digest: string,
    mountFrom: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<URL | undefined> {
    const what = `start upload of ${digest}`;
    const url = new URL(`/v2/${this.ref.path}/blobs/uploads/`, this.baseUrl);
    if (mountFrom) {
      url.searchParams.set("mount", digest);
      url.searchParams.set("from", mountFrom);
    }
    const res = await this.send(url, { method: "POST", body: Buffer.alloc(0), signal, what });
    if (res.statusCode === 201) {
      res.resume();
      return undefined;
    }
    await this.expect(res, [202], what);
    res.resume();
    const location = res.headers.location;
    if (!location) throw errorFor("internal", `${what}: the registry gave no upload location`);
    return new URL(location, this.baseUrl);
  }

  /** Uploads a blob in one PUT (monolithic upload), unless a mount from `mountFrom` makes it unneeded. */
  async pushBlob(
    desc: Descriptor,
    body: () => Readable,
    mountFrom: string | undefined,
    signal?: AbortSignal,
  ): Promise<"pushed" | "mounted"> {
    const location = await this.startUpload(desc.digest, mountFrom, signal);
    if (!location) return "mounted";
    location.searchParams.set("digest", desc.digest);
    const what = `upload blob ${desc.digest}`;
    const res = await this.send(location, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": String(desc.size) },
      body: body(),
      signal,
      what,
    });
    await this.expect(res, [201, 204], what);
    res.resume();
    return "pushed";
  }

  async putManifest(
    reference: string,
    mediaType: string,
    content: Buffer,
    signal?: AbortSignal,
  ): Promise<void> {
    const what = `push manifest ${this.ref.path}:${reference}`;
    const res = await this.send(this.url(`manifests/${reference}`), {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: content,
      signal,
      what,
    });
    await this.expect(res, [201, 204], what);
    res.resume();
  }
}

function headerDigest(res: IncomingMessage): string | undefined {
  const value = res.headers["docker-content-digest"];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The media type a manifest declares, else the Content-Type the registry sent. */
function manifestMediaType(res: IncomingMessage, content: Buffer, what: string): string {
  let declared: unknown;
  try {
    declared = (JSON.parse(content.toString("utf8")) as { mediaType?: unknown }).mediaType;
  } catch (err) {
    throw new InvalidArgumentError(`${what}: the manifest is not JSON`, { cause: err });
  }
  if (typeof declared === "string" && declared !== "") return declared;
  const header = (res.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
  if (header === "" || header === "application/json" || header === "text/plain")
    throw new InvalidArgumentError(`${what}: the manifest declares no media type`);
  return header;
}

export function verify(content: Buffer, desc: Descriptor, what: string): void {
  if (content.length !== desc.size)
    throw new DataLossError(`${what}: ${content.length} bytes, but the descriptor says ${desc.size}`);
  const digest = sha256(content);
  if (digest !== desc.digest)
    throw new DataLossError(`${what}: the bytes hash to ${digest}, not ${desc.digest}`);
}
