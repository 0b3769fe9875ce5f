import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import type { Container as ContainerRecord } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import type { Mount } from "../../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import { OptionsSchema } from "../../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { removeLogFiles } from "../../logs/files.js";
import { LOG_LABELS, logLabels } from "../../logs/labels.js";
import type { OciSpec } from "../../oci/spec.js";
import { fifoDirOf } from "../../platform/state-dir.js";
import { RUNC_V1_SHIM, RUNC_V2_SHIM } from "../../runtime/names.js";
import { decodeShimOptions } from "../../runtime/shim-options.js";
import { exitLabels, rememberedState, startLabels } from "../../state/labels.js";
import type { Call } from "../core/calls.js";
import { ContainerBase, type RuntimeSupport, type TaskRequest } from "../core/container.js";
import type { Stdio } from "../core/inputs.js";
import { mayHaveReachedContainerd } from "../grpc/errors.js";
import type { ContainerInfo, ExitStatus, Task } from "../types/client.js";
import { FailedPreconditionError, isErrorCode, NotFoundError, NotImplementedError } from "../types/errors.js";
import { bareAny, jsonAny, parseJsonAny, TYPE_URL } from "./any.js";
import { CGROUP_PARENT_LABEL } from "./cgroup-parents.js";
import type { RemoteContext } from "./context.js";
import { checkFifoDirParent, ProcessIO, removeFifoDir, removeStaleFifos } from "./stdio.js";
import { RemoteTask } from "./task.js";

const RUNC_OPTIONS = "containerd.runc.v1.Options";
const typeName = (typeUrl: string) => typeUrl.slice(typeUrl.lastIndexOf("/") + 1);

/** Errors after which the container may be gone after all (or is: not_found). */
const UNKNOWN_OUTCOME = ["not_found", "canceled", "deadline_exceeded", "unavailable"] as const;

export function containerInfo(record: ContainerRecord): ContainerInfo {
  const info: ContainerInfo = {
    id: record.id,
    runtime: { name: record.runtime?.name ?? "" },
    labels: { ...record.labels },
  };
  if (record.image) info.image = record.image;
  const options =
    record.runtime?.options &&
    decodeShimOptions(record.runtime.options.typeUrl, record.runtime.options.value);
  if (options) info.runtime.options = options;
  if (record.createdAt)
    info.createdAt = new Date(Number(record.createdAt.seconds) * 1000 + record.createdAt.nanos / 1e6);
  const spec = parseJsonAny<OciSpec>(record.spec);
  if (spec) info.spec = spec;
  return info;
}

export class RemoteContainer extends ContainerBase {
  private record: ContainerRecord | undefined;
  private parsedSpec: OciSpec | undefined;

  constructor(
    private readonly ctx: RemoteContext,
    id: string,
    record?: ContainerRecord,
  ) {
    super(ctx.core, id);
    this.record = record;
  }

  /** `<stateDir>/<namespace>/<id>`: this container's FIFOs. */
  get fifoDir(): string {
    return fifoDirOf(this.ctx.stateDir, this.ctx.namespace, this.id);
  }

  private async load(call: Call): Promise<ContainerRecord> {
    if (this.record) return this.record;
    const { container } = await this.ctx.rpc(
      call,
      (signal) => this.ctx.containers.get({ id: this.id }, { signal }),
      `load container ${this.id}`,
    );
    if (!container) throw new NotFoundError(`container ${this.id} not found`);
    this.record = container;
    return container;
  }

  async spec(call: Call): Promise<OciSpec | undefined> {
    this.parsedSpec ??= parseJsonAny<OciSpec>((await this.load(call)).spec);
    return this.parsedSpec;
  }

  async runtimeSupport(call: Call): Promise<RuntimeSupport> {
    const name = (await this.load(call)).runtime?.name ?? "";
    return { name, checkpoint: name === RUNC_V2_SHIM };
  }

  protected async containerInfo(call: Call): Promise<ContainerInfo> {
    // What this client is still writing (a start, an exit) is part of the answer.
    await this.ctx.labels.written(this.id);
    return containerInfo(await this.load(call));
  }

  protected override forgetCached(): void {
    this.record = undefined;
    this.parsedSpec = undefined;
  }

