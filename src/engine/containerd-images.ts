import type { Mount } from "../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import type { ImageService } from "../images/index.js";
import { familiarRepository, parseReference } from "../images/reference.js";
import { type ImageRecord, isDangling, LABEL_BUILD_PARENT } from "../images/store.js";
import { abortError } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import type {
  ImageConfig,
  ImageSource,
  ImageSummary,
  PreparedRootfs,
  ResolvedImage,
} from "./image-source.js";

/** `docker.io/library/busybox:latest` → `busybox:latest`, as Docker shows names. */
export function familiarName(name: string): string {
  try {
    const ref = parseReference(name);
    const repository = familiarRepository(ref);
    return ref.tag !== undefined
      ? `${repository}:${ref.tag}`
      : ref.digest !== undefined
        ? `${repository}@${ref.digest}`
        : repository;
  } catch {
    return name;
  }
}

/** A full or abbreviated image id (`sha256:…` or its hex), which Docker accepts wherever a name goes. */
function looksLikeId(ref: string): boolean {
  return /^(sha256:)?[a-f0-9]{12,64}$/.test(ref);
}

/**
 * Docker's image view of containerd's images (client.images): an image's id is its config digest,
 * a container's rootfs is a snapshot prepared on the image's layers and removed with the container.
 */
/**
 * The images running builds still need (each stage's image so far, a finished stage's that a COPY
 * --from will read, a FROM scratch stage's empty image), by target digest: docker image prune and
 * rmi's removal of untagged parents leave them, and any image made on one (a step's image is
 * recorded before its build holds it). dockerd's classic builder held none (moby#29011: a prune
 * beside a build failed it with "No such image").
 */
export class BuildHolds {
  private readonly counts = new Map<string, number>();

  add(digest: string): void {
    if (digest !== "") this.counts.set(digest, (this.counts.get(digest) ?? 0) + 1);
  }

  release(digest: string): void {
    const count = this.counts.get(digest) ?? 0;
    if (count <= 1) this.counts.delete(digest);
    else this.counts.set(digest, count - 1);
  }

  /** Whether a running build needs the image, or made it on one it needs. */
  keeps(image: { targets?: string[]; parent?: string }): boolean {
    return (
      (image.targets ?? []).some((digest) => this.counts.has(digest)) ||
      (image.parent !== undefined && this.counts.has(image.parent))
    );
  }
}

export class ContainerdImages implements ImageSource {
  /** What running builds use: kept from prune and rmi's parents. */
  readonly buildHolds = new BuildHolds();

  constructor(private readonly images: ImageService) {}

  get service(): ImageService {
    return this.images;
  }

  /**
   * The containerd image records that answer to `ref`: all names of the image a name or an id
   * names, and for a name, the record of that name.
   */
  async records(
    ref: string,
    opts?: CallOptions,
  ): Promise<{ id: string; records: ImageRecord[]; named?: ImageRecord }> {
    if (!looksLikeId(ref)) {
      try {
        const record = await this.images.get(ref, opts);
        const resolved = await this.images.resolve(record.name, opts);
        const id = resolved.manifest.config.digest;
        const all = await this.images.list(opts);
        const same = all.filter((other) => other.target.digest === record.target.digest);
        return { id, records: same.length > 0 ? same : [record], named: record };
      } catch (err) {
        if (!isErrorCode(err, "not_found") && !isErrorCode(err, "invalid_argument")) throw err;
        throw new NotFoundError(`No such image: ${ref}`, { cause: err });
      }
    }
    const wanted = ref.startsWith("sha256:") ? ref : `sha256:${ref}`;
    const matches: ImageRecord[] = [];
    let id = "";
    for (const record of await this.images.list(opts)) {
      const config = await this.images.resolve(record.name, opts).then(
        (resolved) => resolved.manifest.config.digest,
        () => "",
      );
      if (config !== "" && config.startsWith(wanted)) {
        if (id !== "" && id !== config) throw new NotFoundError(`No such image: ${ref} (ambiguous)`);
        id = config;
        matches.push(record);
      }
    }
    if (matches.length === 0) throw new NotFoundError(`No such image: ${ref}`);
    return { id, records: matches };
  }

