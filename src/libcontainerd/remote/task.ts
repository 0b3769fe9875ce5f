import { existsSync, readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import {
  CheckpointOptionsSchema,
  ProcessDetailsSchema,
} from "../../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { resourcesForUpdate } from "../../oci/resources.js";
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import type {
  CallOptions,
  CheckpointOptions,
  ExecOptions,
  ExitStatus,
  Process,
  ProcessInfo,
  Task,
  TaskStatus,
} from "../types/client.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isErrorCode,
  NotFoundError,
  NotImplementedError,
} from "../types/errors.js";
import type { ResourceUpdate } from "../types/resources.js";
import type { Stats } from "../types/stats.js";
import { bareAny, jsonAny, TYPE_URL } from "./any.js";
import type { RemoteContext } from "./context.js";
import { mayHaveReachedContainerd } from "./errors.js";
import { validateIdentifier } from "./identifiers.js";
import { decodeMetrics, decodeRawMetrics } from "./metrics.js";
import { RemoteProcess, toDate } from "./process.js";
import { ProcessIO } from "./stdio.js";

const STATUS: Record<Status, TaskStatus> = {
  [Status.UNKNOWN]: "unknown",
  [Status.CREATED]: "created",
  [Status.RUNNING]: "running",
  [Status.STOPPED]: "stopped",
  [Status.PAUSED]: "paused",
  [Status.PAUSING]: "pausing",
};

export function taskStatus(status: Status): TaskStatus {
  return STATUS[status] ?? "unknown";
}

/** The shim a container runs on decides which checkpoint options it understands. */
export type ShimKind = "runc-v2" | "other";

/** What a task needs from its container. */
export interface TaskOwner {
  readonly fifoDir: string;
  shimKind(): Promise<ShimKind>;
  spec(): Promise<OciSpec | undefined>;
  /** Remember a start / an exit on the container record (io.ctrd.state.*). Never throw. */
  noteStarted(opts?: CallOptions): Promise<void>;
  noteExited(status: ExitStatus, opts?: CallOptions): Promise<void>;
}

export class RemoteTask extends RemoteProcess implements Task {
  constructor(
    ctx: RemoteContext,
    containerId: string,
    pid: number,
    io: ProcessIO,
    private readonly owner: TaskOwner,
  ) {
    super(ctx, containerId, containerId, pid, io);
  }

  /** Known once the task has exited: the oom_kill counter cannot move after that. */
  private oomKilled_: boolean | undefined;

  /** The exit, remembered on the container (io.ctrd.state.*) for when the task is gone. */
  override async wait(opts?: CallOptions): Promise<ExitStatus> {
    const status = await super.wait(opts);
    const exit = this.withOom(status, await this.oomKilled(opts, true));
    await this.owner.noteExited(exit, opts);
    return exit;
  }

  /** Reads the OOM counter before the delete removes the cgroup that holds it. */
  override async delete(opts?: CallOptions): Promise<ExitStatus> {
    const oomKilled = await this.oomKilled(opts, false);
    const status = await super.delete(opts);
    const exit = this.withOom(status, oomKilled || this.ctx.events.oomSeen(this.containerId));
    await this.owner.noteExited(exit, opts);
    return exit;
  }

  private withOom(status: ExitStatus, oomKilled: boolean | undefined): ExitStatus {
    if (oomKilled === undefined) return status;
    const withOom = { ...status, oomKilled };
    this.ctx.events.noteExit(this.containerId, this.id, withOom);
    return withOom;
  }

  /**
   * The OOM event alone is not enough: it is only seen while subscribed, and containerd may deliver
   * it after the exit. The cgroup's own oom_kill counter (cgroup v1 memory.oom_control, v2
   * memory.events), read through Metrics before the task is deleted, settles it.
   */
  private async oomKilled(opts: CallOptions | undefined, exited: boolean): Promise<boolean | undefined> {
    if (this.oomKilled_ !== undefined) return this.oomKilled_;
    if (this.ctx.events.oomSeen(this.containerId)) return true;
    try {
      const { metrics } = await this.ctx.call(`OOM count of container ${this.containerId}`, opts, (s) =>
        this.ctx.tasks.metrics({ filters: [`id==${this.containerId}`] }, { signal: s }),
      );
      const data = metrics.find((m) => m.id === this.containerId)?.data;
      if (!data) return this.ctx.events.lastExitOf(this.containerId, this.id)?.oomKilled;
      const raw = decodeRawMetrics(data, new Date());
      if (raw.kind === "hcs") return undefined;
      const killed = raw.memory.oomKills > 0 || this.ctx.events.oomSeen(this.containerId);
      if (killed || exited) this.oomKilled_ = killed;
      return killed;
    } catch (err) {
      if (isErrorCode(err, "canceled") || isErrorCode(err, "deadline_exceeded")) throw err;
      // Deleted already (or not a cgroup runtime): what was learned before is all there is.
      return this.ctx.events.lastExitOf(this.containerId, this.id)?.oomKilled;
    }
  }