  /** Sets and removes labels, in order with the container's other label writes. */
  protected updateLabels(call: Call, labels: Record<string, string | undefined>): Promise<void> {
    return this.ctx.labels.write(this.id, () => this.sendLabels(call, labels));
  }

  private async sendLabels(call: Call, labels: Record<string, string | undefined>): Promise<void> {
    const keys = Object.keys(labels);
    const set: Record<string, string> = {};
    for (const key of keys) {
      const value = labels[key];
      if (value) set[key] = value; // containerd removes a label the mask names and the record lacks
    }
    const { container } = await this.ctx.rpc(call, (signal) =>
      this.ctx.containers.update(
        {
          container: { id: this.id, labels: set },
          updateMask: { paths: keys.map((key) => `labels.${key}`) },
        },
        { signal },
      ),
    );
    if (container) this.record = container;
  }

  /** containerd's Containers.Update of the spec alone: the next task's bundle is written from it. */
  protected async replaceSpec(call: Call, spec: OciSpec): Promise<void> {
    const { container } = await this.ctx.rpc(call, (signal) =>
      this.ctx.containers.update(
        { container: { id: this.id, spec: jsonAny(TYPE_URL.spec, spec) }, updateMask: { paths: ["spec"] } },
        { signal },
      ),
    );
    this.parsedSpec = undefined;
    if (container) this.record = container;
  }

  /**
   * Remembers a start on the record (io.ctrd.state.*), with the last exit if that is still waiting
   * to be written. Sent while the Start is in flight; resolves to the labels it replaced (for
   * `undoStart` when the Start fails), or undefined when it could not be written, which is logged:
   * the start itself is what counts.
   */
  noteStarted(call: Call, at: Date): Promise<Record<string, string | undefined> | undefined> {
    let replaced: Record<string, string | undefined> | undefined;
    return this.ctx.labels
      .write(this.id, async () => {
        const exit = this.ctx.labels.takeExit(this.id);
        try {
          const labels = { ...(await this.load(call)).labels, ...exit };
          const update = { ...exit, ...startLabels(rememberedState(labels), at) };
          const before: Record<string, string | undefined> = {};
          for (const key of Object.keys(update)) before[key] = labels[key];
          await this.sendLabels(call, update);
          replaced = before;
        } catch (err) {
          // The last exit is not lost with a start that could not be written.
          if (exit) this.noteExitLabels(exit, false);
          throw err;
        }
      })
      .then(
        () => replaced,
        (err: unknown) => {
          if (!call.signal?.aborted)
            this.ctx.logger.warn({ err, container: this.id }, "could not record the start");
          return undefined;
        },
      );
  }

  /** Puts back what `noteStarted` replaced: the Start failed, so nothing started. */
  async undoStart(replaced: Record<string, string | undefined>): Promise<void> {
    const call = this.ctx.cleanupCall(`undo the recorded start of container ${this.id}`);
    await this.updateLabels(call, replaced).catch((err: unknown) =>
      this.ctx.logger.warn({ err, container: this.id }, "could not undo the recorded start"),
    );
  }

  /**
   * Remembers an exit on the record, for when the task is gone: written on the next turn unless the
   * task or the container is being deleted then (see LabelWrites), after the container's earlier
   * label writes (its start's), with a deadline of its own. A failure is logged.
   */
  noteExited(status: ExitStatus): void {
    this.noteExitLabels(exitLabels(status), true);
  }

  /** `replace`: over an exit already pending (a later one), rather than only where none is. */
  private noteExitLabels(labels: Record<string, string>, replace: boolean): void {
    if (this.hasLabels(labels)) return;
    this.ctx.labels.noteExit(this.id, labels, replace, async (pending) => {
      // Recorded meanwhile (observe() writes the exit of a stopped task it waited for).
      if (this.hasLabels(pending)) return;
      await this.ctx
        .inBackground(`record the exit of container ${this.id}`, (own) => this.sendLabels(own, pending))
        .catch((err: unknown) => {
          if (isErrorCode(err, "not_found")) return;
          this.ctx.logger.warn({ err, container: this.id }, "could not record the exit");
        });
    });
  }

  /** Whether the record as this handle last saw it holds these labels (undefined: absent). */
  private hasLabels(labels: Record<string, string | undefined>): boolean {
    const recorded = this.record?.labels ?? {};
    return Object.entries(labels).every(([key, value]) => recorded[key] === value);
  }

