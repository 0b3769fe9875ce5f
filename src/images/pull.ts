import { callSignal } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { InvalidArgumentError, NotImplementedError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices, Lease } from "./containerd.js";
import { type BlobSource, writeBlob } from "./content-writer.js";
import { isIndex, isManifest, parseConfig, parseIndex, parseManifest, selectManifest } from "./manifest.js";
import {
  chainIds,
  childGcLabels,
  type Descriptor,
  type ImageConfig,
  LABEL_DISTRIBUTION_SOURCE,
  MediaType,
  type Platform,
  snapshotGcLabel,
} from "./media-types.js";
import { platformOption } from "./platform.js";
import { formatReference, type ImageReference, parseReference } from "./reference.js";
import { RegistryClient, type RegistryOptions } from "./registry/client.js";
import type { ImageRecord, ImageStore } from "./store.js";
import { type KeyedLock, unpackLayer } from "./unpack.js";

/** One step of a pull, for a caller's progress display: per blob, bytes so far of its size. */
export interface PullProgress {
  /** The blob's digest (layers, config, manifests). */
  digest: string;
  kind: "index" | "manifest" | "config" | "layer";
  state: "waiting" | "downloading" | "exists" | "downloaded" | "extracting" | "unpacked" | "done";
  current: number;
  total: number;
}

export interface PullOptions extends CallOptions, RegistryOptions {
  /** `linux/amd64`, `linux/arm64/v8` … or a Platform; default: this host's. */
  platform?: string | Platform;
  /** Default: the image service's (overlayfs). */
  snapshotter?: string;
  /** Unpack the layers into snapshots (default true): needed to run the image. */
  unpack?: boolean;
  /** Layers fetched at once (default 8; containerd's `ctr images pull` fetches all at once). */
  concurrency?: number;
  onProgress?: (event: PullProgress) => void;
}

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/**
 * Layers fetched at once by default. Measured (bench/images.ts, 5 layers): 3 at once left the last
 * layer waiting for the first, ~0.5 s of a ~2.5 s pull; ctr fetches every layer at once.
 */
const DEFAULT_CONCURRENCY = 8;

export interface PullDeps {
  services: ContainerdServices;
  store: ImageStore;
  snapshotter: string;
  locks: KeyedLock;
}

/** Runs `tasks` with at most `limit` at once; the promises settle as each task does. */
function limited<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T>[] {
  let running = 0;
  const queue: (() => void)[] = [];
  return tasks.map(
    (task) =>
      new Promise<T>((resolve, reject) => {
        const start = () => {
          running++;
          task()
            .then(resolve, reject)
            .finally(() => {
              running--;
              queue.shift()?.();
            });
        };
        if (running < limit) start();
        else queue.push(start);
      }),
  );
}

/**
 * Pulls an image as containerd 1.6's Go client does (pull.go + unpacker.go): everything under one
 * lease; each blob streamed into the content store with containerd's GC reference labels
 * (index → manifest → config and layers); layers fetched a few at once and unpacked in order as they
 * arrive; the config labelled with the snapshot chain; the image record written last, so a failed
 * pull registers nothing, and what it stored the lease no longer holds. The registry is asked
 * while the lease is made, and the config, manifest and index are stored while the layers come:
 * only the image record waits for the last unpack.
 */
export async function pullImage(deps: PullDeps, ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
  const parsed = parseReference(ref);
  const name = formatReference(parsed);
  const platform = platformOption(opts.platform);
  const snapshotter = opts.snapshotter ?? deps.snapshotter;
  const signal = callSignal(opts);
  const registry = new RegistryClient(parsed, opts);
  const resolving = registry.resolve(signal);
  // Seen below, unless the lease could not be made.
  resolving.catch(() => {});
  try {
    return await deps.services.withLease(`pull ${name}`, signal, async (lease) => {
      // Writes still running when the pull fails are stopped and waited for before the lease goes.
      const stop = new AbortController();
      const pullSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
      const writes: Promise<unknown>[] = [];
      try {
        return await pullUnder(deps, lease, registry, parsed, await resolving, {
          ...opts,
          name,
          platform,
          snapshotter,
          signal: pullSignal,
          writes,
        });
      } catch (err) {
        stop.abort();
        await Promise.allSettled(writes);
        throw err;
      }
    });
  } finally {
    registry.close();
  }
}

