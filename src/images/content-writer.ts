import { createHash } from "node:crypto";
import { finished, Readable } from "node:stream";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  WriteAction,
  WriteContentRequestSchema,
  type WriteContentResponse,
} from "../gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js";
import { abortError, delay } from "../libcontainerd/call.js";
import { toTypedError } from "../libcontainerd/grpc/errors.js";
import { preEncoded } from "../libcontainerd/grpc/grpc-http2.js";
import {
  DataLossError,
  isErrorCode,
  LibcontainerdError,
  UnavailableError,
} from "../libcontainerd/types/errors.js";
import type { ContainerdServices, Lease } from "./containerd.js";
import type { Descriptor } from "./media-types.js";

type WriteRequest = MessageInitShape<typeof WriteContentRequestSchema>;

/** Some of a blob's bytes, as the buffers they arrived in; `release` hands their memory back for reuse. */
export interface BlobBatch {
  parts: Buffer[];
  bytes: number;
  /** Called once containerd acknowledged the write that carried the batch. */
  release?: () => void;
}

/**
 * Where a blob's bytes come from, from `offset` on (or from 0 if the source cannot seek): a stream,
 * or batches ready to be written.
 */
export type BlobSource = (
  offset: number,
  signal: AbortSignal | undefined,
) => Promise<
  | { stream: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>; offset: number }
  | { batches: AsyncIterable<BlobBatch>; offset: number }
>;

export interface WriteBlobOptions {
  /** The ingest ref: the same ref later resumes where a failed write stopped. */
  ref: string;
  desc: Descriptor;
  source: BlobSource;
  lease: Lease;
  labels?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Bytes in the store so far (called often; cheap). */
  onProgress?: (offset: number) => void;
  /** Attempts for a source that fails midway (each resumes); default 5. */
  attempts?: number;
}

/** Bytes per WRITE: the socket reads of a download (≤ 64 KiB each) gathered, not copied. */
const CHUNK_BYTES = 1024 * 1024;
/** How far a download may run ahead of the content store. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;
/** Writes sent ahead of their acknowledgements: the stream stays busy without unbounded buffering. */
const WINDOW = 4;

const asBuffer = (chunk: Buffer | Uint8Array): Buffer =>
  Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);

/**
 * A source's bytes in batches of about CHUNK_BYTES. A Node stream keeps being read (up to
 * READ_AHEAD_BYTES ahead) while the caller waits for containerd's acknowledgements: read through
 * `for await`, it would stop reading its socket whenever the loop body awaits, and the download
 * would wait for every containerd round trip. The stream is destroyed if the caller stops early.
 */
async function* batches(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
): AsyncGenerator<BlobBatch> {
  if (!(source instanceof Readable)) {
    let batch: BlobBatch = { parts: [], bytes: 0 };
    for await (const chunk of source) {
      const buf = asBuffer(chunk);
      batch.parts.push(buf);
      batch.bytes += buf.length;
      if (batch.bytes >= CHUNK_BYTES) {
        yield batch;
        batch = { parts: [], bytes: 0 };
      }
    }
    if (batch.bytes > 0) yield batch;
    return;
  }
  const stream = source;
  const ready: BlobBatch[] = [];
  let current: BlobBatch = { parts: [], bytes: 0 };
  let buffered = 0;
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Buffer | Uint8Array) => {
    const buf = asBuffer(chunk);
    current.parts.push(buf);
    current.bytes += buf.length;
    buffered += buf.length;
    if (current.bytes >= CHUNK_BYTES) {
      ready.push(current);
      current = { parts: [], bytes: 0 };
      notify();
    }
    if (buffered >= READ_AHEAD_BYTES) stream.pause();
  };
  const stopWatching = finished(stream, (err) => {
    if (err) failure = err;
    else if (current.bytes > 0) ready.push(current);
    ended = true;
    notify();
  });
  stream.on("data", onData);
  try {
    for (;;) {
      const batch = ready.shift();
      if (batch) {
        buffered -= batch.bytes;
        if (buffered < READ_AHEAD_BYTES && stream.isPaused()) stream.resume();
        yield batch;
      } else if (failure) throw failure;
      else if (ended) return;
      else
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
    }
  } finally {
    stream.off("data", onData);
    stopWatching();
    if (!ended) {
      stream.on("error", () => {});
      stream.destroy();
    }
  }
}

const WRITE_FIELDS = WriteContentRequestSchema.field;

/**
 * A WRITE request encoded here: the field headers, then the data as the buffers it came in; the
 * transport sends the parts as they are (protobuf-es would copy the data into one new buffer).
 */
function writeRequest(offset: number, batch: BlobBatch): WriteRequest {
  const head = new BinaryWriter()
    .tag(WRITE_FIELDS.action.number, WireType.Varint)
    .int32(WriteAction.WRITE)
    .tag(WRITE_FIELDS.offset.number, WireType.Varint)
    .int64(offset)
    .tag(WRITE_FIELDS.data.number, WireType.LengthDelimited)
    .uint32(batch.bytes)
    .finish();
  return preEncoded({ action: WriteAction.WRITE, offset: BigInt(offset) }, [head, ...batch.parts]);
}

