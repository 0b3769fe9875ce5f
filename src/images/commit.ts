import { randomBytes } from "node:crypto";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { DataLossError, InternalError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices, Lease } from "./containerd.js";
import { writeStream } from "./content-writer.js";
import {
  chainIds,
  childGcLabels,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageRunConfig,
  LABEL_UNCOMPRESSED,
  MediaType,
  sha256,
  snapshotGcLabel,
} from "./media-types.js";
import { hostPlatform } from "./platform.js";
import { normalizeReference } from "./reference.js";
import type { ResolvedImage } from "./service.js";
import {
  danglingName,
  type ImageRecord,
  type ImageStore,
  LABEL_BUILD_CONTAINER_CONFIG,
  LABEL_BUILD_FROM_SCRATCH,
  LABEL_BUILD_PARENT,
} from "./store.js";
import { type KeyedLock, unpackLayer } from "./unpack.js";

export interface NewImageDeps {
  services: ContainerdServices;
  store: ImageStore;
  snapshotter: string;
  locks: KeyedLock;
}

/** An image made here (a commit, an import): its record and its id (the config's digest, as Docker shows it). */
export interface NewImage {
  record: ImageRecord;
  id: string;
}

export interface CommitOptions extends CallOptions {
  /** The snapshot to make a layer of: a container's rootfs, prepared on `base`'s layers. */
  snapshotKey: string;
  /** The config the new image runs with (the base's, changed as the caller wants). */
  config: ImageRunConfig;
  /** The history entry's `created_by`: what the container ran. */
  createdBy?: string;
  author?: string;
  comment?: string;
  /** The new image's name; without one it is dangling (no repository, no tag). */
  name?: string;
  /** A build step's image: recorded as its parent's child, findable by the step's config. */
  buildCache?: BuildCacheLink;
}

/**
 * What the classic builder's cache finds a step's image by (moby's containerd image store's labels):
 * the image record's parent label and the step's container config, a blob the image config holds.
 */
export interface BuildCacheLink {
  /** The target digest of the image the step ran on; "" for a step on `FROM scratch`. */
  parent: string;
  /** The step's container config (its Cmd the instruction): the cache key, with the parent. */
  containerConfig: Record<string, unknown>;
}

/** Image config blob's GC reference to the container config blob. */
const LABEL_GC_CONTAINER_CONFIG = "containerd.io/gc.ref.content.moby/container.config";
/** Container config blob label: the manifest digest of the image it is the step of. */
const LABEL_CONTAINER_CONFIG_IMAGE = "org.mobyproject.content.image";

export interface ConfigImageOptions extends CallOptions {
  /** The config the new image runs with. */
  config: ImageRunConfig;
  /** The history entry's `created_by` (the builder's `#(nop) …`). */
  createdBy: string;
  name?: string;
  buildCache?: BuildCacheLink;
}

/** A tar of no entries (its two zero blocks): a layer with nothing in it. */
export const EMPTY_LAYER_DIFF_ID = sha256(new Uint8Array(1024));

const nowIso = (): string => new Date().toISOString();

/** An ingest ref of our own (containerd locks an ingest per ref). */
const ingestRef = (what: string): string => `${what}-${randomBytes(8).toString("hex")}`;

/**
 * A commit, as containerd's rootfs.CreateDiff and moby's and nerdctl's commit do it: the snapshot
 * is compared with a view of its parent chain by containerd's diff service, which writes the
 * differences as a gzip'd layer into the content store; the layer is applied as the new top
 * snapshot (so the image runs without an unpack), and a config (the base's, with `config`, the
 * new diff ID and a history entry) and a manifest (the base's layers and the new one) are written.
 * Everything is made under one lease: a commit that fails leaves nothing for GC to keep. A snapshot
 * with no changes adds no layer, only the history entry (marked empty), as dockerd does.
 */
export async function commitSnapshot(
  deps: NewImageDeps,
  base: ResolvedImage,
  opts: CommitOptions,
): Promise<NewImage> {
  const { services, snapshotter } = deps;
  const signal = opts.signal;
  const call = signal ? { signal } : undefined;
  return services.withLease("commit", signal, async (lease) => {
    const parent = chainIds(base.config.rootfs.diff_ids).at(-1) ?? "";
    const view = ingestRef("commit-view");
    const headers = lease.headers;
    let layer: Descriptor;
    try {
      const lower = parent
        ? (
            await services.call(`view snapshot ${parent}`, call, (s) =>
              services.snapshots.view({ snapshotter, key: view, parent }, { signal: s, headers }),
            )
          ).mounts
        : [];
      const upper = (
        await services.call(`mounts of snapshot ${opts.snapshotKey}`, call, (s) =>
          services.snapshots.mounts({ snapshotter, key: opts.snapshotKey }, { signal: s }),
        )
      ).mounts;
      const { diff } = await services.call(
        `diff snapshot ${opts.snapshotKey}`,
        { ...call, timeoutMs: 60 * 60_000 },
        (s) =>
          services.diff.diff(
            { left: lower, right: upper, mediaType: MediaType.ociLayerGzip, ref: ingestRef("commit-layer") },
            { signal: s, headers },
          ),
      );
      if (!diff) throw new InternalError(`diff snapshot ${opts.snapshotKey}: containerd returned no layer`);
      layer = { mediaType: MediaType.ociLayerGzip, digest: diff.digest, size: Number(diff.size) };
    } finally {
      if (parent)
        await services
          .call(`remove snapshot ${view}`, undefined, (s) =>
            services.snapshots.remove({ snapshotter, key: view }, { signal: s, headers }),
          )
          .catch(() => {});
    }
    const { info } = await services.call(`stat content ${layer.digest}`, call, (s) =>
      services.content.info({ digest: layer.digest }, { signal: s }),
    );
    const diffId = info?.labels[LABEL_UNCOMPRESSED];
    if (!diffId)
      throw new DataLossError(`containerd's diff of ${opts.snapshotKey} has no uncompressed digest`);
    const empty = diffId === EMPTY_LAYER_DIFF_ID;
    const created = nowIso();
    const history: HistoryEntry = {
      created,
      ...(opts.createdBy ? { created_by: opts.createdBy } : {}),
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      ...(empty ? { empty_layer: true } : {}),
    };
    const platform = hostPlatform();
    const config: ImageConfig = {
      architecture: base.config.architecture || platform.architecture,
      os: base.config.os || platform.os,
      ...(base.config.variant ? { variant: base.config.variant } : {}),
      created,
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      config: opts.config,
      rootfs: { type: "layers", diff_ids: [...base.config.rootfs.diff_ids, ...(empty ? [] : [diffId])] },
      history: [...(base.config.history ?? []), history],
    };
    const layers = [...base.manifest.layers, ...(empty ? [] : [layer])];
    if (!empty) await unpackTop(deps, lease, signal, layers, config.rootfs.diff_ids);
    return writeNewImage(deps, lease, signal, {
      config,
      layers,
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.buildCache ? { buildCache: opts.buildCache } : {}),
    });
  });
}