interface PullPlan extends PullOptions {
  name: string;
  platform: Platform;
  snapshotter: string;
  signal: AbortSignal;
  /** Every write started, for the caller to wait for if the pull fails. */
  writes: Promise<unknown>[];
}

async function pullUnder(
  deps: PullDeps,
  lease: Lease,
  registry: RegistryClient,
  parsed: ImageReference,
  root: { descriptor: Descriptor; content: Buffer },
  plan: PullPlan,
): Promise<ImageRecord> {
  const { name, signal, writes } = plan;
  const fetcher = new Fetcher(deps.services, registry, parsed, lease, signal, plan.onProgress);
  let manifestDesc = root.descriptor;
  let manifestContent = root.content;
  if (isIndex(root.descriptor.mediaType)) {
    const index = parseIndex(root.content, `index of ${name}`);
    manifestDesc = selectManifest(index, plan.platform, name);
    if (isIndex(manifestDesc.mediaType))
      throw new NotImplementedError(`${name}: an index nested in an index is not supported`);
    manifestContent = await registry.fetchManifest(manifestDesc, signal);
  } else if (!isManifest(root.descriptor.mediaType)) {
    if (root.descriptor.mediaType === MediaType.dockerSchema1Manifest)
      throw new NotImplementedError(`${name}: Docker schema 1 manifests are not supported`);
    throw new InvalidArgumentError(
      `${name}: unknown media type ${JSON.stringify(root.descriptor.mediaType)}`,
    );
  }
  const manifest = parseManifest(manifestContent, `manifest of ${name}`);
  const unpack = plan.unpack !== false;
  const layerWrites = limited(
    Math.max(1, plan.concurrency ?? DEFAULT_CONCURRENCY),
    manifest.layers.map((layer) => () => fetcher.fetchLayer(layer)),
  );
  // Each write's failure is seen through the unpack or the waits below; none goes unhandled.
  for (const write of layerWrites) write.catch(() => {});
  writes.push(...layerWrites);
  const opts = { signal };
  const configContent = (await deps.services.hasContent(manifest.config.digest, opts))
    ? await deps.services.readContent(manifest.config.digest, opts, MAX_CONFIG_BYTES)
    : await registry.fetchSmallBlob(manifest.config, MAX_CONFIG_BYTES, signal);
  const config = parseConfig(configContent, `config of ${name}`, manifest.layers.length);
  const configLabels: Record<string, string> = { ...fetcher.sourceLabel };
  if (unpack && config.rootfs.diff_ids.length > 0) {
    configLabels[snapshotGcLabel(plan.snapshotter)] = chainIds(config.rootfs.diff_ids).at(-1) as string;
  }
  // Under the lease, a label may name content or a snapshot that is not there yet.
  const smallWrites = [
    fetcher.storeSmall(manifest.config, configContent, "config", configLabels),
    fetcher.storeSmall(
      manifestDesc,
      manifestContent,
      "manifest",
      childGcLabels([manifest.config, ...manifest.layers]),
    ),
  ];
  if (manifestDesc !== root.descriptor) {
    smallWrites.push(
      fetcher.storeSmall(root.descriptor, root.content, "index", childGcLabels([manifestDesc])),
    );
  }
  for (const write of smallWrites) write.catch(() => {});
  writes.push(...smallWrites);
  if (unpack) {
    await unpackAll(
      deps,
      plan.snapshotter,
      lease,
      signal,
      manifest.layers,
      config,
      layerWrites,
      plan.onProgress,
    );
  }
  await Promise.all([...layerWrites, ...smallWrites]);
  return deps.store.put({ name, target: root.descriptor }, opts);
}