/** A pushable request stream for a bidi call (an async generator: connect wants throw/return). */
class RequestQueue implements AsyncIterable<WriteRequest> {
  private items: WriteRequest[] = [];
  private waiting: ((item: WriteRequest | undefined) => void) | undefined;
  private ended = false;

  push(item: WriteRequest): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(item);
    else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(undefined);
  }

  private take(): Promise<WriteRequest | undefined> {
    const item = this.items.shift();
    if (item || this.ended) return Promise.resolve(item);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WriteRequest> {
    for (let item = await this.take(); item; item = await this.take()) yield item;
  }
}

/** One Content.Write session: every request is answered by one response, in order. */
class WriteSession {
  private readonly requests = new RequestQueue();
  private readonly responses: AsyncIterator<WriteContentResponse>;
  private readonly abort = new AbortController();

  constructor(
    readonly services: ContainerdServices,
    private readonly what: string,
    lease: Lease,
    signal: AbortSignal | undefined,
  ) {
    const combined = signal ? AbortSignal.any([signal, this.abort.signal]) : this.abort.signal;
    this.responses = services.content
      .write(this.requests, { signal: combined, headers: lease.headers })
      [Symbol.asyncIterator]();
  }

  send(req: WriteRequest): void {
    this.requests.push(req);
  }

  async next(): Promise<WriteContentResponse> {
    let r: IteratorResult<WriteContentResponse>;
    try {
      r = await this.responses.next();
    } catch (err) {
      throw toTypedError(err, this.what);
    }
    if (r.done) throw toTypedError(new Error("containerd ended the write early"), this.what);
    return r.value;
  }

  close(): void {
    this.requests.end();
    this.abort.abort();
  }
}

/**
 * Streams a blob into containerd's content store as containerd's `content.Copy` does: the ingest
 * is opened by ref (STAT tells how much an earlier attempt left), the rest is written at its
 * offset, and COMMIT checks the expected size and digest. Another writer holding the ref is
 * waited for; a blob that exists already is not written again. Returns whether bytes were written.
 */
export async function writeBlob(
  services: ContainerdServices,
  opts: WriteBlobOptions,
): Promise<"written" | "exists"> {
  const { desc, signal } = opts;
  const what = `write ${desc.digest} to the content store`;
  const attempts = opts.attempts ?? 5;
  let lockWaitMs = 10;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortError(signal, what);
    const session = new WriteSession(services, what, opts.lease, signal);
    try {
      session.send({
        action: WriteAction.STAT,
        ref: opts.ref,
        total: BigInt(desc.size),
        expected: desc.digest,
      });
      const status = await session.next();
      const written = await copyInto(session, opts, Number(status.offset));
      opts.onProgress?.(desc.size);
      return written;
    } catch (raw) {
      if (signal?.aborted) throw abortError(signal, what);
      if (!(raw instanceof LibcontainerdError)) {
        // The source's stream broke midway (a reset connection, a registry that went away).
        if (attempt < attempts) {
          await delay(Math.min(100 * 2 ** attempt, 2000), signal, what);
          continue;
        }
        session.close();
        await keepForResume(services, opts.ref, signal);
        throw new UnavailableError(`${what}: the download failed: ${(raw as Error).message}`, { cause: raw });
      }
      if (isErrorCode(raw, "already_exists")) return "exists";
      if (isErrorCode(raw, "unavailable") && /locked/i.test(raw.message)) {
        // Another pull is writing this blob: wait for it, then find the blob there.
        await delay(lockWaitMs, signal, what);
        lockWaitMs = Math.min(lockWaitMs * 2, 500);
        attempt--;
        continue;
      }
      if (raw instanceof DataLossError || isErrorCode(raw, "failed_precondition")) {
        await abortIngest(services, opts.ref, opts.lease);
        if (raw instanceof DataLossError) throw raw;
        const got = /unexpected commit digest (\S+),/.exec(raw.message)?.[1];
        throw new DataLossError(
          got
            ? `blob ${desc.digest} does not match its digest: the bytes received hash to ${got}`
            : raw.message,
          { cause: raw },
        );
      }
      if (!isErrorCode(raw, "unavailable")) throw raw;
      if (attempt >= attempts) {
        session.close();
        await keepForResume(services, opts.ref, signal);
        throw raw;
      }
      await delay(Math.min(100 * 2 ** attempt, 2000), signal, what);
    } finally {
      session.close();
    }
  }
}

