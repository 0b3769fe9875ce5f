import { rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import type { Container as ContainerRecord } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import { OptionsSchema } from "../../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import type { OciSpec } from "../../oci/spec.js";
import type {
  CallOptions,
  Container,
  ContainerInfo,
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
  if (record.runtime?.options?.typeUrl) info.runtime.optionsTypeUrl = record.runtime.options.typeUrl;
  if (record.createdAt)
    info.createdAt = new Date(Number(record.createdAt.seconds) * 1000 + record.createdAt.nanos / 1e6);
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
    const io = await ProcessIO.create(this.fifoDir, this.id, stdio);
    try {
      const { pid } = await this.ctx.call(`create task for container ${this.id}`, opts, (s) =>
        this.ctx.tasks.create(
          {
            containerId: this.id,
            stdin: io.paths.stdin,
            stdout: io.paths.stdout,
            stderr: io.paths.stderr,
            terminal: stdio.terminal ?? false,
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
    const record = await this.load(opts).catch(() => undefined);
    await this.ctx.call(`delete container ${this.id}`, opts, (s) =>
      this.ctx.containers.delete({ id: this.id }, { signal: s }),
    );
    await rm(this.fifoDir, { recursive: true, force: true });
    const createdParent = record?.labels[CGROUP_PARENT_LABEL];
    if (createdParent)
      removeCgroupParents(parseJsonAny<OciSpec>(record.spec)?.linux?.cgroupsPath, createdParent);
  }
}
