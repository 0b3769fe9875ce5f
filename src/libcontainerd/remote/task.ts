import { existsSync, readFileSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import {
  CheckpointOptionsSchema,
  ProcessDetailsSchema,
} from "../../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import type { OciProcess } from "../../oci/spec.js";
import { delay } from "../call.js";
import type { Call } from "../core/calls.js";
import type { Stdio } from "../core/inputs.js";
import { TaskBase } from "../core/process.js";
import { mayHaveReachedContainerd } from "../grpc/errors.js";
import type { ExitStatus, ProcessInfo, TaskStatus } from "../types/client.js";
import { FailedPreconditionError, isErrorCode, NotFoundError } from "../types/errors.js";
import type { Resources } from "../types/resources.js";
import type { Stats } from "../types/stats.js";
import { bareAny, jsonAny, TYPE_URL } from "./any.js";
import type { RemoteContainer } from "./container.js";
import type { RemoteContext } from "./context.js";
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

export class RemoteTask extends TaskBase<RemoteProcess> {
  constructor(
    private readonly ctx: RemoteContext,
    private readonly owner: RemoteContainer,
    pid: number,
    io: ProcessIO,
  ) {
    super(ctx.core, owner, new RemoteInitProcess(ctx, owner, pid, io));
  }

  protected async startTask(call: Call): Promise<void> {
    // Stamped before the call: a process that exits at once must not have exited before it started.
    const startedAt = new Date();
    // Recorded while the Start is in flight (containerd takes far longer to start than to write a
    // label), and undone if the Start fails.
    const recorded = this.owner.noteStarted(call, startedAt);
    // A process that exits before the Start returns (its wait() already answered) has its exit
    // written after the Start, where a delete that follows can still make it needless.
    const release = this.ctx.labels.hold(this.containerId);
    try {
      await this.ctx.rpc(call, (signal) =>
        this.ctx.tasks.start({ containerId: this.containerId }, { signal }),
      );
    } catch (err) {
      release();
      const replaced = await recorded;
      if (replaced) await this.owner.undoStart(replaced);
      throw err;
    }
    release();
    this.ctx.events.track(this.containerId, this.containerId, this.pid);
    await recorded;
  }

  protected async taskStatus(call: Call): Promise<TaskStatus> {
    const { process } = await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.get({ containerId: this.containerId }, { signal }),
    );
    return process ? taskStatus(process.status) : "unknown";
  }

  protected async startExec(
    call: Call,
    execId: string,
    spec: OciProcess,
    stdio: Stdio,
  ): Promise<RemoteProcess> {
    const io = await ProcessIO.create(this.owner.fifoDir, execId, stdio, true);
    try {
      await this.ctx.rpc(call, (signal) =>
        this.ctx.tasks.exec(
          {
            containerId: this.containerId,
            execId,
            stdin: io.paths.stdin,
            stdout: io.paths.stdout,
            stderr: io.paths.stderr,
            terminal: stdio.terminal,
            spec: jsonAny(TYPE_URL.process, spec),
          },
          { signal },
        ),
      );
    } catch (err) {
      await io.destroy();
      // containerd died while adding it: the shim may hold the process anyway.
      if (isErrorCode(err, "unavailable") && mayHaveReachedContainerd(err))
        await this.removeUnstartedExec(execId);
      throw err;
    }
    try {
      const { pid } = await this.ctx.rpc(
        call,
        (signal) => this.ctx.tasks.start({ containerId: this.containerId, execId }, { signal }),
        `start ${call.what}`,
      );
      this.ctx.events.track(this.containerId, execId, pid);
      return new RemoteProcess(this.ctx, this.containerId, execId, pid, io);
    } catch (err) {
      await io.destroy();
      if (!isErrorCode(err, "unavailable") || mayHaveReachedContainerd(err))
        await this.removeUnstartedExec(execId);
      throw err;
    }
  }

  /**
   * A process that was added but never (knowingly) started is removed, so the exec id can be used
   * again and nothing runs that the caller was told failed. When containerd died mid-call this waits
   * for it to come back; if the start did go through before it died, the process is killed first.
   */
  private async removeUnstartedExec(execId: string): Promise<void> {
    const call = this.ctx.cleanupCall(`clean up exec ${execId} in container ${this.containerId}`);
    const ref = { containerId: this.containerId, execId };
    try {
      await this.ctx
        .rpc(call, (signal) => this.ctx.tasks.kill({ ...ref, signal: 9 }, { signal }))
        .catch((err: unknown) => {
          // Never started (or already gone): nothing to kill.
          if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
        });
      for (let attempt = 0; ; attempt++) {
        try {
          await this.ctx.rpc(call, (signal) => this.ctx.tasks.deleteProcess(ref, { signal }));
          return;
        } catch (err) {
          if (isErrorCode(err, "not_found")) return;
          // Killed but its exit not yet processed by the shim.
          if (!isErrorCode(err, "failed_precondition") || attempt >= 40) throw err;
          await delay(50, call.signal, call.what);
        }
      }
    } catch (err) {
      this.ctx.logger.warn({ err }, "unstarted exec left behind");
    }
  }

  protected async pauseTask(call: Call): Promise<void> {
    await this.ctx.rpc(call, (signal) => this.ctx.tasks.pause({ containerId: this.containerId }, { signal }));
  }

  protected async resumeTask(call: Call): Promise<void> {
    await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.resume({ containerId: this.containerId }, { signal }),
    );
  }

  protected async listPids(call: Call): Promise<ProcessInfo[]> {
    const { processes } = await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.listPids({ containerId: this.containerId }, { signal }),
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

  protected async taskStats(call: Call): Promise<Stats> {
    const { metrics } = await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.metrics({ filters: [`id==${this.containerId}`] }, { signal }),
    );
    const metric = metrics.find((m) => m.id === this.containerId) ?? metrics[0];
    if (!metric?.data) throw new NotFoundError("containerd returned no metrics");
    // Loaded on first use: the cgroup metrics descriptors are large and most clients never ask.
    const { decodeMetrics } = await import("./metrics.js");
    return decodeMetrics(metric.data, toDate(metric.timestamp));
  }

  protected async updateTaskResources(call: Call, resources: Resources): Promise<void> {
    const any =
      "linux" in resources
        ? jsonAny(TYPE_URL.linuxResources, resources.linux)
        : jsonAny(TYPE_URL.windowsResources, resources.windows);
    await this.ctx.rpc(call, (signal) =>
      this.ctx.tasks.update({ containerId: this.containerId, resources: any }, { signal }),
    );
  }

  /** runc's image_path, as `ctr c checkpoint --image-path` does. */
  protected async checkpointTask(call: Call, dir: string, exit: boolean): Promise<void> {
    const options = create(CheckpointOptionsSchema, { exit, imagePath: dir });
    const any = bareAny("containerd.runc.v1.CheckpointOptions", toBinary(CheckpointOptionsSchema, options));
    try {
      await this.ctx.rpc(call, (signal) =>
        this.ctx.tasks.checkpoint({ containerId: this.containerId, options: any }, { signal }),
      );
    } catch (err) {
      throw criuFailure(call.what, err) ?? err;
    }
  }

  protected async forceDeleteTask(call: Call): Promise<void> {
    const exited = this.waitExit(call).catch((err: unknown) => err);
    try {
      await this.ctx.rpc(call, (signal) =>
        this.ctx.tasks.kill({ containerId: this.containerId, signal: 9, all: true }, { signal }),
      );
    } catch (err) {
      // Already stopped (or never ran): nothing to kill; the delete below still has to happen.
      if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
    }
    const waited = await exited;
    if (waited instanceof Error && !isErrorCode(waited, "not_found")) throw waited;
    try {
      await this.driver.delete(call);
    } catch (err) {
      // A shim that dies while deleting ("ttrpc: closed") may still have deleted: ask containerd.
      if (!isErrorCode(err, "not_found") && (await this.stillExists(call))) throw err;
      await this.driver.io.release(this.ctx.logger);
    }
  }

  private async stillExists(call: Call): Promise<boolean> {
    try {
      await this.ctx.rpc(call, (signal) => this.ctx.tasks.get({ containerId: this.containerId }, { signal }));
      return true;
    } catch (err) {
      if (isErrorCode(err, "not_found")) return false;
      throw err;
    }
  }
}

