/**
 * The backend-neutral process and task: signal parsing, exec ids and defaults, checkpoint support,
 * CallOptions and wording here; the driver does the work in its hooks.
 */
import type { Readable, Writable } from "node:stream";
import { resourcesForUpdate } from "../../oci/resources.js";
import type { OciProcess } from "../../oci/spec.js";
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
import { AlreadyExistsError, InvalidArgumentError, isErrorCode } from "../types/errors.js";
import type { Resources, ResourceUpdate } from "../types/resources.js";
import type { Stats } from "../types/stats.js";
import type { Call } from "./calls.js";
import type { Core } from "./client.js";
import type { ContainerBase } from "./container.js";
import { validateIdentifier } from "./identifiers.js";
import {
  checkAbsoluteDir,
  checkProcess,
  checkTerminalSize,
  execProcess,
  isWindowsSpec,
  resolveStdio,
  type Stdio,
} from "./inputs.js";

/**
 * What a driver does for one process (the init process or an exec). The core calls it with the
 * public operation's Call, after its own checks.
 */
export interface ProcessDriver {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /**
   * Delivers `signal` as given by the caller (`SIGTERM`, `TERM`, 15, or a backend's own name such as
   * HCS's `CtrlC`): what a signal means is the backend's (POSIX numbers, or Windows console events).
   * InvalidArgumentError for one it cannot deliver.
   */
  signal(call: Call, signal: string | number): Promise<void>;
  resize(call: Call, width: number, height: number): Promise<void>;
  closeStdin(call: Call): Promise<void>;
  /** The exit status; NotFoundError when the process is gone (the core then answers from what it saw). */
  wait(call: Call): Promise<ExitStatus>;
  /** Removes the stopped process; FailedPreconditionError while it runs. */
  delete(call: Call): Promise<ExitStatus>;
}

/** A process as callers see it: the core's rules around a driver. */
export class CoreProcess<D extends ProcessDriver = ProcessDriver> implements Process {
  /** Set by the task that exec'd this process: frees the exec id once the process is deleted. */
  onDeleted: (() => void) | undefined;

  constructor(
    protected readonly core: Core,
    readonly containerId: string,
    readonly id: string,
    protected readonly driver: D,
  ) {}

  get pid(): number {
    return this.driver.pid;
  }
  get stdin(): Writable | null {
    return this.driver.stdin;
  }
  get stdout(): Readable | null {
    return this.driver.stdout;
  }
  get stderr(): Readable | null {
    return this.driver.stderr;
  }

  /** Names the process in messages: `container web` (its init process) or `exec e1 in container web`. */
  protected get described(): string {
    return this.id === this.containerId
      ? `container ${this.containerId}`
      : `exec ${this.id} in container ${this.containerId}`;
  }

  kill(signal: NodeJS.Signals | string | number, opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`kill ${this.described}`, opts, async (call) => {
      if (typeof signal !== "string" && typeof signal !== "number")
        throw new InvalidArgumentError("the signal must be a name or a number");
      return this.driver.signal(call, signal);
    });
  }

  resize(width: number, height: number, opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`resize ${this.described}`, opts, async (call) => {
      checkTerminalSize(width, height);
      return this.driver.resize(call, width, height);
    });
  }

  closeStdin(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`close stdin of ${this.described}`, opts, (call) =>
      this.driver.closeStdin(call),
    );
  }

  /** Unbounded unless the caller sets a signal or timeout: a process may run for days. */
  wait(opts?: CallOptions): Promise<ExitStatus> {
    return this.core.calls.run(`wait for ${this.described}`, opts, (call) => this.waitExit(call), true);
  }

  /** The exit, from the driver, or from what the core saw when the process is already gone. */
  protected async waitExit(call: Call): Promise<ExitStatus> {
    try {
      const status = await this.driver.wait(call);
      this.core.exits.note(this.containerId, this.id, status);
      return status;
    } catch (err) {
      // Deleted meanwhile (by us or another client): the exit may still be known.
      const known = isErrorCode(err, "not_found") && this.core.exits.lastExit(this.containerId, this.id);
      if (known) return known;
      throw err;
    }
  }

  delete(opts?: CallOptions): Promise<ExitStatus> {
    const what =
      this.id === this.containerId
        ? `delete task of container ${this.containerId}`
        : `delete ${this.described}`;
    return this.core.calls.run(what, opts, async (call) => {
      const status = await this.driver.delete(call);
      this.core.exits.note(this.containerId, this.id, status);
      this.onDeleted?.();
      return status;
    });
  }
}

