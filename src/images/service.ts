import { randomInt } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import type { Transport } from "@connectrpc/connect";
import type { Mount } from "../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { InvalidArgumentError, isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import type { ImportOptions } from "./archive-import.js";
import type { SaveOptions } from "./archive-save.js";
import type { CommitOptions, ConfigImageOptions, NewImage } from "./commit.js";
import type { ContainerdServices } from "./containerd.js";
import {
  type ImageProcess,
  type ImageProcessOverrides,
  imageProcess,
  userNeedsAccounts,
} from "./image-spec.js";
import { isIndex, parseConfig, parseIndex, parseManifest, selectManifest } from "./manifest.js";
import {
  chainIds,
  type Descriptor,
  type ImageConfig,
  isManifest,
  type Manifest,
  type Platform,
} from "./media-types.js";
import { hostPlatform, platformOption } from "./platform.js";
import type { PullOptions } from "./pull.js";
import type { PushOptions } from "./push.js";
import { formatReference, parseReference } from "./reference.js";
import type { RootfsImportOptions } from "./rootfs-import.js";
import {
  danglingName,
  type ImageRecord,
  type ImageStore,
  LABEL_BUILD_CONTAINER_CONFIG,
  LABEL_BUILD_FROM_SCRATCH,
  LABEL_BUILD_PARENT,
} from "./store.js";
import { KeyedLock } from "./unpack.js";

export interface ImageServiceOptions {
  transport: Transport;
  /** Default `overlayfs`. */
  snapshotter?: string;
  defaultTimeoutMs?: number;
}

export interface PlatformOptions extends CallOptions {
  platform?: string | Platform;
}

export interface RemoveImageOptions extends CallOptions {
  /** Wait for containerd's garbage collection to reclaim what the image alone held. */
  sync?: boolean;
}

/** The manifest of an image for one platform, resolved from the content store. */
export interface ResolvedImage {
  record: ImageRecord;
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/** Images through containerd: pull, list, get, tag, remove, config, snapshots for containers. */
export class RemoteImageService {
  readonly snapshotter: string;
  private readonly transport: Transport;
  private readonly defaultTimeoutMs: number;
  private parts_: Promise<{ services: ContainerdServices; store: ImageStore }> | undefined;
  private readonly locks = new KeyedLock();

  constructor(opts: ImageServiceOptions) {
    this.snapshotter = opts.snapshotter ?? "overlayfs";
    this.transport = opts.transport;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 60_000;
  }

  /**
   * containerd's image services and the image store, loaded on first use: every client has an
   * image service, most commands never touch it, and building the services' descriptors (and
   * loading the registry and tar code below) was a tenth of a short ctrd command's start.
   */
  private parts(): Promise<{ services: ContainerdServices; store: ImageStore }> {
    this.parts_ ??= Promise.all([import("./containerd.js"), import("./store.js")]).then(
      ([{ ContainerdServices }, { ImageStore }]) => {
        const services = new ContainerdServices(this.transport, this.defaultTimeoutMs);
        return { services, store: new ImageStore(services) };
      },
    );
    return this.parts_;
  }

  /** Pulls (fetch + unpack) an image from its registry and records it under its normalised name. */
  async pull(ref: string, opts?: PullOptions): Promise<ImageRecord> {
    const [{ services, store }, { pullImage }] = await Promise.all([this.parts(), import("./pull.js")]);
    return pullImage({ services, store, snapshotter: this.snapshotter, locks: this.locks }, ref, opts);
  }

  /** Pushes an image to its registry (or under `target`, another name), blobs first. */
  async push(ref: string, opts: PushOptions & { target?: string } = {}): Promise<void> {
    const [{ services, store }, { pushImage }] = await Promise.all([this.parts(), import("./push.js")]);
    const image = await store.get(ref, opts);
    await pushImage(services, image, opts.target, opts);
  }

