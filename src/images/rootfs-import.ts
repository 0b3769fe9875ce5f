import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { pipeline, Readable, Transform, type Writable } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { InvalidArgumentError, LibcontainerdError } from "../libcontainerd/types/errors.js";
import { type NewImage, type NewImageDeps, unpackTop, writeNewImage } from "./commit.js";
import { writeStream } from "./content-writer.js";
import {
  type ImageConfig,
  type ImageRunConfig,
  LABEL_UNCOMPRESSED,
  MediaType,
  type Platform,
} from "./media-types.js";
import { platformOption } from "./platform.js";

export interface RootfsImportOptions extends CallOptions {
  /** The image's runtime config (Cmd, Env …); none by default, as `docker import`. */
  config?: ImageRunConfig;
  /** The history comment (`docker import --message`). */
  comment?: string;
  /** The new image's name; without one it is dangling. */
  name?: string;
  /** The platform the config declares (default: this host's). */
  platform?: string | Platform;
}

type Compression = "gzip" | "xz" | "bzip2" | "zstd" | "none";

/** moby's archive.DetectCompression, by the first bytes. */
function compressionOf(head: Buffer): Compression {
  const starts = (bytes: number[]) => bytes.every((byte, i) => head[i] === byte);
  if (starts([0x1f, 0x8b, 0x08])) return "gzip";
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (starts([0x42, 0x5a, 0x68])) return "bzip2";
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  return "none";
}

/** The first `bytes` of a stream (fewer if it ends), and the whole stream again. */
async function peek(input: Readable, bytes: number): Promise<{ head: Buffer; stream: Readable }> {
  const iterator: AsyncIterator<Buffer> = input[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    first.push(next.value);
    size += next.value.length;
  }
  async function* all(): AsyncGenerator<Buffer> {
    yield* first;
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return {
    head: Buffer.concat(first).subarray(0, bytes),
    stream: Readable.from(all(), { objectMode: false }),
  };
}

/** A pass-through that also writes every chunk into `target` (waiting for it to drain), ending it at the end. */
function teeInto(target: Writable): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (target.write(chunk)) done(null, chunk);
      else target.once("drain", () => done(null, chunk));
    },
    flush(done) {
      target.end();
      done();
    },
  });
}

/** The digest of a layer's tar (its diff ID), and whether what was read looks like a tar at all. */
class TarDigest {
  private readonly hash = createHash("sha256");
  private head = Buffer.alloc(0);
  size = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.head.length < 512)
      this.head = Buffer.concat([this.head, chunk.subarray(0, 512 - this.head.length)]);
  }

  /** `sha256:…`; InvalidArgumentError for input that is not empty and has no tar header. */
  digest(): string {
    const magic = this.head.subarray(257, 262).toString("latin1");
    const allZero = this.head.length === 512 && this.head.every((byte) => byte === 0);
    if (this.size > 0 && magic !== "ustar" && !allZero)
      throw new InvalidArgumentError("import: the input is not a tar archive (nor a gzip, xz or bzip2 one)");
    return `sha256:${this.hash.digest("hex")}`;
  }
}

/**
 * `xz -dc` or `bzip2 -dc` over a stream: Node has no decoder for either. The program is killed
 * when its output is closed early (the import failed or was given up): it would otherwise wait on
 * its input for good.
 */
function decompressWith(program: "xz" | "bzip2", input: Readable): Readable {
  const child = spawn(program, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  // An input that breaks ends the program's: it then fails on a truncated stream.
  pipeline(input, child.stdin, () => {});
  child.once("error", (err) => child.stdout.destroy(err));
  child.once("close", (code) => {
    if (code !== 0)
      child.stdout.destroy(
        new InvalidArgumentError(
          `import: ${program} could not decompress the input: ${stderr.trim() || `exit ${code}`}`,
        ),
      );
  });
  child.stdout.once("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child.stdout;
}

/**
 * `docker import`: a root filesystem tarball (plain, gzip, xz or bzip2) made into a one-layer
 * image, as moby's ImportImage does with containerd: a gzip'd input is stored as it came, any other
 * is stored gzip'd; the layer's diff ID is computed on the way, the layer unpacked, and a config
 * (with `config` and a history entry carrying the comment) and a manifest written, all under one
 * lease. Input that is not a tar registers nothing.
 */
export async function importRootfs(
  deps: NewImageDeps,
  input: Readable,
  opts: RootfsImportOptions = {},
): Promise<NewImage> {
  const signal = opts.signal;
  const platform = platformOption(opts.platform);
  return deps.services.withLease("import rootfs", signal, async (lease) => {
    const { head, stream } = await peek(input, 6);
    const compression = compressionOf(head);
    if (compression === "zstd")
      throw new InvalidArgumentError("import: zstd-compressed archives are not supported by this engine");
    const tar = new TarDigest();
    let stored: Readable;
    let uncompressedDone: Promise<unknown>;
    if (compression === "gzip") {
      const gunzip = createGunzip();
      gunzip.on("data", (chunk: Buffer) => tar.update(chunk));
      uncompressedDone = once(gunzip, "end");
      uncompressedDone.catch(() => {});
      const tee = teeInto(gunzip);
      gunzip.on("error", (err) => tee.destroy(err));
      stored = pipeline(stream, tee, () => {});
    } else {
      const plain = compression === "none" ? stream : decompressWith(compression, stream);
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          tar.update(chunk);
          done(null, chunk);
        },
      });
      // One failing (or given up) destroys all, down to the decompressing program.
      stored = pipeline(plain, hashing, createGzip(), () => {});
      uncompressedDone = Promise.resolve();
    }
    let written: { digest: string; size: number };
    try {
      written = await writeStream(deps.services, {
        ref: `import-rootfs-${randomBytes(8).toString("hex")}`,
        size: 0,
        stream: stored,
        lease,
        signal,
      });
      await uncompressedDone;
    } catch (err) {
      if (err instanceof LibcontainerdError) throw err;
      throw new InvalidArgumentError(`import: cannot read the archive: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const diffId = tar.digest();
    const layer = { mediaType: MediaType.ociLayerGzip, digest: written.digest, size: written.size };
    await deps.services.updateContentLabels(
      layer.digest,
      { [LABEL_UNCOMPRESSED]: diffId },
      lease,
      signal ? { signal } : undefined,
    );
    await unpackTop(deps, lease, signal, [layer], [diffId]);
    const created = new Date().toISOString();
    const config: ImageConfig = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created,
      ...(opts.comment ? { comment: opts.comment } : {}),
      config: opts.config ?? {},
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, ...(opts.comment ? { comment: opts.comment } : {}) }],
    };
    return writeNewImage(deps, lease, signal, {
      config,
      layers: [layer],
      ...(opts.name ? { name: opts.name } : {}),
    });
  });
}
