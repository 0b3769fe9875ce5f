import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { extract } from "tar-stream";
import { abortError, callSignal } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { InvalidArgumentError, LibcontainerdError, NotFoundError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices, Lease } from "./containerd.js";
import { writeStream } from "./content-writer.js";
import { isIndex, isManifest, parseConfig, parseIndex, parseManifest, selectManifest } from "./manifest.js";
import {
  chainIds,
  childGcLabels,
  type Descriptor,
  MediaType,
  type Platform,
  snapshotGcLabel,
} from "./media-types.js";
import { hostPlatform } from "./platform.js";
import { formatReference, parseReference } from "./reference.js";
import type { ImageRecord, ImageStore } from "./store.js";
import { type KeyedLock, unpackLayer } from "./unpack.js";

export interface ImportOptions extends CallOptions {
  /** For OCI layouts whose entries carry only a tag (`org.opencontainers.image.ref.name: 1.0`): the repository. */
  baseName?: string;
  /** Unpack the imported images for this host (default true), as `ctr import` does. */
  unpack?: boolean;
  snapshotter?: string;
}

export interface ImportDeps {
  services: ContainerdServices;
  store: ImageStore;
  snapshotter: string;
  locks: KeyedLock;
}

/** Top-level files that describe the archive; everything else is a blob. */
const DESCRIPTIONS = new Set(["index.json", "oci-layout", "manifest.json", "repositories"]);
const MAX_DESCRIPTION = 16 * 1024 * 1024;

interface ArchiveFile {
  digest: string;
  size: number;
  gzip: boolean;
}

/** Refuses `../`, absolute paths and NULs: an archive names files inside itself only. */
export function archivePath(name: string): string {
  if (name.includes("\0"))
    throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)}: NUL in its name`);
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name))
    throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)}: absolute paths are refused`);
  if (name.split(/[\\/]/).includes(".."))
    throw new InvalidArgumentError(`archive entry ${JSON.stringify(name)}: '..' is refused`);
  return posix.normalize(name).replace(/^\.\//, "").replace(/\/$/, "");
}

/**
 * Imports a `docker save` tar or an OCI image-layout tar from a stream, as containerd's importer
 * does: every file goes into the content store as it streams past (under one lease), then the
 * images named in index.json (OCI) or manifest.json (docker, whose layers get a schema 2 manifest
 * made here) are labelled for GC, unpacked, and recorded. A bad archive registers nothing.
 */
export async function importArchive(
  deps: ImportDeps,
  input: Readable,
  opts: ImportOptions = {},
): Promise<ImageRecord[]> {
  const signal = callSignal(opts);
  return deps.services.withLease("import", signal, async (lease) => {
    const { files, descriptions } = await readArchive(deps.services, input, lease, signal);
    const images = descriptions.has("index.json")
      ? ociImages(descriptions, files, opts)
      : await dockerImages(deps.services, descriptions, files, lease, signal);
    if (images.length === 0) throw new InvalidArgumentError("import: the archive names no image");
    // Every image checked and unpacked before any is recorded: a bad one further on registers nothing.
    for (const image of images) await labelAndUnpack(deps, image.target, lease, signal, opts);
    const records: ImageRecord[] = [];
    for (const image of images)
      records.push(await deps.store.put({ name: image.name, target: image.target }, opts));
    return records;
  });
}