async function unpackAll(
  deps: PullDeps,
  snapshotter: string,
  lease: Lease,
  signal: AbortSignal | undefined,
  layers: Descriptor[],
  config: ImageConfig,
  writes: Promise<unknown>[],
  onProgress: PullOptions["onProgress"],
): Promise<void> {
  const ctx = { services: deps.services, snapshotter, lease, signal, locks: deps.locks };
  // Every layer's unpack starts at once: each asks whether its chain exists while the layers before
  // it unpack, and prepares its snapshot the moment its parent is committed.
  const labels: Promise<unknown>[] = [];
  let parent: Promise<unknown> = Promise.resolve();
  const unpacks = layers.map((layer, i) => {
    const progress = (state: PullProgress["state"]) =>
      onProgress?.({ digest: layer.digest, kind: "layer", state, current: layer.size, total: layer.size });
    const unpacked = unpackLayer(ctx, layers, config.rootfs.diff_ids, i, {
      ready: writes[i] as Promise<unknown>,
      parent,
      onApply: () => progress("extracting"),
      labels,
    }).then((result) => progress(result === "unpacked" ? "unpacked" : "done"));
    unpacked.catch(() => {});
    parent = unpacked;
    return unpacked;
  });
  // All settled before the first failure is thrown: none is left holding its lock or a snapshot.
  const results = await Promise.allSettled(unpacks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  await Promise.all(labels);
}

/** Writes blobs from one registry repository into the content store under the pull's lease. */
class Fetcher {
  readonly sourceLabel: Record<string, string>;

  constructor(
    private readonly services: ContainerdServices,
    private readonly registry: RegistryClient,
    ref: ImageReference,
    private readonly lease: Lease,
    private readonly signal: AbortSignal | undefined,
    private readonly onProgress: PullOptions["onProgress"],
  ) {
    // containerd's AppendDistributionSourceLabel: lets a push to the same registry mount the blob.
    this.sourceLabel = { [`${LABEL_DISTRIBUTION_SOURCE}.${ref.domain}`]: ref.path };
  }

  async fetchLayer(layer: Descriptor): Promise<void> {
    const progress = (state: PullProgress["state"], current: number) =>
      this.onProgress?.({ digest: layer.digest, kind: "layer", state, current, total: layer.size });
    progress("waiting", 0);
    const source: BlobSource = (offset, signal) => this.registry.openBlobForWrite(layer, offset, signal);
    let reported = -1;
    const result = await writeBlob(this.services, {
      ref: `layer-${layer.digest}`,
      desc: layer,
      source,
      lease: this.lease,
      labels: this.sourceLabel,
      signal: this.signal,
      onProgress: (offset) => {
        if (offset !== reported && offset < layer.size) progress("downloading", offset);
        reported = offset;
      },
    });
    progress(result === "exists" ? "exists" : "downloaded", layer.size);
  }

  /** Writes a manifest, index or config whose bytes are in hand, with labels (added if it exists). */
  async storeSmall(
    desc: Descriptor,
    content: Buffer,
    kind: PullProgress["kind"],
    labels: Record<string, string>,
  ): Promise<void> {
    const source: BlobSource = async () => ({ stream: [content], offset: 0 });
    const result = await writeBlob(this.services, {
      ref: `${kind}-${desc.digest}`,
      desc: { ...desc, size: content.length },
      source,
      lease: this.lease,
      labels,
      signal: this.signal,
    });
    if (result === "exists") {
      await this.services.updateContentLabels(
        desc.digest,
        labels,
        this.lease,
        this.signal ? { signal: this.signal } : undefined,
      );
    }
    this.onProgress?.({
      digest: desc.digest,
      kind,
      state: "done",
      current: content.length,
      total: content.length,
    });
  }
}