  /** Imports a `docker save` tar or an OCI image-layout tar (a stream); the images it named. */
  async import(input: Readable, opts?: ImportOptions): Promise<ImageRecord[]> {
    const [{ services, store }, { importArchive }] = await Promise.all([
      this.parts(),
      import("./archive-import.js"),
    ]);
    return importArchive({ services, store, snapshotter: this.snapshotter, locks: this.locks }, input, opts);
  }

  /**
   * A new image from a snapshot prepared on `base` (a container's rootfs): its changes as one more
   * layer, with the config given (`docker commit`). Without a name the image is dangling.
   */
  async commit(base: string, opts: CommitOptions): Promise<NewImage> {
    const [{ services, store }, { commitSnapshot }] = await Promise.all([
      this.parts(),
      import("./commit.js"),
    ]);
    const image = await this.resolve(base, opts);
    return commitSnapshot({ services, store, snapshotter: this.snapshotter, locks: this.locks }, image, opts);
  }

  /** A new image of `base`'s layers with another config (a build's ENV, CMD, LABEL, …). */
  async withConfig(base: string, opts: ConfigImageOptions): Promise<NewImage> {
    const [{ services, store }, { configImage }] = await Promise.all([this.parts(), import("./commit.js")]);
    const image = await this.resolve(base, opts);
    return configImage({ services, store, snapshotter: this.snapshotter, locks: this.locks }, image, opts);
  }

  /**
   * The images a build step made on the image of target digest `parent` ("": on `FROM scratch`),
   * each with the container config it was made by (undefined: not made by a build, or its blob is
   * gone): where the classic builder's cache looks for a step's image (moby's image cache).
   */
  async buildChildren(
    parent: string,
    opts?: CallOptions,
  ): Promise<{ record: ImageRecord; containerConfig: unknown }[]> {
    const { services, store } = await this.parts();
    const filter =
      parent === "" ? `labels."${LABEL_BUILD_FROM_SCRATCH}"==1` : `labels."${LABEL_BUILD_PARENT}"==${parent}`;
    const out: { record: ImageRecord; containerConfig: unknown }[] = [];
    for (const record of await store.list({ ...opts, filters: [filter] })) {
      const digest = record.labels[LABEL_BUILD_CONTAINER_CONFIG];
      let containerConfig: unknown;
      if (digest)
        containerConfig = await services.readContent(digest, opts).then(
          (bytes) => JSON.parse(bytes.toString("utf8")) as unknown,
          (err: unknown) => {
            if (isErrorCode(err, "not_found")) return undefined;
            throw err;
          },
        );
      out.push({ record, containerConfig });
    }
    return out;
  }

  /**
   * An image of no layers and an empty config, recorded as dangling: what a build's `FROM scratch`
   * stage makes its containers and first image from. The caller removes it. Its `created` has random
   * nanoseconds so that each is its own (another digest): a build running at the same time removes
   * only its own, never the one this build's containers are made from. (Its images take a `created`
   * of their own.)
   */
  async scratch(opts?: CallOptions): Promise<NewImage> {
    const [{ services, store }, { writeNewImage }] = await Promise.all([this.parts(), import("./commit.js")]);
    const platform = hostPlatform();
    return services.withLease("build-scratch", opts?.signal, (lease) =>
      writeNewImage(
        { services, store, snapshotter: this.snapshotter, locks: this.locks },
        lease,
        opts?.signal,
        {
          config: {
            architecture: platform.architecture,
            os: platform.os,
            created: new Date()
              .toISOString()
              .replace(/Z$/, `${randomInt(1_000_000).toString().padStart(6, "0")}Z`),
            config: {},
            rootfs: { type: "layers", diff_ids: [] },
            history: [],
          },
          layers: [],
        },
      ),
    );
  }

  /** A one-layer image from a root filesystem tarball (`docker import`); plain, gzip, xz or bzip2. */
  async importRootfs(input: Readable, opts?: RootfsImportOptions): Promise<NewImage> {
    const [{ services, store }, { importRootfs }] = await Promise.all([
      this.parts(),
      import("./rootfs-import.js"),
    ]);
    return importRootfs({ services, store, snapshotter: this.snapshotter, locks: this.locks }, input, opts);
  }