  async resolve(ref: string, opts?: CallOptions): Promise<ResolvedImage> {
    const { id, records, named } = await this.records(ref, opts);
    const record = named ?? records[0];
    if (!record) throw new NotFoundError(`No such image: ${ref}`);
    const resolved = await this.images.resolve(record.name, opts);
    const config = resolved.config.config ?? {};
    const imageConfig: ImageConfig = {};
    if (config.Env) imageConfig.Env = config.Env;
    if (config.Cmd) imageConfig.Cmd = config.Cmd;
    if (config.Entrypoint) imageConfig.Entrypoint = config.Entrypoint;
    if (config.WorkingDir) imageConfig.WorkingDir = config.WorkingDir;
    if (config.User) imageConfig.User = config.User;
    if (config.Labels) imageConfig.Labels = config.Labels;
    if (config.StopSignal) imageConfig.StopSignal = config.StopSignal;
    if (config.Healthcheck) imageConfig.Healthcheck = config.Healthcheck;
    if (config.Volumes)
      imageConfig.Volumes = Object.fromEntries(Object.keys(config.Volumes).map((path) => [path, {}]));
    if (config.ExposedPorts)
      imageConfig.ExposedPorts = Object.fromEntries(
        Object.keys(config.ExposedPorts).map((port) => [port, {}]),
      );
    return { id, ref: record.name, config: imageConfig };
  }

  async prepareRootfs(
    image: ResolvedImage,
    containerId: string,
    opts?: CallOptions,
  ): Promise<PreparedRootfs> {
    // Not given the request's signal: a prepare cut short on our side may still finish in containerd,
    // and the snapshot it made would be nobody's (a GC root). A request gone meanwhile removes it.
    const snapshot = await this.images.prepareSnapshot(image.ref, containerId);
    const signal = opts?.signal;
    if (signal?.aborted) {
      await this.images.removeSnapshot(snapshot.snapshotter, snapshot.key);
      throw abortError(signal, `prepare the rootfs of container ${containerId}`);
    }
    return { kind: "snapshot", snapshotter: snapshot.snapshotter, key: snapshot.key };
  }

  async rootfsMounts(containerId: string, opts?: CallOptions): Promise<Mount[]> {
    return this.images.snapshotMounts(this.images.snapshotter, containerId, opts);
  }

  async releaseRootfs(rootfs: PreparedRootfs, opts?: CallOptions): Promise<void> {
    if (rootfs.kind === "snapshot") await this.images.removeSnapshot(rootfs.snapshotter, rootfs.key, opts);
  }

  /** `uid:gid` for a user named in the image (its /etc/passwd and /etc/group), and the groups it is in. */
  async user(
    image: ResolvedImage,
    user: string,
    opts?: CallOptions,
  ): Promise<{ uid: number; gid: number; additionalGids?: number[] }> {
    const { uid, gid, additionalGids } = (await this.images.process(image.ref, { user }, opts)).user;
    return additionalGids.length > 0 ? { uid, gid, additionalGids } : { uid, gid };
  }

  async list(opts?: CallOptions): Promise<ImageSummary[]> {
    const byId = new Map<string, ImageSummary>();
    for (const record of await this.images.list(opts)) {
      let resolved: Awaited<ReturnType<ImageService["resolve"]>>;
      try {
        resolved = await this.images.resolve(record.name, opts);
      } catch {
        continue;
      }
      const id = resolved.manifest.config.digest;
      const size = resolved.manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
      const created = resolved.config.created ? Math.floor(Date.parse(resolved.config.created) / 1000) : 0;
      const summary = byId.get(id) ?? {
        id,
        repoTags: [],
        repoDigests: [],
        created: Number.isFinite(created) ? created : 0,
        size,
        labels: resolved.config.config?.Labels ?? {},
        targets: [],
      };
      if (!summary.targets?.includes(record.target.digest)) summary.targets?.push(record.target.digest);
      const parent = record.labels[LABEL_BUILD_PARENT];
      if (parent) summary.parent = parent;
      const familiar = familiarName(record.name);
      // A commit or an import without a name adds no tag: alone, it is listed as `<none>`, as dockerd lists it.
      if (isDangling(record.name)) {
        byId.set(id, summary);
        continue;
      }
      if (familiar.includes("@")) summary.repoDigests.push(familiar);
      else {
        summary.repoTags.push(familiar);
        summary.repoDigests.push(`${familiar.replace(/:[^:/]+$/, "")}@${record.target.digest}`);
      }
      byId.set(id, summary);
    }
    return [...byId.values()];
  }
}
