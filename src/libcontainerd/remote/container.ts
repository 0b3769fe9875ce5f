import { rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import type { Container as ContainerRecord } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import type { Mount } from "../../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import { OptionsSchema } from "../../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { removeLogFiles } from "../../logs/files.js";
import { LOG_LABELS, logLabels } from "../../logs/labels.js";
import type { OciSpec } from "../../oci/spec.js";
import { inspectContainer } from "../../state/inspect.js";
import { rememberedState, startLabels } from "../../state/labels.js";
import { rememberExit } from "../../state/observe.js";
import type {
  CallOptions,
  Container,
  ContainerInfo,
  ExitStatus,
  NewTaskOptions,
  StdioOptions,
  Task,
} from "../types/client.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isErrorCode,
  NotFoundError,
  NotImplementedError,
} from "../types/errors.js";
import type { ContainerInspect } from "../types/inspect.js";
import { bareAny, parseJsonAny } from "./any.js";
import { CGROUP_PARENT_LABEL, removeCgroupParents } from "./cgroup-parents.js";
import type { RemoteContext } from "./context.js";
import { mayHaveReachedContainerd } from "./errors.js";
import { ProcessIO } from "./stdio.js";
import { RemoteTask, type ShimKind, type TaskOwner } from "./task.js";

const RUNC_V2_SHIM = "io.containerd.runc.v2";
const RUNC_OPTIONS = "containerd.runc.v1.Options";
const typeName = (typeUrl: string) => typeUrl.slice(typeUrl.lastIndexOf("/") + 1);

export function containerInfo(record: ContainerRecord): ContainerInfo {
  const info: ContainerInfo = {
    id: record.id,
    runtime: { name: record.runtime?.name ?? "" },
    labels: { ...record.labels },
  };
  if (record.image) info.image = record.image;
  if (record.runtime?.options?.typeUrl) info.runtime.optionsTypeUrl = record.runtime.options.typeUrl;
  if (record.createdAt)
    info.createdAt = new Date(Number(record.createdAt.seconds) * 1000 + record.createdAt.nanos / 1e6);
  const spec = parseJsonAny<OciSpec>(record.spec);
  if (spec) info.spec = spec;
  return info;
}

export class RemoteContainer implements Container, TaskOwner {
  private record: ContainerRecord | undefined;

  constructor(
    private readonly ctx: RemoteContext,
    readonly id: string,
    record?: ContainerRecord,
  ) {
    this.record = record;
  }

  /** `<stateDir>/<namespace>/<id>`: this container's FIFOs. */
  get fifoDir(): string {
    return join(this.ctx.stateDir, this.ctx.namespace, this.id);
  }

  private async load(opts?: CallOptions): Promise<ContainerRecord> {
    if (this.record) return this.record;
    const { container } = await this.ctx.call(`load container ${this.id}`, opts, (s) =>
      this.ctx.containers.get({ id: this.id }, { signal: s }),
    );
    if (!container) throw new NotFoundError(`container ${this.id} not found`);
    this.record = container;
    return container;
  }

  async info(opts?: CallOptions): Promise<ContainerInfo> {
    return containerInfo(await this.load(opts));
  }

  async setLabels(labels: Record<string, string | undefined>, opts?: CallOptions): Promise<void> {
    const keys = Object.keys(labels);
    if (keys.includes("")) throw new InvalidArgumentError(`set labels of container ${this.id}: empty key`);
    if (keys.length === 0) return;
    const set: Record<string, string> = {};
    for (const key of keys) {
      const value = labels[key];
      if (value) set[key] = value; // containerd removes a label the mask names and the record lacks
    }
    const { container } = await this.ctx.call(`set labels of container ${this.id}`, opts, (s) =>
      this.ctx.containers.update(
        {
          container: { id: this.id, labels: set },
          updateMask: { paths: keys.map((key) => `labels.${key}`) },
        },
        { signal: s },
      ),
    );
    if (container) this.record = container;
  }