  /** Writes images as an OCI image-layout tar (with docker's manifest.json) to `out`. */
  async save(refs: string[], out: Writable, opts?: SaveOptions): Promise<void> {
    const [{ services, store }, { saveArchive }] = await Promise.all([
      this.parts(),
      import("./archive-save.js"),
    ]);
    const images: ImageRecord[] = [];
    for (const ref of refs) images.push(await store.get(ref, opts));
    await saveArchive(services, images, out, opts);
  }

  async list(opts?: CallOptions): Promise<ImageRecord[]> {
    return (await this.parts()).store.list(opts);
  }

  /** NotFoundError when there is no such image. */
  async get(ref: string, opts?: CallOptions): Promise<ImageRecord> {
    return (await this.parts()).store.get(ref, opts);
  }

  /** A second name for an image (`docker tag`); an existing target name is moved. */
  async tag(source: string, target: string, opts?: CallOptions): Promise<ImageRecord> {
    const { store } = await this.parts();
    const name = formatReference(parseReference(target));
    // Under the names lock: two tags of one name to different images both saw the name free (or on a
    // third image) and neither kept the image the other replaced; the source read is the one named.
    return store.namesLocked(async () => {
      const image = await store.get(source, opts);
      const tagged = await store.putKeepingReplaced(
        { name, target: image.target, labels: image.labels },
        opts,
      );
      // A dangling image given a name is dangling no more (as moby's TagImage drops that record).
      await store.delete(danglingName(image.target.digest), opts).catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) throw err;
      });
      return tagged;
    }, opts);
  }

  /**
   * Gives the image `ref` names its dangling name too, so that removing its names leaves it (moby's
   * untag of an image other images were built on: an intermediate, listed with `images -a`).
   */
  async keepDangling(ref: string, opts?: CallOptions): Promise<void> {
    const { store } = await this.parts();
    await store.namesLocked(async () => {
      const image = await store.get(ref, opts);
      await store.put(
        { name: danglingName(image.target.digest), target: image.target, labels: image.labels },
        opts,
      );
    }, opts);
  }

  /** Removes an image's name; what nothing else references is reclaimed by containerd's GC. */
  async remove(ref: string, opts?: RemoveImageOptions): Promise<void> {
    const { store } = await this.parts();
    await store.namesLocked(async () => {
      const image = await store.get(ref, opts);
      await store.delete(image.name, opts);
    }, opts);
  }

  /**
   * Runs `work` with the image names to itself in this process (tag, remove and commits' names wait):
   * for a caller whose change reads names first, as `docker rmi` deciding whether it removes the last.
   */
  async namesLocked<T>(work: () => Promise<T>, opts?: CallOptions): Promise<T> {
    const { store } = await this.parts();
    return store.namesLocked(work, opts);
  }

  /** The manifest and config for a platform (default: the host's). */
  async resolve(ref: string, opts?: PlatformOptions): Promise<ResolvedImage> {
    const record = await (await this.parts()).store.get(ref, opts);
    const platform = platformOption(opts?.platform);
    let desc = record.target;
    for (let depth = 0; isIndex(desc.mediaType); depth++) {
      if (depth > 2) throw new InvalidArgumentError(`image ${record.name}: indexes nested too deep`);
      const index = parseIndex(await this.read(desc, record, opts), `index of ${record.name}`);
      desc = selectManifest(index, platform, record.name);
    }
    if (!isManifest(desc.mediaType))
      throw new InvalidArgumentError(`image ${record.name}: unknown media type ${desc.mediaType}`);
    const manifest = parseManifest(await this.read(desc, record, opts), `manifest of ${record.name}`);
    const config = parseConfig(
      await this.read(manifest.config, record, opts),
      `config of ${record.name}`,
      manifest.layers.length,
    );
    return { record, manifestDescriptor: desc, manifest, config };
  }

  private async read(desc: Descriptor, record: ImageRecord, opts?: CallOptions): Promise<Buffer> {
    const { services } = await this.parts();
    try {
      return await services.readContent(desc.digest, opts);
    } catch (err) {
      if (isErrorCode(err, "not_found"))
        throw new NotFoundError(`image ${record.name}: content ${desc.digest} is missing (pull it again)`, {
          cause: err,
        });
      throw err;
    }
  }

  /** The OCI image config (Entrypoint, Cmd, Env, User …) for a platform. */
  async config(ref: string, opts?: PlatformOptions): Promise<ImageConfig> {
    return (await this.resolve(ref, opts)).config;
  }

  /** The process a container of this image runs: Entrypoint + Cmd, Env, WorkingDir, User (names resolved). */
  async process(
    ref: string,
    overrides: ImageProcessOverrides = {},
    opts?: PlatformOptions,
  ): Promise<ImageProcess> {
    const image = await this.resolve(ref, opts);
    const user = overrides.user ?? image.config.config?.User;
    let files = { passwd: null as string | null, group: null as string | null };
    if (userNeedsAccounts(user)) {
      const [{ services }, { readFilesFromLayers }] = await Promise.all([
        this.parts(),
        import("./layer-files.js"),
      ]);
      const found = await readFilesFromLayers(
        services,
        image.manifest.layers,
        ["etc/passwd", "etc/group"],
        opts,
      );
      files = {
        passwd: found.get("etc/passwd")?.toString("utf8") ?? null,
        group: found.get("etc/group")?.toString("utf8") ?? null,
      };
    }
    return imageProcess(image.config, overrides, files);
  }

  /**
   * A writable snapshot on top of the image's layers, for a container's rootfs (what containerd's
   * WithNewSnapshot does). It is a GC root until the container that uses it is deleted with it.
   * Unpacks the image first if its layers are not (NotFoundError if the layers are missing).
   */
  async prepareSnapshot(
    ref: string,
    key: string,
    opts?: PlatformOptions,
  ): Promise<{ snapshotter: string; key: string; mounts: Mount[] }> {
    const image = await this.resolve(ref, opts);
    const { services } = await this.parts();
    const chain = chainIds(image.config.rootfs.diff_ids);
    const parent = chain.at(-1) ?? "";
    if (parent !== "") {
      try {
        await services.call(`stat snapshot ${parent}`, opts, (s) =>
          services.snapshots.stat({ snapshotter: this.snapshotter, key: parent }, { signal: s }),
        );
      } catch (err) {
        if (!isErrorCode(err, "not_found")) throw err;
        throw new NotFoundError(
          `image ${image.record.name} is not unpacked for the ${this.snapshotter} snapshotter (pull it again)`,
          { cause: err },
        );
      }
    }
    const { mounts } = await services.call(`prepare snapshot ${key}`, opts, (s) =>
      services.snapshots.prepare(
        {
          snapshotter: this.snapshotter,
          key,
          parent,
          labels: { "containerd.io/gc.root": new Date().toISOString() },
        },
        { signal: s },
      ),
    );
    return { snapshotter: this.snapshotter, key, mounts };
  }

  /** The mounts of a snapshot made by prepareSnapshot (what containerd mounts as the container's rootfs). */
  async snapshotMounts(snapshotter: string, key: string, opts?: CallOptions): Promise<Mount[]> {
    const { services } = await this.parts();
    const { mounts } = await services.call(`mounts of snapshot ${key}`, opts, (s) =>
      services.snapshots.mounts({ snapshotter, key }, { signal: s }),
    );
    return mounts;
  }

  /** Removes a snapshot made by prepareSnapshot (NotFound is fine: it is gone). */
  async removeSnapshot(snapshotter: string, key: string, opts?: CallOptions): Promise<void> {
    const { services } = await this.parts();
    await services
      .call(`remove snapshot ${key}`, opts, (s) =>
        services.snapshots.remove({ snapshotter, key }, { signal: s }),
      )
      .catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) throw err;
      });
  }
}