async function copyInto(session: WriteSession, opts: WriteBlobOptions, stored: number): Promise<"written"> {
  const { desc } = opts;
  let offset = stored;
  if (offset < desc.size) {
    const source = await opts.source(offset, opts.signal);
    // A source that could not seek starts over: WRITE at offset 0 truncates the ingest.
    offset = source.offset;
    // Written, not yet acknowledged: each is released when containerd answers its write.
    const inFlight: BlobBatch[] = [];
    const acknowledged = async () => {
      await session.next();
      inFlight.shift()?.release?.();
    };
    for await (const batch of "batches" in source ? source.batches : batches(source.stream)) {
      if (offset + batch.bytes > desc.size) {
        throw new DataLossError(
          `blob ${desc.digest}: the source sent more than the ${desc.size} bytes expected`,
        );
      }
      session.send(writeRequest(offset, batch));
      offset += batch.bytes;
      inFlight.push(batch);
      if (inFlight.length >= WINDOW) await acknowledged();
      opts.onProgress?.(offset);
    }
    while (inFlight.length > 0) await acknowledged();
    if (offset !== desc.size) {
      throw new Error(`blob ${desc.digest}: the source ended after ${offset} of ${desc.size} bytes`);
    }
  }
  session.send({
    action: WriteAction.COMMIT,
    offset: BigInt(offset),
    total: BigInt(desc.size),
    expected: desc.digest,
    ...(opts.labels ? { labels: opts.labels } : {}),
  });
  const done = await session.next();
  if (done.digest !== "" && done.digest !== desc.digest)
    throw new DataLossError(`blob ${desc.digest}: stored bytes hash to ${done.digest}`);
  return "written";
}

/**
 * A download that failed midway keeps what it fetched, for the next pull to resume: containerd
 * aborts an ingest with the lease it was opened under, but gives one opened without a lease a
 * 24-hour expiry (metadata/content.go), so the ingest is reopened once without the lease before
 * the pull drops it. Best effort: if containerd is unreachable the next pull starts over.
 */
async function keepForResume(
  services: ContainerdServices,
  ref: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  // The failed session's lock on the ref goes a moment after it closes.
  for (let attempt = 0, waitMs = 10; attempt < 8 && !signal?.aborted; attempt++, waitMs *= 2) {
    const requests = new RequestQueue();
    requests.push({ action: WriteAction.STAT, ref });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 5000);
    try {
      for await (const _ of services.content.write(requests, { signal: controller.signal })) return;
    } catch {
      await delay(waitMs, undefined, "keep a partial download").catch(() => {});
    } finally {
      clearTimeout(timer);
      requests.end();
      controller.abort();
    }
  }
}

/** Drops a failed ingest so its bytes do not linger (its lease goes too). */
async function abortIngest(services: ContainerdServices, ref: string, lease: Lease): Promise<void> {
  await services
    .call(`abort ingest ${ref}`, undefined, (s) =>
      services.content.abort({ ref }, { signal: s, headers: lease.headers }),
    )
    .catch(() => {});
}

/**
 * Streams bytes whose digest is not known beforehand (a layer in a `docker save` tar) into the
 * content store: the digest is computed on the way and given at COMMIT. Returns the descriptor
 * fields and the first bytes (to tell a gzip'd layer from a plain tar).
 */
export async function writeStream(
  services: ContainerdServices,
  opts: {
    ref: string;
    size: number;
    stream: AsyncIterable<unknown> | Iterable<Buffer | Uint8Array>;
    lease: Lease;
    labels?: Record<string, string>;
    signal?: AbortSignal | undefined;
  },
): Promise<{ digest: string; size: number; head: Buffer }> {
  const what = `write ${opts.ref} to the content store`;
  const hash = createHash("sha256");
  let head = Buffer.alloc(0);
  let offset = 0;
  const session = new WriteSession(services, what, opts.lease, opts.signal);
  try {
    session.send({ action: WriteAction.STAT, ref: opts.ref, total: BigInt(opts.size) });
    await session.next();
    let inFlight = 0;
    for await (const chunk of opts.stream) {
      const whole = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      if (head.length < 16) head = Buffer.concat([head, whole.subarray(0, 16 - head.length)]);
      hash.update(whole);
      // A chunk may be the whole input (Readable.from(buffer)): containerd takes 16 MiB per message.
      for (let start = 0; start < whole.length; start += CHUNK_BYTES) {
        const data = whole.subarray(start, start + CHUNK_BYTES);
        session.send({ action: WriteAction.WRITE, offset: BigInt(offset), data });
        offset += data.length;
        if (++inFlight >= WINDOW * 16) {
          await session.next();
          inFlight--;
        }
      }
    }
    for (; inFlight > 0; inFlight--) await session.next();
    const digest = `sha256:${hash.digest("hex")}`;
    session.send({
      action: WriteAction.COMMIT,
      offset: BigInt(offset),
      total: BigInt(offset),
      expected: digest,
      ...(opts.labels ? { labels: opts.labels } : {}),
    });
    try {
      await session.next();
    } catch (err) {
      if (!isErrorCode(err, "already_exists")) throw err;
    }
    return { digest, size: offset, head };
  } catch (err) {
    if (opts.signal?.aborted) throw abortError(opts.signal, what);
    throw err;
  } finally {
    session.close();
  }
}