  async inspect(opts?: CallOptions): Promise<ContainerInspect> {
    this.record = undefined; // what containerd holds now, not what this handle saw
    return inspectContainer(this, opts);
  }

  /** Remembers a start: a failure to write it is logged, as the start itself happened. */
  async noteStarted(opts?: CallOptions): Promise<void> {
    try {
      const before = rememberedState((await this.load(opts)).labels);
      await this.setLabels(startLabels(before, new Date()), opts);
    } catch (err) {
      this.ctx.logger.warn({ err, container: this.id }, "could not record the start");
    }
  }

  async noteExited(status: ExitStatus, opts?: CallOptions): Promise<void> {
    try {
      await rememberExit(this, status, opts);
    } catch (err) {
      this.ctx.logger.warn({ err, container: this.id }, "could not record the exit");
    }
  }

  async shimKind(): Promise<ShimKind> {
    const record = await this.load();
    return record.runtime?.name === RUNC_V2_SHIM ? "runc-v2" : "other";
  }

  async spec(): Promise<OciSpec | undefined> {
    return parseJsonAny<OciSpec>((await this.load()).spec);
  }

  async newTask(opts?: NewTaskOptions): Promise<Task> {
    const record = await this.load(opts);
    const spec = parseJsonAny<OciSpec>(record.spec);
    const stdio: StdioOptions = {
      ...opts?.stdio,
      terminal: opts?.stdio?.terminal ?? spec?.process?.terminal ?? false,
    };
    const options = opts?.checkpointDir ? this.restoreOptions(record, opts.checkpointDir) : undefined;
    const rootfs = await this.snapshotMounts(record, opts);
    const io = await ProcessIO.create(this.fifoDir, this.id, stdio);
    // Where the log is, for readers, inspect and delete; before the task, so it is never unrecorded.
    if (stdio.log) await this.setLabels(logLabels(stdio.log), opts);
    try {
      const { pid } = await this.ctx.call(`create task for container ${this.id}`, opts, (s) =>
        this.ctx.tasks.create(
          {
            containerId: this.id,
            stdin: io.paths.stdin,
            stdout: io.paths.stdout,
            stderr: io.paths.stderr,
            terminal: stdio.terminal ?? false,
            rootfs,
            ...(options ? { options } : {}),
          },
          { signal: s },
        ),
      );
      this.ctx.events.track(this.id, this.id, pid);
      return new RemoteTask(this.ctx, this.id, pid, io, this);
    } catch (err) {
      await io.destroy();
      if (isErrorCode(err, "unavailable") && mayHaveReachedContainerd(err))
        await this.removeHalfCreatedTask(opts?.signal);
      throw err;
    }
  }

  /** The rootfs mounts of the container's snapshot, if it has one (none: spec.root.path is the rootfs). */
  private async snapshotMounts(record: ContainerRecord, opts?: CallOptions): Promise<Mount[]> {
    const snapshots = this.ctx.snapshots;
    if (!record.snapshotKey || !snapshots) return [];
    const { mounts } = await this.ctx.call(`mounts of the snapshot of container ${this.id}`, opts, (s) =>
      snapshots.mounts({ snapshotter: record.snapshotter, key: record.snapshotKey }, { signal: s }),
    );
    return mounts;
  }

