import { randomBytes } from "node:crypto";
import type { Client as ConnectClient, Transport } from "@connectrpc/connect";
import { Content } from "../gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js";
import { Diff } from "../gen/github.com/containerd/containerd/api/services/diff/v1/diff_pb.js";
import { Images } from "../gen/github.com/containerd/containerd/api/services/images/v1/images_pb.js";
import { Leases } from "../gen/github.com/containerd/containerd/api/services/leases/v1/leases_pb.js";
import { Snapshots } from "../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import { abortError, callSignal } from "../libcontainerd/call.js";
import { toTypedError } from "../libcontainerd/grpc/errors.js";
import { serviceClient } from "../libcontainerd/grpc/transport.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";

export const LEASE_HEADER = "containerd-lease";
const LEASE_EXPIRY_MS = 24 * 60 * 60 * 1000;

/** A lease: what is written or prepared under it survives GC until it is deleted. */
export interface Lease {
  readonly id: string;
  /** Per-call options carrying the lease header. */
  readonly headers: Record<string, string>;
}

/** containerd's image-related services on one connection, with typed errors and deadlines. */
export class ContainerdServices {
  readonly content: ConnectClient<typeof Content>;
  readonly images: ConnectClient<typeof Images>;
  readonly snapshots: ConnectClient<typeof Snapshots>;
  readonly diff: ConnectClient<typeof Diff>;
  readonly leases: ConnectClient<typeof Leases>;

  constructor(
    transport: Transport,
    readonly defaultTimeoutMs: number,
  ) {
    this.content = serviceClient(Content, transport);
    this.images = serviceClient(Images, transport);
    this.snapshots = serviceClient(Snapshots, transport);
    this.diff = serviceClient(Diff, transport);
    this.leases = serviceClient(Leases, transport);
  }

  /** One unary call with the caller's signal (or a default deadline), failures typed and named by `what`. */
  async call<T>(
    what: string,
    opts: CallOptions | undefined,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const signal = callSignal({
      ...(opts?.signal ? { signal: opts.signal } : {}),
      timeoutMs: opts?.timeoutMs ?? this.defaultTimeoutMs,
    });
    if (signal?.aborted) throw abortError(signal, what);
    try {
      return await fn(signal);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal, what);
      throw toTypedError(err, what);
    }
  }

  /**
   * Runs `work` under a new lease (24 h expiry, as containerd's client makes them) and deletes the
   * lease afterwards whatever happened: what `work` made is then kept only by its references.
   */
  async withLease<T>(
    what: string,
    signal: AbortSignal | undefined,
    work: (lease: Lease) => Promise<T>,
  ): Promise<T> {
    const id = `ctrd-${Date.now()}-${randomBytes(6).toString("base64url")}`;
    const expire = new Date(Date.now() + LEASE_EXPIRY_MS).toISOString();
    await this.call(`${what}: create lease`, signal ? { signal } : undefined, (s) =>
      this.leases.create({ id, labels: { "containerd.io/gc.expire": expire } }, { signal: s }),
    );
    try {
      return await work({ id, headers: { [LEASE_HEADER]: id } });
    } finally {
      // Deleted even when the caller gave up: a left lease would pin everything until it expires.
      await this.call(`${what}: delete lease ${id}`, { timeoutMs: this.defaultTimeoutMs }, (s) =>
        this.leases.delete({ id }, { signal: s }),
      ).catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) throw err;
      });
    }
  }

  async updateContentLabels(
    digest: string,
    labels: Record<string, string>,
    lease: Lease | undefined,
    opts: CallOptions | undefined,
  ): Promise<void> {
    const keys = Object.keys(labels);
    if (keys.length === 0) return;
    await this.call(`label content ${digest}`, opts, (s) =>
      this.content.update(
        { info: { digest, labels }, updateMask: { paths: keys.map((k) => `labels.${k}`) } },
        { signal: s, ...(lease ? { headers: lease.headers } : {}) },
      ),
    );
  }

  /** Whether the content store holds a blob (NotFound → false). */
  async hasContent(digest: string, opts: CallOptions | undefined): Promise<boolean> {
    try {
      await this.call(`stat content ${digest}`, opts, (s) => this.content.info({ digest }, { signal: s }));
      return true;
    } catch (err) {
      if (isErrorCode(err, "not_found")) return false;
      throw err;
    }
  }

  /** A whole (small) blob. */
  async readContent(
    digest: string,
    opts: CallOptions | undefined,
    limit = 64 * 1024 * 1024,
  ): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.readStream(digest, opts)) {
      size += chunk.length;
      if (size > limit) throw toTypedError(new Error(`more than ${limit} bytes`), `read content ${digest}`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** A blob's bytes as they stream from containerd. */
  async *readStream(digest: string, opts: CallOptions | undefined, offset = 0): AsyncGenerator<Buffer> {
    const what = `read content ${digest}`;
    const signal = callSignal(opts);
    try {
      for await (const res of this.content.read(
        { digest, offset: BigInt(offset) },
        signal ? { signal } : {},
      )) {
        yield Buffer.from(res.data.buffer, res.data.byteOffset, res.data.byteLength);
      }
    } catch (err) {
      if (signal?.aborted) throw abortError(signal, what);
      throw toTypedError(err, what);
    }
  }
}