async function readArchive(
  services: ContainerdServices,
  input: Readable,
  lease: Lease,
  signal: AbortSignal | undefined,
): Promise<{ files: Map<string, ArchiveFile>; descriptions: Map<string, Buffer> }> {
  const files = new Map<string, ArchiveFile>();
  const links = new Map<string, string>();
  const descriptions = new Map<string, Buffer>();
  const parser = extract();
  const done = new Promise<void>((resolve, reject) => {
    parser.on("finish", resolve);
    parser.on("error", reject);
    input.on("error", reject);
    signal?.addEventListener("abort", () => reject(abortError(signal, "import")), { once: true });
  });
  parser.on("entry", (header, stream, next) => {
    const handle = async () => {
      const path = archivePath(header.name);
      if (header.type === "symlink" || header.type === "link") {
        const target =
          header.type === "symlink"
            ? posix.join(posix.dirname(path), header.linkname ?? "")
            : (header.linkname ?? "");
        links.set(path, archivePath(target));
        stream.resume();
        return;
      }
      if (header.type !== "file" && header.type !== "contiguous-file") {
        stream.resume();
        return;
      }
      if (DESCRIPTIONS.has(path)) {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of stream) {
          size += (chunk as Buffer).length;
          if (size > MAX_DESCRIPTION) throw new InvalidArgumentError(`import: ${path} is larger than 16 MiB`);
          chunks.push(chunk as Buffer);
        }
        descriptions.set(path, Buffer.concat(chunks));
        return;
      }
      const written = await writeStream(services, {
        ref: `import-${randomBytes(8).toString("hex")}`,
        size: header.size ?? 0,
        stream,
        lease,
        signal,
      });
      const named = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path)?.[1];
      if (named && `sha256:${named}` !== written.digest)
        throw new InvalidArgumentError(`import: ${path} holds bytes that hash to ${written.digest}`);
      files.set(path, {
        digest: written.digest,
        size: written.size,
        gzip: written.head[0] === 0x1f && written.head[1] === 0x8b,
      });
    };
    handle().then(
      () => next(),
      (err: unknown) => {
        stream.resume();
        parser.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  input.pipe(parser);
  try {
    await done;
  } catch (err) {
    if (err instanceof LibcontainerdError) throw err;
    throw new InvalidArgumentError(`import: not a readable tar archive: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    input.unpipe(parser);
  }
  for (const [link, target] of links) {
    const file = files.get(target);
    if (file) files.set(link, file);
  }
  return { files, descriptions };
}

function parseJsonFile<T>(descriptions: Map<string, Buffer>, name: string): T {
  try {
    return JSON.parse((descriptions.get(name) as Buffer).toString("utf8")) as T;
  } catch (err) {
    throw new InvalidArgumentError(`import: ${name} is not valid JSON`, { cause: err });
  }
}

/** OCI layout: index.json's entries, named by their annotations. */
function ociImages(
  descriptions: Map<string, Buffer>,
  files: Map<string, ArchiveFile>,
  opts: ImportOptions,
): { name: string; target: Descriptor }[] {
  const index = parseIndex(descriptions.get("index.json") as Buffer, "import: index.json");
  const images: { name: string; target: Descriptor }[] = [];
  for (const entry of index.manifests) {
    if (!files.has(`blobs/sha256/${entry.digest.slice(7)}`))
      throw new InvalidArgumentError(
        `import: index.json names ${entry.digest}, which the archive does not hold`,
      );
    const full = entry.annotations?.["io.containerd.image.name"];
    const refName = entry.annotations?.["org.opencontainers.image.ref.name"];
    let name: string | undefined;
    if (full) name = formatReference(parseReference(full));
    else if (refName && (refName.includes("/") || (refName.includes(":") && !refName.startsWith(":"))))
      name = formatReference(parseReference(refName));
    else if (refName && opts.baseName) name = formatReference(parseReference(`${opts.baseName}:${refName}`));
    else if (refName)
      throw new InvalidArgumentError(
        `import: the image tagged ${JSON.stringify(refName)} has no repository; give baseName`,
      );
    const { annotations: _a, ...target } = entry;
    if (name) images.push({ name, target: { ...target } });
  }
  return images;
}

/** docker save: manifest.json's Config, RepoTags and Layers, given a schema 2 manifest of their own. */
async function dockerImages(
  services: ContainerdServices,
  descriptions: Map<string, Buffer>,
  files: Map<string, ArchiveFile>,
  lease: Lease,
  signal: AbortSignal | undefined,
): Promise<{ name: string; target: Descriptor }[]> {
  if (!descriptions.has("manifest.json"))
    throw new InvalidArgumentError(
      "import: neither index.json (OCI layout) nor manifest.json (docker save) in the archive",
    );
  const entries = parseJsonFile<{ Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]>(
    descriptions,
    "manifest.json",
  );
  if (!Array.isArray(entries)) throw new InvalidArgumentError("import: manifest.json is not a list");
  const images: { name: string; target: Descriptor }[] = [];
  for (const entry of entries) {
    const file = (path: unknown): ArchiveFile => {
      const found = typeof path === "string" ? files.get(archivePath(path)) : undefined;
      if (!found)
        throw new InvalidArgumentError(
          `import: manifest.json names ${String(path)}, which the archive does not hold`,
        );
      return found;
    };
    if (!Array.isArray(entry.Layers))
      throw new InvalidArgumentError("import: a manifest.json entry has no Layers");
    const config = file(entry.Config);
    const layers = entry.Layers.map((path) => {
      const layer = file(path);
      return {
        mediaType: layer.gzip ? MediaType.dockerLayerGzip : MediaType.dockerLayer,
        digest: layer.digest,
        size: layer.size,
      };
    });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size },
        layers,
      }),
    );
    const written = await writeStream(services, {
      ref: `import-manifest-${randomBytes(8).toString("hex")}`,
      size: manifest.length,
      stream: [manifest],
      lease,
      signal,
    });
    const target = { mediaType: MediaType.dockerManifest, digest: written.digest, size: written.size };
    const tags = Array.isArray(entry.RepoTags)
      ? entry.RepoTags.filter((t): t is string => typeof t === "string")
      : [];
    for (const tag of tags) images.push({ name: formatReference(parseReference(tag)), target });
  }
  return images;
}

/** GC labels on the index and manifests (their children), the snapshot label on the config, unpacked. */
async function labelAndUnpack(
  deps: ImportDeps,
  target: Descriptor,
  lease: Lease,
  signal: AbortSignal | undefined,
  opts: ImportOptions,
): Promise<void> {
  const call = signal ? { signal } : undefined;
  const read = (d: Descriptor) => deps.services.readContent(d.digest, call);
  let manifestDesc = target;
  if (isIndex(target.mediaType)) {
    const index = parseIndex(await read(target), `import: index ${target.digest}`);
    const present: Descriptor[] = [];
    for (const m of index.manifests) if (await deps.services.hasContent(m.digest, call)) present.push(m);
    await deps.services.updateContentLabels(target.digest, childGcLabels(present), lease, call);
    for (const m of present) if (isManifest(m.mediaType)) await labelManifest(deps, m, lease, call);
    const platform: Platform = hostPlatform();
    try {
      manifestDesc = selectManifest({ ...index, manifests: present }, platform, `import ${target.digest}`);
    } catch (err) {
      if (err instanceof NotFoundError) return; // Nothing for this host to unpack.
      throw err;
    }
  } else if (isManifest(target.mediaType)) {
    await labelManifest(deps, target, lease, call);
  } else {
    throw new InvalidArgumentError(`import: unknown media type ${target.mediaType}`);
  }
  if (opts.unpack === false) return;
  const manifest = parseManifest(await read(manifestDesc), `import: manifest ${manifestDesc.digest}`);
  const config = parseConfig(
    await read(manifest.config),
    `import: config ${manifest.config.digest}`,
    manifest.layers.length,
  );
  const snapshotter = opts.snapshotter ?? deps.snapshotter;
  const ctx = { services: deps.services, snapshotter, lease, signal, locks: deps.locks };
  for (let i = 0; i < manifest.layers.length; i++)
    await unpackLayer(ctx, manifest.layers, config.rootfs.diff_ids, i, { ready: Promise.resolve() });
  const top = chainIds(config.rootfs.diff_ids).at(-1);
  if (top)
    await deps.services.updateContentLabels(
      manifest.config.digest,
      { [snapshotGcLabel(snapshotter)]: top },
      lease,
      call,
    );
}

async function labelManifest(
  deps: ImportDeps,
  desc: Descriptor,
  lease: Lease,
  call: CallOptions | undefined,
): Promise<void> {
  const manifest = parseManifest(
    await deps.services.readContent(desc.digest, call),
    `import: manifest ${desc.digest}`,
  );
  for (const child of [manifest.config, ...manifest.layers]) {
    if (!(await deps.services.hasContent(child.digest, call)))
      throw new InvalidArgumentError(
        `import: manifest ${desc.digest} names ${child.digest}, which the archive does not hold`,
      );
  }
  await deps.services.updateContentLabels(
    desc.digest,
    childGcLabels([manifest.config, ...manifest.layers]),
    lease,
    call,
  );
}
