import { Readable } from "node:stream";
import { callSignal } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { NotFoundError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices } from "./containerd.js";
import { isIndex, isManifest, parseIndex, parseManifest } from "./manifest.js";
import { type Descriptor, LABEL_DISTRIBUTION_SOURCE } from "./media-types.js";
import { type ImageReference, parseReference } from "./reference.js";
import { RegistryClient, type RegistryOptions } from "./registry/client.js";
import type { ImageRecord } from "./store.js";

export interface PushProgress {
  digest: string;
  state: "exists" | "mounted" | "pushed";
  size: number;
  /** What the blob is to the image: a layer, its config, or a manifest or index. */
  kind: "layer" | "config" | "manifest";
  /** With `mounted`: the repository (on the same registry) it was mounted from. */
  mountedFrom?: string;
}

export interface PushOptions extends CallOptions, RegistryOptions {
  onProgress?: (event: PushProgress) => void;
}

/** Where the content store says a blob came from on this registry (containerd.io/distribution.source.<domain>). */
async function mountSource(
  services: ContainerdServices,
  digest: string,
  ref: ImageReference,
  call: CallOptions | undefined,
): Promise<string | undefined> {
  const { info } = await services.call(`stat content ${digest}`, call, (s) =>
    services.content.info({ digest }, { signal: s }),
  );
  const repos = info?.labels[`${LABEL_DISTRIBUTION_SOURCE}.${ref.domain}`]?.split(",") ?? [];
  return repos.find((repo) => repo !== ref.path);
}

/**
 * Pushes an image as containerd's push handlers do: blobs first (a HEAD skips what the registry
 * has, a cross-repository mount what it has elsewhere, the rest is uploaded from the content
 * store), then manifests, then the index, the top one under the image's tag.
 */
export async function pushImage(
  services: ContainerdServices,
  image: ImageRecord,
  target: string | undefined,
  opts: PushOptions = {},
): Promise<void> {
  const ref = parseReference(target ?? image.name);
  const signal = callSignal(opts);
  const call = signal ? { signal } : undefined;
  // The mount sources need pull scope on their repositories too.
  const sources = new Set<string>();
  const plan: { blobs: Descriptor[]; manifests: Descriptor[] } = { blobs: [], manifests: [] };
  const configs = new Set<string>();
  const visit = async (desc: Descriptor): Promise<void> => {
    if (isIndex(desc.mediaType)) {
      const index = parseIndex(await services.readContent(desc.digest, call), `index ${desc.digest}`);
      for (const child of index.manifests) {
        if (!(await services.hasContent(child.digest, call)))
          throw new NotFoundError(
            `push ${image.name}: the manifest for ${child.platform ? `${child.platform.os}/${child.platform.architecture}` : child.digest} is not in the content store (pulled for one platform only)`,
          );
        await visit(child);
      }
    } else if (isManifest(desc.mediaType)) {
      const manifest = parseManifest(
        await services.readContent(desc.digest, call),
        `manifest ${desc.digest}`,
      );
      configs.add(manifest.config.digest);
      for (const blob of [...manifest.layers, manifest.config]) {
        if (!(await services.hasContent(blob.digest, call)))
          throw new NotFoundError(`push ${image.name}: blob ${blob.digest} is not in the content store`);
        const source = await mountSource(services, blob.digest, ref, call);
        if (source) sources.add(`repository:${source}:pull`);
        plan.blobs.push(blob);
      }
    }
    plan.manifests.push(desc);
  };
  await visit(image.target);
  const registry = new RegistryClient(ref, opts, "pull,push", [...sources]);
  try {
    const pushed = new Set<string>();
    for (const blob of plan.blobs) {
      if (pushed.has(blob.digest)) continue;
      pushed.add(blob.digest);
      const kind = configs.has(blob.digest) ? "config" : "layer";
      if (await registry.blobExists(blob.digest, signal)) {
        opts.onProgress?.({ digest: blob.digest, state: "exists", size: blob.size, kind });
        continue;
      }
      const source = await mountSource(services, blob.digest, ref, call);
      const state = await registry.pushBlob(
        blob,
        () => Readable.from(services.readStream(blob.digest, call)),
        source,
        signal,
      );
      opts.onProgress?.({
        digest: blob.digest,
        state,
        size: blob.size,
        kind,
        ...(state === "mounted" && source ? { mountedFrom: source } : {}),
      });
    }
    for (const manifest of plan.manifests) {
      const content = await services.readContent(manifest.digest, call);
      const top = manifest === plan.manifests.at(-1);
      await registry.putManifest(
        top ? (ref.tag ?? ref.digest ?? manifest.digest) : manifest.digest,
        manifest.mediaType,
        content,
        signal,
      );
      opts.onProgress?.({ digest: manifest.digest, state: "pushed", size: manifest.size, kind: "manifest" });
    }
  } finally {
    registry.close();
  }
}