  /**
   * The init process's FIFOs. FIFOs already there mean the id is in use, unless containerd has no
   * task for this container: then a client that died (ctrd serve SIGKILLed, say) left them behind,
   * and they are removed so that the container can run again.
   */
  private async initProcessIO(call: Call, stdio: Stdio): Promise<ProcessIO> {
    try {
      return await ProcessIO.create(this.fifoDir, this.id, stdio);
    } catch (err) {
      if (!isErrorCode(err, "already_exists") || (await this.hasTask(call))) throw err;
      this.ctx.logger.debug({ container: this.id }, "removing stdio FIFOs of a task that no longer exists");
      await removeStaleFifos(this.fifoDir, this.id);
      return await ProcessIO.create(this.fifoDir, this.id, stdio);
    }
  }

  private async hasTask(call: Call): Promise<boolean> {
    try {
      await this.ctx.rpc(call, (signal) => this.ctx.tasks.get({ containerId: this.id }, { signal }));
      return true;
    } catch (err) {
      if (isErrorCode(err, "not_found")) return false;
      throw err;
    }
  }

  protected async createTask(call: Call, { stdio, checkpointDir }: TaskRequest): Promise<Task> {
    const record = await this.load(call);
    if (stdio.log && record.runtime?.name === RUNC_V1_SHIM) {
      // containerd 1.6's v1 shim starts a binary:// logger without the namespace it needs
      // ("namespace is required"), after FIFOs and labels would exist: refuse before any of it.
      throw new NotImplementedError(
        `the ${RUNC_V1_SHIM} runtime cannot run a log driver (its shim loses the namespace a binary:// logger needs); use the runc v2 shim (runc, ${RUNC_V2_SHIM})`,
      );
    }
    const options = checkpointDir ? restoreOptions(record, checkpointDir) : undefined;
    const rootfs = await this.snapshotMounts(call, record);
    const io = await this.initProcessIO(call, stdio);
    // Where the log is, for readers, inspect and delete; before the task, so it is never unrecorded.
    // A container started again with the log it had (`ctrd start`) has it on the record already.
    const log = stdio.log && logLabels(stdio.log);
    if (log && !this.hasLabels(log)) await this.updateLabels(call, log);
    try {
      const { pid } = await this.ctx.rpc(call, (signal) =>
        this.ctx.tasks.create(
          {
            containerId: this.id,
            stdin: io.paths.stdin,
            stdout: io.paths.stdout,
            stderr: io.paths.stderr,
            terminal: stdio.terminal,
            rootfs,
            ...(options ? { options } : {}),
          },
          { signal },
        ),
      );
      this.ctx.events.track(this.id, this.id, pid);
      return new RemoteTask(this.ctx, this, pid, io);
    } catch (err) {
      await io.destroy();
      if (isErrorCode(err, "unavailable") && mayHaveReachedContainerd(err))
        await this.removeHalfCreatedTask();
      throw err;
    }
  }

  /** The rootfs mounts of the container's snapshot, if it has one (none: spec.root.path is the rootfs). */
  private async snapshotMounts(call: Call, record: ContainerRecord): Promise<Mount[]> {
    if (!record.snapshotKey) return [];
    const { mounts } = await this.ctx.rpc(
      call,
      async (signal) =>
        (await this.ctx.snapshots()).mounts(
          { snapshotter: record.snapshotter, key: record.snapshotKey },
          { signal },
        ),
      `mounts of the snapshot of container ${this.id}`,
    );
    return mounts;
  }