/** A task: its init process plus the task-wide operations, which the driver's subclass implements. */
export abstract class TaskBase<D extends ProcessDriver = ProcessDriver>
  extends CoreProcess<D>
  implements Task
{
  /** Exec ids this handle started and has not deleted: refused for a new exec. */
  private readonly execIds = new Set<string>();

  constructor(
    core: Core,
    protected readonly container: ContainerBase,
    driver: D,
  ) {
    super(core, container.id, container.id, driver);
  }

  start(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`start container ${this.containerId}`, opts, (call) => this.startTask(call));
  }

  status(opts?: CallOptions): Promise<TaskStatus> {
    return this.core.calls.run(`status of container ${this.containerId}`, opts, (call) =>
      this.taskStatus(call),
    );
  }

  exec(execId: string, process: OciProcess, opts?: ExecOptions): Promise<Process> {
    return this.core.calls.run(`exec ${execId} in container ${this.containerId}`, opts, async (call) => {
      validateIdentifier("exec id", execId);
      // An exec named like the container would be taken for its init process (waits, kills, exit events).
      if (execId === this.containerId)
        throw new AlreadyExistsError(`exec id ${execId} is the container's own id (its init process)`);
      if (this.execIds.has(execId)) throw new AlreadyExistsError(`exec id ${execId} is in use`);
      checkProcess(process, "process");
      this.execIds.add(execId);
      try {
        const spec = await this.container.spec(call);
        const stdio = resolveStdio(opts?.stdio, process);
        const resolved = execProcess(process, spec?.process, isWindowsSpec(spec), stdio.terminal);
        const exec = new CoreProcess(
          this.core,
          this.containerId,
          execId,
          await this.startExec(call, execId, resolved, stdio),
        );
        exec.onDeleted = () => this.execIds.delete(execId);
        return exec;
      } catch (err) {
        this.execIds.delete(execId);
        throw err;
      }
    });
  }

  pause(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`pause container ${this.containerId}`, opts, (call) => this.pauseTask(call));
  }

  resume(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`resume container ${this.containerId}`, opts, (call) => this.resumeTask(call));
  }

  pids(opts?: CallOptions): Promise<ProcessInfo[]> {
    return this.core.calls.run(`list pids of container ${this.containerId}`, opts, (call) =>
      this.listPids(call),
    );
  }

  stats(opts?: CallOptions): Promise<Stats> {
    return this.core.calls.run(`stats of container ${this.containerId}`, opts, (call) =>
      this.taskStats(call),
    );
  }

  /** Docker-style limits become the OCI resources of the container's platform, checked here. */
  updateResources(update: ResourceUpdate, opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`update resources of container ${this.containerId}`, opts, async (call) => {
      if (!update || typeof update !== "object")
        throw new InvalidArgumentError("resources must be an object");
      const platform = isWindowsSpec(await this.container.spec(call)) ? "windows" : "linux";
      return this.updateTaskResources(call, resourcesForUpdate(update, platform));
    });
  }

  /** CRIU writes the images straight into `dir`; restore is `newTask({ checkpointDir: dir })`. */
  checkpoint(dir: string, opts?: CheckpointOptions): Promise<void> {
    return this.core.calls.run(`checkpoint container ${this.containerId}`, opts, async (call) => {
      const imagePath = checkAbsoluteDir(dir, "the checkpoint directory");
      await this.container.requireCheckpoints(call);
      return this.checkpointTask(call, imagePath, opts?.exit ?? false);
    });
  }

  forceDelete(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`force delete task of container ${this.containerId}`, opts, (call) =>
      this.forceDeleteTask(call),
    );
  }

  protected abstract startTask(call: Call): Promise<void>;
  protected abstract taskStatus(call: Call): Promise<TaskStatus>;
  /** Creates and starts the exec; the process is checked and has the container's defaults. */
  protected abstract startExec(
    call: Call,
    execId: string,
    process: OciProcess,
    stdio: Stdio,
  ): Promise<ProcessDriver>;
  protected abstract pauseTask(call: Call): Promise<void>;
  protected abstract resumeTask(call: Call): Promise<void>;
  protected abstract listPids(call: Call): Promise<ProcessInfo[]>;
  protected abstract taskStats(call: Call): Promise<Stats>;
  protected abstract updateTaskResources(call: Call, resources: Resources): Promise<void>;
  /** Only called when the container's runtime supports checkpoints. */
  protected abstract checkpointTask(call: Call, dir: string, exit: boolean): Promise<void>;
  /** Kills (SIGKILL) whatever runs, waits for the exit (`waitExit`), deletes the task (`driver.delete`). */
  protected abstract forceDeleteTask(call: Call): Promise<void>;
}