  async start(opts?: CallOptions): Promise<void> {
    await this.ctx.call(`start container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.start({ containerId: this.containerId }, { signal: s }),
    );
    this.ctx.events.track(this.containerId, this.containerId, this.pid);
    await this.owner.noteStarted(opts);
  }

  async status(opts?: CallOptions): Promise<TaskStatus> {
    const { process } = await this.ctx.call(`status of container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.get({ containerId: this.containerId }, { signal: s }),
    );
    return process ? taskStatus(process.status) : "unknown";
  }

  async exec(execId: string, spec: OciProcess, opts?: ExecOptions): Promise<Process> {
    validateIdentifier("exec id", execId);
    if (!spec || !Array.isArray(spec.args) || spec.args.length === 0) {
      throw new InvalidArgumentError(
        `exec ${execId} in container ${this.containerId}: process.args must be a non-empty array`,
      );
    }
    const terminal = opts?.stdio?.terminal ?? spec.terminal ?? false;
    const what = `exec ${execId} in container ${this.containerId}`;
    // As `docker exec` does, a process without an environment or working directory inherits the container's.
    const init = spec.env === undefined || !spec.cwd ? (await this.owner.spec())?.process : undefined;
    const env = spec.env ?? init?.env;
    const cwd = spec.cwd || init?.cwd || "/";
    if (!isAbsolute(cwd)) {
      throw new InvalidArgumentError(
        `${what}: process.cwd must be an absolute path, not ${JSON.stringify(cwd)}`,
      );
    }
    const io = await ProcessIO.create(this.owner.fifoDir, execId, { ...opts?.stdio, terminal });
    try {
      await this.ctx.call(what, opts, (s) =>
        this.ctx.tasks.exec(
          {
            containerId: this.containerId,
            execId,
            stdin: io.paths.stdin,
            stdout: io.paths.stdout,
            stderr: io.paths.stderr,
            terminal,
            spec: jsonAny(TYPE_URL.process, { ...spec, env, cwd, terminal }),
          },
          { signal: s },
        ),
      );
    } catch (err) {
      await io.destroy();
      // containerd died while adding it: the shim may hold the process anyway.
      if (isErrorCode(err, "unavailable") && mayHaveReachedContainerd(err))
        await this.removeUnstartedExec(execId, opts?.signal);
      throw err;
    }
    try {
      const { pid } = await this.ctx.call(`start ${what}`, opts, (s) =>
        this.ctx.tasks.start({ containerId: this.containerId, execId }, { signal: s }),
      );
      this.ctx.events.track(this.containerId, execId, pid);
      return new RemoteProcess(this.ctx, this.containerId, execId, pid, io);
    } catch (err) {
      await io.destroy();
      if (!isErrorCode(err, "unavailable") || mayHaveReachedContainerd(err))
        await this.removeUnstartedExec(execId, opts?.signal);
      throw err;
    }
  }