/** The init process: its exit status says whether the kernel killed for want of memory. */
class RemoteInitProcess extends RemoteProcess {
  /** Known once the task has exited: the oom_kill counter cannot move after that. */
  private oomKilled_: boolean | undefined;

  constructor(
    ctx: RemoteContext,
    private readonly owner: RemoteContainer,
    pid: number,
    io: ProcessIO,
  ) {
    super(ctx, owner.id, owner.id, pid, io);
  }

  /**
   * The exit, to be remembered on the container (io.ctrd.state.*) for when the task is gone. Not
   * waited for: until the task is deleted it holds the exit itself (and whoever looks at a stopped
   * task records its exit, see state/observe.ts).
   */
  override async wait(call: Call): Promise<ExitStatus> {
    const status = await super.wait(call);
    const exit = withOom(status, await this.oomKilled(call, true, status));
    this.owner.noteExited(exit);
    return exit;
  }

  /**
   * Reads the OOM counter before the delete removes the cgroup that holds it. The exit is written
   * on the turn after the task is gone, unless the container is being deleted by then (LabelWrites):
   * a caller that deletes the task and then the container never has it written.
   */
  override async delete(call: Call): Promise<ExitStatus> {
    // Held from the start: a close() meanwhile waits for this delete's exit (LabelWrites.allWritten).
    const release = this.ctx.labels.hold(this.containerId);
    try {
      const oomKilled = await this.oomKilled(
        call,
        false,
        this.ctx.core.exits.lastExit(this.containerId, this.id),
      );
      const status = await super.delete(call);
      const exit = withOom(status, oomKilled || this.ctx.events.oomSeen(this.containerId));
      this.ctx.deletedTasks.add(this.containerId);
      this.owner.noteExited(exit);
      return exit;
    } finally {
      release();
    }
  }

