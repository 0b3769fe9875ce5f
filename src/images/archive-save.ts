import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pack } from "tar-stream";
import { abortError, callSignal } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { NotFoundError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices } from "./containerd.js";
import { isIndex, isManifest, parseIndex, parseManifest } from "./manifest.js";
import type { Descriptor } from "./media-types.js";
import { familiarRepository, parseReference } from "./reference.js";
import type { ImageRecord } from "./store.js";

export type SaveOptions = CallOptions;

/** Every blob an image's target reaches that the store holds (an index's other platforms may be absent). */
async function reachable(services: ContainerdServices, target: Descriptor, call: CallOptions | undefined) {
  const blobs = new Map<string, Descriptor>();
  const manifests: Descriptor[] = [];
  const visit = async (desc: Descriptor): Promise<void> => {
    if (blobs.has(desc.digest) || !(await services.hasContent(desc.digest, call))) return;
    blobs.set(desc.digest, desc);
    if (isIndex(desc.mediaType)) {
      const index = parseIndex(await services.readContent(desc.digest, call), `index ${desc.digest}`);
      for (const child of index.manifests) await visit(child);
    } else if (isManifest(desc.mediaType)) {
      manifests.push(desc);
      const manifest = parseManifest(
        await services.readContent(desc.digest, call),
        `manifest ${desc.digest}`,
      );
      for (const child of [manifest.config, ...manifest.layers]) {
        if (!(await services.hasContent(child.digest, call)))
          throw new NotFoundError(
            `manifest ${desc.digest}: ${child.digest} is missing from the content store`,
          );
        blobs.set(child.digest, child);
      }
    }
  };
  await visit(target);
  return { blobs, manifests };
}

const blobPath = (digest: string) => `blobs/sha256/${digest.slice(7)}`;

/**
 * Writes images as an OCI image-layout tar (what `skopeo copy oci-archive:` and containerd import
 * read), with a docker `manifest.json` beside it for `docker load`. Blobs stream from containerd's
 * content store into the tar one at a time.
 */
export async function saveArchive(
  services: ContainerdServices,
  images: ImageRecord[],
  out: Writable,
  opts: SaveOptions = {},
): Promise<void> {
  const signal = callSignal(opts);
  const call = signal ? { signal } : undefined;
  const tar = pack();
  const finished = pipeline(tar, out, signal ? { signal } : {});
  // The pipeline's failure (a closed output) is what the writes below see; it is reported once.
  finished.catch(() => {});
  try {
    const blobs = new Map<string, Descriptor>();
    const index: Descriptor[] = [];
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    for (const image of images) {
      const found = await reachable(services, image.target, call);
      for (const [digest, desc] of found.blobs) blobs.set(digest, desc);
      const ref = parseReference(image.name);
      index.push({
        ...image.target,
        annotations: {
          "io.containerd.image.name": image.name,
          ...(ref.tag ? { "org.opencontainers.image.ref.name": ref.tag } : {}),
        },
      });
      const first = found.manifests[0];
      if (first && found.manifests.length >= 1) {
        const manifest = parseManifest(
          await services.readContent(first.digest, call),
          `manifest ${first.digest}`,
        );
        dockerManifest.push({
          Config: blobPath(manifest.config.digest),
          RepoTags: ref.tag ? [`${familiarRepository(ref)}:${ref.tag}`] : [],
          Layers: manifest.layers.map((l) => blobPath(l.digest)),
        });
      }
    }
    const small = (name: string, content: string) =>
      new Promise<void>((resolve, reject) =>
        tar.entry({ name }, content, (err) => (err ? reject(err) : resolve())),
      );
    await small("oci-layout", JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    for (const desc of blobs.values()) {
      const entry = tar.entry({ name: blobPath(desc.digest), size: desc.size, mode: 0o444 });
      await pipeline(services.readStream(desc.digest, call), entry);
    }
    await small("index.json", JSON.stringify({ schemaVersion: 2, manifests: index }));
    await small("manifest.json", JSON.stringify(dockerManifest));
    tar.finalize();
    await finished;
  } catch (err) {
    tar.destroy(err instanceof Error ? err : new Error(String(err)));
    // Aborted: the streams fail in their own words (an AggregateError, "already finalized or destroyed").
    if (signal?.aborted) throw abortError(signal, `save ${images.map((image) => image.name).join(", ")}`);
    throw err;
  }
}