  /**
   * A process that was added but never (knowingly) started is removed, so the exec id can be used
   * again and nothing runs that the caller was told failed. When containerd died mid-call this waits
   * for it to come back; if the start did go through before it died, the process is killed first.
   */
  private async removeUnstartedExec(execId: string, signal: AbortSignal | undefined): Promise<void> {
    const opts = { waitForReady: true, timeoutMs: this.ctx.defaultTimeoutMs, ...(signal ? { signal } : {}) };
    const what = `clean up exec ${execId} in container ${this.containerId}`;
    const ref = { containerId: this.containerId, execId };
    try {
      await this.ctx
        .call(what, opts, (s) => this.ctx.tasks.kill({ ...ref, signal: 9 }, { signal: s }))
        .catch((err: unknown) => {
          // Never started (or already gone): nothing to kill.
          if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
        });
      for (let attempt = 0; ; attempt++) {
        try {
          await this.ctx.call(what, opts, (s) => this.ctx.tasks.deleteProcess(ref, { signal: s }));
          return;
        } catch (err) {
          if (isErrorCode(err, "not_found")) return;
          // Killed but its exit not yet processed by the shim.
          if (!isErrorCode(err, "failed_precondition") || attempt >= 40) throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    } catch (err) {
      this.ctx.logger.warn({ err }, "unstarted exec left behind");
    }
  }

  async pause(opts?: CallOptions): Promise<void> {
    await this.ctx.call(`pause container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.pause({ containerId: this.containerId }, { signal: s }),
    );
  }

  async resume(opts?: CallOptions): Promise<void> {
    await this.ctx.call(`resume container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.resume({ containerId: this.containerId }, { signal: s }),
    );
  }

  async pids(opts?: CallOptions): Promise<ProcessInfo[]> {
    const { processes } = await this.ctx.call(`list pids of container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.listPids({ containerId: this.containerId }, { signal: s }),
    );
    return processes.map((p) => {
      const info: ProcessInfo = { pid: p.pid };
      if (p.info?.typeUrl.endsWith("containerd.runc.v1.ProcessDetails")) {
        const execId = fromBinary(ProcessDetailsSchema, p.info.value).execId;
        if (execId) info.execId = execId;
      }
      return info;
    });
  }

  async stats(opts?: CallOptions): Promise<Stats> {
    const { metrics } = await this.ctx.call(`stats of container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.metrics({ filters: [`id==${this.containerId}`] }, { signal: s }),
    );
    const metric = metrics.find((m) => m.id === this.containerId) ?? metrics[0];
    if (!metric?.data)
      throw new NotFoundError(`stats of container ${this.containerId}: containerd returned no metrics`);
    return decodeMetrics(metric.data, toDate(metric.timestamp));
  }

  async updateResources(update: ResourceUpdate, opts?: CallOptions): Promise<void> {
    const platform = (await this.owner.spec())?.windows ? "windows" : "linux";
    const resources = resourcesForUpdate(update, platform);
    const any =
      "linux" in resources
        ? jsonAny(TYPE_URL.linuxResources, resources.linux)
        : jsonAny(TYPE_URL.windowsResources, resources.windows);
    await this.ctx.call(`update resources of container ${this.containerId}`, opts, (s) =>
      this.ctx.tasks.update({ containerId: this.containerId, resources: any }, { signal: s }),
    );
  }

  /**
   * CRIU writes the images straight into `dir` (runc's image_path), as `ctr c checkpoint
   * --image-path` does; restore is `newTask({ checkpointDir: dir })`.
   */
  async checkpoint(dir: string, opts?: CheckpointOptions): Promise<void> {
    if (!isAbsolute(dir))
      throw new InvalidArgumentError(`checkpoint of container ${this.containerId}: ${dir} is not absolute`);
    if ((await this.owner.shimKind()) !== "runc-v2") {
      throw new NotImplementedError(
        `checkpoint of container ${this.containerId}: only the runc v2 shim supports it here`,
      );
    }
    const options = create(CheckpointOptionsSchema, { exit: opts?.exit ?? false, imagePath: dir });
    const what = `checkpoint container ${this.containerId}`;
    const any = bareAny("containerd.runc.v1.CheckpointOptions", toBinary(CheckpointOptionsSchema, options));
    try {
      await this.ctx.call(what, opts, (s) =>
        this.ctx.tasks.checkpoint({ containerId: this.containerId, options: any }, { signal: s }),
      );
    } catch (err) {
      throw criuFailure(what, err) ?? err;
    }
  }

  async forceDelete(opts?: CallOptions): Promise<void> {
    const what = `force delete container ${this.containerId}`;
    const exited = this.wait(opts).catch((err: unknown) => err);
    try {
      await this.ctx.call(what, opts, (s) =>
        this.ctx.tasks.kill({ containerId: this.containerId, signal: 9, all: true }, { signal: s }),
      );
    } catch (err) {
      // Already stopped (or never ran): nothing to kill; the delete below still has to happen.
      if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
    }
    const waited = await exited;
    if (waited instanceof Error && !isErrorCode(waited, "not_found")) throw waited;
    try {
      await this.delete(opts);
    } catch (err) {
      // A shim that dies while deleting ("ttrpc: closed") may still have deleted: ask containerd.
      if (!isErrorCode(err, "not_found") && (await this.stillExists(opts))) throw err;
      await this.io.release();
    }
  }

  private async stillExists(opts?: CallOptions): Promise<boolean> {
    try {
      await this.ctx.call(`get task of container ${this.containerId}`, opts, (s) =>
        this.ctx.tasks.get({ containerId: this.containerId }, { signal: s }),
      );
      return true;
    } catch (err) {
      if (isErrorCode(err, "not_found")) return false;
      throw err;
    }
  }
}

/**
 * runc reports only "criu failed … path=<log>"; CRIU's reason is in that log. It is on this host
 * when containerd is, so the error carries CRIU's own error lines.
 */
function criuFailure(what: string, err: unknown): FailedPreconditionError | undefined {
  const message = err instanceof Error ? err.message : String(err);
  if (!/criu failed/i.test(message)) return undefined;
  const log = /path=\s*(\S+\.log)/.exec(message)?.[1];
  let reason = "";
  if (log && existsSync(log)) {
    const errors = readFileSync(log, "utf8")
      .split("\n")
      .filter((line) => /Error|error/.test(line))
      .slice(-3)
      .map((line) => line.replace(/^\([\d.\s]+\)\s*/, "").trim());
    if (errors.length > 0) reason = `: ${errors.join("; ")}`;
  }
  return new FailedPreconditionError(
    `${what}: CRIU failed${reason} (runc: ${message.replace(`${what}: `, "")})`,
    {
      cause: err,
    },
  );
}
