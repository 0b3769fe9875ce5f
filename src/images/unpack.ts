import { randomBytes } from "node:crypto";
import { abortError } from "../libcontainerd/call.js";
import { DataLossError, isErrorCode } from "../libcontainerd/types/errors.js";
import type { ContainerdServices, Lease } from "./containerd.js";
import { chainIds, type Descriptor, LABEL_UNCOMPRESSED } from "./media-types.js";

const LABEL_SNAPSHOT_REF = "containerd.io/snapshot.ref";

/** One unpack per chain ID at a time in this process, as containerd's unpacker locks it. */
export class KeyedLock {
  private readonly held = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    for (let current = this.held.get(key); current; current = this.held.get(key))
      await current.catch(() => {});
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.held.set(key, mine);
    try {
      return await work();
    } finally {
      this.held.delete(key);
      release();
    }
  }
}

export interface UnpackContext {
  services: ContainerdServices;
  snapshotter: string;
  lease: Lease;
  signal: AbortSignal | undefined;
  locks: KeyedLock;
}

async function snapshotExists(ctx: UnpackContext, key: string): Promise<boolean> {
  try {
    await ctx.services.call(`stat snapshot ${key}`, ctx.signal ? { signal: ctx.signal } : undefined, (s) =>
      ctx.services.snapshots.stat({ snapshotter: ctx.snapshotter, key }, { signal: s }),
    );
    return true;
  } catch (err) {
    if (isErrorCode(err, "not_found")) return false;
    throw err;
  }
}

/** Whether the snapshot for a chain already exists (the layers need no fetch for unpacking). */
export function isUnpacked(ctx: UnpackContext, chainId: string): Promise<boolean> {
  return snapshotExists(ctx, chainId);
}

/** What an unpack waits for, and tells, beside the layer itself. */
export interface UnpackSteps {
  /** Resolves when the layer's blob is in the content store. */
  ready: Promise<unknown>;
  /** Resolves when the parent chain is committed (the layer before, unpacked). */
  parent?: Promise<unknown>;
  /** Told when the extraction starts. */
  onApply?: () => void;
  /**
   * Where the layer's `containerd.io/uncompressed` label update goes, for the caller to wait for
   * (the next layer need not); without it the unpack waits for the update itself.
   */
  labels?: Promise<unknown>[];
}

/**
 * Applies layer `index` on top of its parent chain, as containerd's unpacker does: Prepare an
 * `extract-…` snapshot on the parent, Diff.Apply the layer blob into its mounts, check the diff ID,
 * Commit it under its chain ID. A chain committed already (by an earlier or a concurrent pull) is
 * reused. Whether the chain exists is asked at once; the Prepare waits for the parent's commit.
 */
export async function unpackLayer(
  ctx: UnpackContext,
  layers: readonly Descriptor[],
  diffIds: readonly string[],
  index: number,
  steps: UnpackSteps,
): Promise<"unpacked" | "exists"> {
  const chain = chainIds(diffIds.slice(0, index + 1));
  const chainId = chain[index] as string;
  const parent = index > 0 ? (chain[index - 1] as string) : "";
  const layer = layers[index] as Descriptor;
  const diffId = diffIds[index] as string;
  const opts = ctx.signal ? { signal: ctx.signal } : undefined;
  const headers = ctx.lease.headers;
  return ctx.locks.run(`${ctx.snapshotter}/${chainId}`, async () => {
    let exists = await snapshotExists(ctx, chainId);
    if (exists) {
      // Another image's snapshot, which only that image's references keep: an rmi of it running GC now
      // would remove it before this image's config names it. Leased first, then looked at again.
      await ctx.services.call(`lease snapshot ${chainId}`, opts, (s) =>
        ctx.services.leases.addResource(
          { id: ctx.lease.id, resource: { id: chainId, type: `snapshots/${ctx.snapshotter}` } },
          { signal: s },
        ),
      );
      exists = await snapshotExists(ctx, chainId);
    }
    await steps.parent;
    if (exists) {
      await steps.ready;
      return "exists";
    }
    const key = `extract-${process.hrtime.bigint() % 1_000_000_000n}-${randomBytes(3).toString("base64url")} ${chainId}`;
    const { mounts } = await ctx.services.call(`prepare snapshot for layer ${layer.digest}`, opts, (s) =>
      ctx.services.snapshots.prepare(
        { snapshotter: ctx.snapshotter, key, parent, labels: { [LABEL_SNAPSHOT_REF]: chainId } },
        { signal: s, headers },
      ),
    );
    let committed = false;
    try {
      await steps.ready;
      if (ctx.signal?.aborted) throw abortError(ctx.signal, `unpack layer ${layer.digest}`);
      steps.onApply?.();
      const { applied } = await ctx.services.call(`apply layer ${layer.digest}`, opts, (s) =>
        ctx.services.diff.apply(
          {
            diff: { mediaType: layer.mediaType, digest: layer.digest, size: BigInt(layer.size) },
            mounts,
          },
          { signal: s, headers },
        ),
      );
      if (applied?.digest !== diffId) {
        throw new DataLossError(
          `layer ${layer.digest} unpacks to ${applied?.digest ?? "nothing"}, but the image config says ${diffId}`,
        );
      }
      try {
        await ctx.services.call(`commit snapshot ${chainId}`, opts, (s) =>
          ctx.services.snapshots.commit(
            { snapshotter: ctx.snapshotter, name: chainId, key, labels: { [LABEL_SNAPSHOT_REF]: chainId } },
            { signal: s, headers },
          ),
        );
        committed = true;
      } catch (err) {
        if (!isErrorCode(err, "already_exists")) throw err;
        return "exists";
      }
      const labelled = ctx.services.updateContentLabels(
        layer.digest,
        { [LABEL_UNCOMPRESSED]: diffId },
        ctx.lease,
        opts,
      );
      if (steps.labels) {
        labelled.catch(() => {});
        steps.labels.push(labelled);
      } else await labelled;
      return "unpacked";
    } finally {
      if (!committed) {
        await ctx.services
          .call(`remove snapshot ${key}`, undefined, (s) =>
            ctx.services.snapshots.remove({ snapshotter: ctx.snapshotter, key }, { signal: s, headers }),
          )
          .catch(() => {});
      }
    }
  });
}
