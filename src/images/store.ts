import { AsyncLocalStorage } from "node:async_hooks";
import type { Image as ImageMessage } from "../gen/github.com/containerd/containerd/api/services/images/v1/images_pb.js";
import { abortError } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { InternalError, isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices } from "./containerd.js";
import type { Descriptor } from "./media-types.js";
import { normalizeReference } from "./reference.js";

/**
 * The name of an image that has none (a commit or an import without a repository): moby's, so
 * that a dockerd on the same containerd namespace sees it as dangling too (`<none>:<none>`).
 */
const DANGLING_PREFIX = "moby-dangling@";

export function danglingName(manifestDigest: string): string {
  return `${DANGLING_PREFIX}${manifestDigest}`;
}

export function isDangling(name: string): boolean {
  return name.startsWith(DANGLING_PREFIX);
}

/** Image record label: the target digest of the image a build step ran on. */
export const LABEL_BUILD_PARENT = "org.mobyproject.image.parent";
/** Image record label: "1" for a build step's image made on `FROM scratch`. */
export const LABEL_BUILD_FROM_SCRATCH = "org.mobyproject.image.fromscratch";
/** Image record label: the digest of the step's container config blob. */
export const LABEL_BUILD_CONTAINER_CONFIG = "org.mobyproject.image.containerconfig";

/** An image record in containerd's images service: a name and the descriptor it points at. */
export interface ImageRecord {
  /** The full normalised name: `docker.io/library/busybox:latest`. */
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt?: Date;
  updatedAt?: Date;
}

function toDate(ts: { seconds: bigint; nanos: number } | undefined): Date | undefined {
  return ts ? new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6)) : undefined;
}

export function recordOf(image: ImageMessage): ImageRecord {
  const target = image.target;
  if (!target) throw new InternalError(`image ${image.name} has no target`);
  const record: ImageRecord = {
    name: image.name,
    target: {
      mediaType: target.mediaType,
      digest: target.digest,
      size: Number(target.size),
      ...(Object.keys(target.annotations).length > 0 ? { annotations: { ...target.annotations } } : {}),
    },
    labels: { ...image.labels },
  };
  const created = toDate(image.createdAt);
  const updated = toDate(image.updatedAt);
  if (created) record.createdAt = created;
  if (updated) record.updatedAt = updated;
  return record;
}

function targetMessage(target: Descriptor) {
  return {
    mediaType: target.mediaType,
    digest: target.digest,
    size: BigInt(target.size),
    annotations: { ...target.annotations },
  };
}

/**
 * One name change at a time: containerd's images service has no compare-and-set, so a change that reads
 * names before it writes one (a tag keeping the image it replaces, an rmi deciding it removes the last
 * name) must not interleave with another. Held by the async context it runs: the store's own changes
 * made inside it do not wait for it.
 */
class NamesLock {
  private tail: Promise<void> = Promise.resolve();
  private readonly holder = new AsyncLocalStorage<NamesLock>();

  async run<T>(work: () => Promise<T>, opts?: CallOptions): Promise<T> {
    if (this.holder.getStore() === this) return work();
    const previous = this.tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.tail = previous.then(() => mine);
    try {
      await untilDone(previous, opts?.signal);
      return await this.holder.run(this, work);
    } finally {
      release();
    }
  }
}

/** Waits for `done`, or rejects with the typed abort error when the signal goes first. */
function untilDone(done: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return done;
  if (signal.aborted) return Promise.reject(abortError(signal, "wait for the image names"));
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(abortError(signal, "wait for the image names"));
    signal.addEventListener("abort", abort, { once: true });
    void done.then(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    });
  });
}

/** The images service: records by name, created or moved, listed, removed. */
export class ImageStore {
  private readonly names = new NamesLock();

  constructor(private readonly services: ContainerdServices) {}

  /**
   * Runs `work` with the image names to itself (in this process): the names it reads stay as they are
   * until it is done, but for its own changes. putKeepingReplaced runs under it.
   */
  namesLocked<T>(work: () => Promise<T>, opts?: CallOptions): Promise<T> {
    return this.names.run(work, opts);
  }