  /**
   * containerd died while creating the task: its shim may be running and holding a bundle (or the
   * task may even exist) with nobody to ever delete them. The caller gets an error, so nothing may
   * stay: once containerd is back, Tasks.Delete removes whatever got that far (NotFound: nothing did).
   */
  private async removeHalfCreatedTask(): Promise<void> {
    const call = this.ctx.cleanupCall(`clean up the half-created task of container ${this.id}`);
    await this.ctx
      .rpc(call, (signal) => this.ctx.tasks.delete({ containerId: this.id }, { signal }))
      .catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) this.ctx.logger.warn({ err }, "half-created task left behind");
      });
  }

  protected async openTask(call: Call, stdio: Stdio | undefined): Promise<Task> {
    const process = await this.getProcess(call);
    if (!stdio) return new RemoteTask(this.ctx, this, process.pid, ProcessIO.none());
    const io = ProcessIO.reopen(
      { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, terminal: process.terminal },
      stdio,
    );
    this.ctx.events.track(this.id, this.id, process.pid);
    if (process.status === Status.STOPPED) io.finishAfterExit();
    return new RemoteTask(this.ctx, this, process.pid, io);
  }

  private async getProcess(call: Call) {
    const { process } = await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.get({ containerId: this.id }, { signal }),
    );
    if (!process) throw new NotFoundError(`container ${this.id} has no task`);
    return process;
  }

  protected async deleteContainer(call: Call): Promise<void> {
    // An exit still waiting to be written never is: the record it would go on is going.
    const release = this.ctx.labels.hold(this.id);
    try {
      await this.deleteRecord(call);
      this.ctx.labels.dropExit(this.id);
    } finally {
      release();
    }
  }

  private async deleteRecord(call: Call): Promise<void> {
    // No need to ask when this client deleted the task just now, in this turn of the event loop.
    const hasTask =
      !this.ctx.deletedTasks.has(this.id) &&
      (await this.getProcess(call).then(
        () => true,
        (err: unknown) => {
          if (isErrorCode(err, "not_found")) return false;
          throw err;
        },
      ));
    if (hasTask) throw new FailedPreconditionError("it has a task; delete the task first");
    // A label write still queued would fail once the container is gone; it is done first.
    await this.ctx.labels.queued(this.id);
    const record = await this.load(call);
    const logPath = record.labels[LOG_LABELS.path];
    await checkFifoDirParent(this.fifoDir);
    const createdParent = record.labels[CGROUP_PARENT_LABEL];
    const cgroupsPath = createdParent ? (await this.spec(call))?.linux?.cgroupsPath : undefined;
    const deleted = this.ctx.rpc(call, (signal) => this.ctx.containers.delete({ id: this.id }, { signal }));
    // Without a task the container has no cgroup of its own: a parent made for it (and no other
    // container of this client) is counted out while containerd deletes the record, and goes a
    // moment later (CreatedCgroupParents); if the delete fails, the container counts again.
    if (createdParent) this.ctx.cgroupParents.release(cgroupsPath, createdParent);
    try {
      await deleted;
    } catch (err) {
      // Only when containerd refused: a delete cut short (or a containerd gone) may have deleted it
      // all the same, and a count that no container gives back would keep the parent for good.
      if (createdParent && !UNKNOWN_OUTCOME.some((code) => isErrorCode(err, code)))
        this.ctx.cgroupParents.claim(cgroupsPath);
      throw err;
    }
    if (record.snapshotKey) await removeSnapshot(this.ctx, record.snapshotter, record.snapshotKey);
    await removeFifoDir(this.fifoDir, this.ctx.logger);
    // The container is gone in containerd: a log that cannot be removed is a warning, not a failure.
    if (logPath) {
      await removeLogFiles(logPath).catch((err: unknown) =>
        this.ctx.logger.warn({ err, logPath }, "could not remove a deleted container's log"),
      );
    }
  }
}

/** Removes a container's snapshot (as WithSnapshotCleanup); one already gone is fine, a failure is logged. */
export async function removeSnapshot(ctx: RemoteContext, snapshotter: string, key: string): Promise<void> {
  await ctx
    .rpc(ctx.cleanupCall(`remove snapshot ${key}`), async (signal) =>
      (await ctx.snapshots()).remove({ snapshotter, key }, { signal }),
    )
    .catch((err: unknown) => {
      if (!isErrorCode(err, "not_found"))
        ctx.logger.warn({ err, key }, "could not remove a container snapshot");
    });
}

/**
 * Task options replace the runtime options wholesale in the shim, so restoring means the
 * container's runc options plus the CRIU image path.
 */
function restoreOptions(record: ContainerRecord, dir: string): Any {
  const current = record.runtime?.options;
  const options =
    current && typeName(current.typeUrl) === RUNC_OPTIONS
      ? fromBinary(OptionsSchema, current.value)
      : create(OptionsSchema);
  options.criuImagePath = dir;
  return bareAny(RUNC_OPTIONS, toBinary(OptionsSchema, options));
}
