import { connect, type Socket } from "node:net";
import { abortError } from "../../libcontainerd/call.js";
import type { BlobBatch } from "../content-writer.js";

/** A slab is filled by socket reads, then goes to containerd as one write. */
const SLAB_BYTES = 1024 * 1024;
/** Slabs read but not yet acknowledged by containerd, at most: how far a download runs ahead. */
const MAX_SLABS = 8;
const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");

interface Head {
  status: number;
  headers: Map<string, string>;
  bodyStart: number;
}

function parseHead(bytes: Buffer): Head | undefined {
  const lines = bytes.toString("latin1").split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!status) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(status[1]), headers, bodyStart: bytes.length + HEAD_END.length };
}

/**
 * A blob body read straight into reusable 1 MiB slabs (net's `onread`): no buffer allocated per
 * socket read, no HTTP parser or stream events per chunk. Through node:http the same download
 * cost ~4× the CPU, most of it garbage collection of the per-read buffers (bench/pull-profile.ts).
 * Yields each slab once full (the last when the body ends); a slab is read into again only after
 * its batch is released, and reading pauses while MAX_SLABS are out.
 */
export class SlabBody implements AsyncIterable<BlobBatch> {
  private readonly free: Buffer[] = [];
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private filled = 0;
  private batchStart = 0;
  private out = 0;
  private paused = false;
  private received = 0;
  private length = 0;
  private head: Head | undefined;
  private readonly ready: BlobBatch[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly socket: Socket;
  private onHead: ((start: number | undefined) => void) | undefined;
  /** Where the body starts in the blob, once the head was accepted. */
  private start: number | undefined;

  constructor(
    url: URL,
    headers: Record<string, string>,
    private readonly offset: number,
    private readonly signal: AbortSignal | undefined,
    private readonly what: string,
  ) {
    this.socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || 80),
      onread: { buffer: () => this.slab.subarray(this.filled), callback: (n) => this.onRead(n) },
    });
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    lines.push("User-Agent: libcontainerd", "Connection: close");
    if (offset > 0) lines.push(`Range: bytes=${offset}-`);
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    this.socket.on("error", (err) => this.finish(err));
    this.socket.on("close", () =>
      this.finish(
        new Error(
          `${what}: the registry closed the connection after ${this.received} of ${this.length} bytes`,
        ),
      ),
    );
    signal?.addEventListener("abort", this.abort, { once: true });
  }

  private readonly abort = () => this.finish(abortError(this.signal as AbortSignal, this.what));

  /**
   * Where the body starts in the blob (0, or the offset asked for), once the answer's head is in;
   * undefined if it was not the blob's bytes with a Content-Length, or the connection failed first.
   */
  opened(): Promise<number | undefined> {
    if (this.head || this.ended) return Promise.resolve(this.start);
    return new Promise((resolve) => {
      this.onHead = resolve;
    });
  }

  /** The blob's bytes asked for, with their length (a 206 only for the range asked for), or undefined. */
  private accept(head: Head): { start: number; length: number } | undefined {
    const length = Number(head.headers.get("content-length") ?? "NaN");
    const encoding = head.headers.get("transfer-encoding");
    if (!Number.isSafeInteger(length) || (encoding && encoding !== "identity")) return undefined;
    if (head.status === 200) return { start: 0, length };
    const range = /^bytes (\d+)-/.exec(head.headers.get("content-range") ?? "");
    if (head.status === 206 && Number(range?.[1]) === this.offset) return { start: this.offset, length };
    return undefined;
  }

  /** Stops reading (the connection is closed); what was read is still yielded. */
  close(): void {
    this.finish();
  }

  /** Ends the body: all read, the caller stopped, or `failure`. */
  private finish(failure?: Error): void {
    if (this.ended) return;
    this.failure = failure;
    this.ended = true;
    this.signal?.removeEventListener("abort", this.abort);
    this.socket.destroy();
    this.onHead?.(this.start);
    this.onHead = undefined;
    this.notify();
  }

  private onRead(n: number): boolean {
    this.filled += n;
    if (this.head) {
      this.received += n;
      return this.afterRead();
    }
    const at = this.slab.subarray(0, this.filled).indexOf(HEAD_END, Math.max(0, this.filled - n - 3));
    if (at < 0) {
      if (this.filled < MAX_HEAD_BYTES) return true;
      this.finish(new Error(`${this.what}: the registry's answer has no end of headers`));
      return false;
    }
    const head = parseHead(this.slab.subarray(0, at));
    const accepted = head && this.accept(head);
    this.head = head;
    if (!head || !accepted) {
      this.close();
      return false;
    }
    this.start = accepted.start;
    this.length = accepted.length;
    this.batchStart = head.bodyStart;
    this.received = this.filled - head.bodyStart;
    this.onHead?.(accepted.start);
    this.onHead = undefined;
    return this.afterRead();
  }

  private afterRead(): boolean {
    if (this.received >= this.length) {
      // Anything after the body is ignored (the connection is not reused).
      this.emit(this.filled - (this.received - this.length));
      this.finish();
      return false;
    }
    if (this.filled < this.slab.length) return true;
    this.emit(this.filled);
    this.slab = this.free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
    this.filled = 0;
    this.batchStart = 0;
    if (this.out < MAX_SLABS) return true;
    this.paused = true;
    return false;
  }

  private emit(end: number): void {
    if (end <= this.batchStart) return;
    const slab = this.slab;
    this.out++;
    let released = false;
    this.ready.push({
      parts: [slab.subarray(this.batchStart, end)],
      bytes: end - this.batchStart,
      release: () => {
        if (released) return;
        released = true;
        this.free.push(slab);
        this.out--;
        if (this.paused && this.out < MAX_SLABS && !this.ended) {
          this.paused = false;
          this.socket.resume();
        }
      },
    });
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<BlobBatch> {
    try {
      for (;;) {
        const batch = this.ready.shift();
        if (batch) yield batch;
        else if (this.failure) throw this.failure;
        else if (this.ended) return;
        else
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
      }
    } finally {
      this.close();
    }
  }
}

/**
 * GET a blob over a plain-HTTP connection of its own, read into slabs. Undefined when the answer is
 * anything but the bytes asked for with a Content-Length (an auth challenge, a redirect, an error,
 * chunked encoding, a refused connection): the caller asks again through node:http, which handles
 * all of HTTP and turns failures into typed errors.
 */
export async function getSlabBody(
  url: URL,
  headers: Record<string, string>,
  offset: number,
  signal: AbortSignal | undefined,
  what: string,
): Promise<{ body: SlabBody; offset: number } | undefined> {
  if (signal?.aborted) throw abortError(signal, what);
  // A header node:http would refuse (a line break in a credential) is left for it to refuse.
  if (Object.entries(headers).some(([name, value]) => /[\r\n:]/.test(name) || /[\r\n]/.test(value)))
    return undefined;
  const body = new SlabBody(url, headers, offset, signal, what);
  const start = await body.opened();
  if (signal?.aborted) {
    body.close();
    throw abortError(signal, what);
  }
  if (start === undefined) {
    body.close();
    return undefined;
  }
  return { body, offset: start };
}