  /**
   * The OOM event alone is not enough: it is only seen while subscribed, and containerd may deliver
   * it after the exit. The cgroup's own oom_kill counter (cgroup v1 memory.oom_control, v2
   * memory.events), read through Metrics before the task is deleted, settles it.
   */
  private async oomKilled(call: Call, exited: boolean, exit?: ExitStatus): Promise<boolean | undefined> {
    if (this.oomKilled_ !== undefined) return this.oomKilled_;
    if (this.ctx.events.oomSeen(this.containerId)) return true;
    // The OOM killer sends SIGKILL: any other exit status settles it without asking containerd
    // (a Metrics call per exit would be most of what a short container's lifecycle costs extra).
    if (exit !== undefined && exit.exitCode !== SIGKILL_EXIT_CODE) {
      this.oomKilled_ = false;
      return false;
    }
    const known = () => this.ctx.core.exits.lastExit(this.containerId, this.id)?.oomKilled;
    try {
      const { metrics } = await this.ctx.rpc(
        call,
        (signal) => this.ctx.tasks.metrics({ filters: [`id==${this.containerId}`] }, { signal }),
        `OOM count of container ${this.containerId}`,
      );
      const data = metrics.find((m) => m.id === this.containerId)?.data;
      if (!data) return known();
      const { decodeRawMetrics } = await import("./metrics.js");
      const raw = decodeRawMetrics(data, new Date());
      if (raw.kind === "hcs") return undefined;
      const killed = raw.memory.oomKills > 0 || this.ctx.events.oomSeen(this.containerId);
      if (killed || exited) this.oomKilled_ = killed;
      return killed;
    } catch (err) {
      if (isErrorCode(err, "canceled") || isErrorCode(err, "deadline_exceeded")) throw err;
      // Deleted already (or not a cgroup runtime): what was learned before is all there is.
      return known();
    }
  }
}

/** 128 + SIGKILL: how runc reports a process the kernel (or anyone) killed with signal 9. */
const SIGKILL_EXIT_CODE = 137;

function withOom(status: ExitStatus, oomKilled: boolean | undefined): ExitStatus {
  return oomKilled === undefined ? status : { ...status, oomKilled };
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