  /**
   * containerd died while creating the task: its shim may be running and holding a bundle (or the
   * task may even exist) with nobody to ever delete them. The caller gets an error, so nothing may
   * stay: once containerd is back, Tasks.Delete removes whatever got that far (NotFound: nothing did).
   */
  private async removeHalfCreatedTask(signal: AbortSignal | undefined): Promise<void> {
    await this.ctx
      .call(
        `clean up the half-created task of container ${this.id}`,
        { waitForReady: true, timeoutMs: this.ctx.defaultTimeoutMs, ...(signal ? { signal } : {}) },
        (s) => this.ctx.tasks.delete({ containerId: this.id }, { signal: s }),
      )
      .catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) this.ctx.logger.warn({ err }, "half-created task left behind");
      });
  }

  /**
   * Task options replace the runtime options wholesale in the shim, so restoring means the
   * container's runc options plus the CRIU image path.
   */
  private restoreOptions(record: ContainerRecord, dir: string): Any {
    if (!isAbsolute(dir))
      throw new InvalidArgumentError(`restore container ${this.id}: ${dir} is not absolute`);
    if (record.runtime?.name !== RUNC_V2_SHIM) {
      throw new NotImplementedError(`restore container ${this.id}: only the runc v2 shim supports it here`);
    }
    const current = record.runtime.options;
    const options =
      current && typeName(current.typeUrl) === RUNC_OPTIONS
        ? fromBinary(OptionsSchema, current.value)
        : create(OptionsSchema);
    options.criuImagePath = dir;
    return bareAny(RUNC_OPTIONS, toBinary(OptionsSchema, options));
  }

  async task(opts?: CallOptions): Promise<Task> {
    const process = await this.getProcess(opts);
    return new RemoteTask(this.ctx, this.id, process.pid, ProcessIO.none(), this);
  }

  async attachTask(stdio: StdioOptions, opts?: CallOptions): Promise<Task> {
    const process = await this.getProcess(opts);
    const io = ProcessIO.reopen(
      { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, terminal: process.terminal },
      stdio,
    );
    this.ctx.events.track(this.id, this.id, process.pid);
    if (process.status === Status.STOPPED) io.finishAfterExit();
    return new RemoteTask(this.ctx, this.id, process.pid, io, this);
  }

  private async getProcess(opts?: CallOptions) {
    try {
      const { process } = await this.ctx.call(`get task of container ${this.id}`, opts, (s) =>
        this.ctx.tasks.get({ containerId: this.id }, { signal: s }),
      );
      if (!process) throw new NotFoundError(`container ${this.id} has no task`);
      return process;
    } catch (err) {
      if (isErrorCode(err, "not_found"))
        throw new NotFoundError(`container ${this.id} has no task`, { cause: err });
      throw err;
    }
  }

  async delete(opts?: CallOptions): Promise<void> {
    const hasTask = await this.getProcess(opts).then(
      () => true,
      (err: unknown) => {
        if (isErrorCode(err, "not_found")) return false;
        throw err;
      },
    );
    if (hasTask)
      throw new FailedPreconditionError(`delete container ${this.id}: it has a task; delete the task first`);
    const record = await this.load(opts);
    const logPath = record.labels[LOG_LABELS.path];
    await this.ctx.call(`delete container ${this.id}`, opts, (s) =>
      this.ctx.containers.delete({ id: this.id }, { signal: s }),
    );
    if (record.snapshotKey) await removeSnapshot(this.ctx, record.snapshotter, record.snapshotKey);
    await rm(this.fifoDir, { recursive: true, force: true });
    if (logPath) await removeLogFiles(logPath);
    const createdParent = record.labels[CGROUP_PARENT_LABEL];
    if (createdParent)
      removeCgroupParents(parseJsonAny<OciSpec>(record.spec)?.linux?.cgroupsPath, createdParent);
  }
}

/** Removes a container's snapshot (as WithSnapshotCleanup); one already gone is fine, a failure is logged. */
export async function removeSnapshot(ctx: RemoteContext, snapshotter: string, key: string): Promise<void> {
  const snapshots = ctx.snapshots;
  if (!snapshots) return;
  await ctx
    .call(`remove snapshot ${key}`, { timeoutMs: ctx.defaultTimeoutMs }, (s) =>
      snapshots.remove({ snapshotter, key }, { signal: s }),
    )
    .catch((err: unknown) => {
      if (!isErrorCode(err, "not_found"))
        ctx.logger.warn({ err, key }, "could not remove a container snapshot");
    });
}