  async get(ref: string, opts?: CallOptions): Promise<ImageRecord> {
    const name =
      ref.includes("/") || ref.includes(":") || ref.includes("@")
        ? tryNormalize(ref)
        : normalizeReference(ref);
    try {
      const { image } = await this.services.call(`get image ${name}`, opts, (s) =>
        this.services.images.get({ name }, { signal: s }),
      );
      if (!image) throw new NotFoundError(`no such image: ${ref}`);
      return recordOf(image);
    } catch (err) {
      if (isErrorCode(err, "not_found")) throw new NotFoundError(`no such image: ${ref}`, { cause: err });
      throw err;
    }
  }

  async list(opts?: CallOptions & { filters?: string[] }): Promise<ImageRecord[]> {
    const { images } = await this.services.call("list images", opts, (s) =>
      this.services.images.list({ filters: opts?.filters ?? [] }, { signal: s }),
    );
    return images.map(recordOf);
  }

  /** Creates the record, or points an existing one at the new target with the new labels (as containerd's createNewImage). */
  async put(
    image: { name: string; target: Descriptor; labels?: Record<string, string> },
    opts?: CallOptions,
  ): Promise<ImageRecord> {
    const message = { name: image.name, labels: { ...image.labels }, target: targetMessage(image.target) };
    try {
      const created = await this.services.call(`create image ${image.name}`, opts, (s) =>
        this.services.images.create({ image: message }, { signal: s }),
      );
      if (created.image) return recordOf(created.image);
    } catch (err) {
      if (!isErrorCode(err, "already_exists")) throw err;
    }
    // The labels replaced whole, as containerd's client updates a name it moves (createNewImage): a
    // label of the image the name left (a build step's parent and container config) kept on the
    // name would make it that step's cache image while it names another.
    const paths = ["target", "labels"];
    const updated = await this.services.call(`update image ${image.name}`, opts, (s) =>
      this.services.images.update({ image: message, updateMask: { paths } }, { signal: s }),
    );
    if (!updated.image) throw new InternalError(`update image ${image.name}: containerd returned no image`);
    return recordOf(updated.image);
  }

  /**
   * put, where the image the name pointed at stays, dangling, when no other name has it (moby's
   * TagImage with ensureDanglingImage; the classic store kept it by id): `docker commit c app` twice
   * leaves the first image as <none>:<none>, where moving the name alone left it to containerd's GC,
   * gone from under the containers made from it. The dangling record is made first: the old image is
   * never without a root for the GC to find.
   */
  async putKeepingReplaced(
    image: { name: string; target: Descriptor; labels?: Record<string, string> },
    opts?: CallOptions,
  ): Promise<ImageRecord> {
    return this.namesLocked(() => this.replace(image, opts), opts);
  }

  private async replace(
    image: { name: string; target: Descriptor; labels?: Record<string, string> },
    opts?: CallOptions,
  ): Promise<ImageRecord> {
    const before = await this.get(image.name, opts).catch((err: unknown) => {
      if (isErrorCode(err, "not_found")) return undefined;
      throw err;
    });
    if (before && before.target.digest !== image.target.digest) {
      const named = await this.list({ ...opts, filters: [`target.digest==${before.target.digest}`] });
      if (named.every((record) => record.name === before.name))
        await this.put(
          { name: danglingName(before.target.digest), target: before.target, labels: before.labels },
          opts,
        );
    }
    return this.put(image, opts);
  }

  /** Removes the record; `sync` waits for containerd's GC to reclaim what nothing else uses. */
  async delete(name: string, opts?: CallOptions & { sync?: boolean }): Promise<void> {
    try {
      await this.services.call(`remove image ${name}`, opts, (s) =>
        this.services.images.delete({ name, sync: opts?.sync ?? false }, { signal: s }),
      );
    } catch (err) {
      if (isErrorCode(err, "not_found")) throw new NotFoundError(`no such image: ${name}`, { cause: err });
      throw err;
    }
  }
}

/** A name as given if it does not parse as a reference (e.g. `ctr`'s own names), else normalised. */
function tryNormalize(ref: string): string {
  if (isDangling(ref)) return ref;
  try {
    return normalizeReference(ref);
  } catch {
    return ref;
  }
}