/**
 * A new image of `base`'s layers with another config and one more history entry, marked empty: what
 * dockerd's builder commits for an instruction that changes only the config (ENV, CMD, LABEL, …).
 */
export async function configImage(
  deps: NewImageDeps,
  base: ResolvedImage,
  opts: ConfigImageOptions,
): Promise<NewImage> {
  return deps.services.withLease("build-config", opts.signal, (lease) => {
    const created = nowIso();
    const config: ImageConfig = {
      ...base.config,
      created,
      config: opts.config,
      history: [...(base.config.history ?? []), { created, created_by: opts.createdBy, empty_layer: true }],
    };
    return writeNewImage(deps, lease, opts.signal, {
      config,
      layers: base.manifest.layers,
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.buildCache ? { buildCache: opts.buildCache } : {}),
    });
  });
}

/** Applies the last of `layers` on the chain of the others (which is unpacked): the new top snapshot. */
export async function unpackTop(
  deps: NewImageDeps,
  lease: Lease,
  signal: AbortSignal | undefined,
  layers: readonly Descriptor[],
  diffIds: readonly string[],
): Promise<void> {
  const ctx = { services: deps.services, snapshotter: deps.snapshotter, lease, signal, locks: deps.locks };
  await unpackLayer(ctx, layers, diffIds, layers.length - 1, { ready: Promise.resolve() });
}

/**
 * Writes a new image's config (labelled with its snapshot, for GC) and OCI manifest (labelled
 * with its blobs) under the lease, and records the image under `name`, or as dangling. A build
 * step's image also gets its container config blob (held by the config) and its cache labels.
 */
export async function writeNewImage(
  deps: NewImageDeps,
  lease: Lease,
  signal: AbortSignal | undefined,
  image: { config: ImageConfig; layers: readonly Descriptor[]; name?: string; buildCache?: BuildCacheLink },
): Promise<NewImage> {
  const write = async (mediaType: string, bytes: Buffer, labels: Record<string, string>) => {
    const written = await writeStream(deps.services, {
      ref: ingestRef("new-image"),
      size: bytes.length,
      stream: [bytes],
      lease,
      labels,
      signal,
    });
    return { mediaType, digest: written.digest, size: written.size };
  };
  const configBytes = Buffer.from(JSON.stringify(image.config));
  const configDesc = {
    mediaType: MediaType.ociConfig,
    digest: sha256(configBytes),
    size: configBytes.length,
  };
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers: image.layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const configLabels: Record<string, string> = {};
  const top = chainIds(image.config.rootfs.diff_ids).at(-1);
  if (top) configLabels[snapshotGcLabel(deps.snapshotter)] = top;
  const recordLabels: Record<string, string> = {};
  if (image.buildCache) {
    const containerConfig = await write(
      "application/vnd.docker.container.image.v1+json",
      Buffer.from(JSON.stringify(image.buildCache.containerConfig)),
      { [LABEL_CONTAINER_CONFIG_IMAGE]: sha256(manifestBytes) },
    );
    configLabels[LABEL_GC_CONTAINER_CONFIG] = containerConfig.digest;
    recordLabels[LABEL_BUILD_PARENT] = image.buildCache.parent;
    recordLabels[LABEL_BUILD_CONTAINER_CONFIG] = containerConfig.digest;
    if (image.buildCache.parent === "") recordLabels[LABEL_BUILD_FROM_SCRATCH] = "1";
  }
  await write(MediaType.ociConfig, configBytes, configLabels);
  const manifestDesc = await write(
    MediaType.ociManifest,
    manifestBytes,
    childGcLabels([configDesc, ...image.layers]),
  );
  const call = signal ? { signal } : undefined;
  const record = image.name
    ? await deps.store.putKeepingReplaced(
        { name: normalizeReference(image.name), target: manifestDesc, labels: recordLabels },
        call,
      )
    : await deps.store.put(
        { name: danglingName(manifestDesc.digest), target: manifestDesc, labels: recordLabels },
        call,
      );
  return { record, id: configDesc.digest };
}
