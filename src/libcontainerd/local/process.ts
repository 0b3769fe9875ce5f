/**
 * Process and Task over HCS processes. The init process already runs when newTask returns
 * (HCS has no create/start split), so its exit is held back until `start()` has published
 * `start`: callers see create → start → exit, and one exit per process, as on containerd.
 */
import { finished } from "node:stream/promises";
import type { Logger } from "pino";
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import { abortError } from "../call.js";
import type { Call } from "../core/calls.js";
import type { Core } from "../core/client.js";
import type { ContainerBase } from "../core/container.js";
import type { Stdio } from "../core/inputs.js";
import { type ProcessDriver, TaskBase } from "../core/process.js";
import { normalizeStats } from "../stats.js";
import type { ExitStatus, ProcessInfo, TaskStatus } from "../types/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  isErrorCode,
  LibcontainerdError,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
} from "../types/errors.js";
import type { EventType } from "../types/events.js";
import type { Resources } from "../types/resources.js";
import type { Stats } from "../types/stats.js";
import { type GuestOs, processParameters, WINDOWS_BUILD_RS5, WINDOWS_BUILD_V20H2 } from "./documents.js";
import { HcsProcess } from "./hcs-process.js";
import type { HcsContext, HcsSystem } from "./hcs-system.js";
import { type HcsSystemProperties, hcsStats } from "./properties.js";
import { dropUndefined } from "./schema1.js";
import { hcsSignal } from "./signals.js";
import { assertStdioSupported, closeRawStdio, type ProcessStreams, streamsFromHandles } from "./stdio.js";
import { memoryLimitInMB, processorLimits } from "./windows-config.js";

export interface LocalRuntime {
  hcs: HcsContext;
  core: Core;
  windowsBuild: number;
  logger: Logger;
}

/** What a task needs from its container. */
export interface ContainerState extends ContainerBase {
  readonly system: HcsSystem;
  readonly guestOs: GuestOs;
  readonly hyperV: boolean;
  paused: boolean;
  currentTask: LocalTask | undefined;
}

/** How long disposal waits for a terminated process's exit before closing its handle anyway. */
const DISPOSE_EXIT_WAIT_MS = 5_000;

/** Publishes an event other than an exit (exits go through the core's ledger). */
export function publish(
  rt: LocalRuntime,
  type: EventType,
  containerId: string,
  processId: string,
  pid: number,
): void {
  rt.core.events.publish({ type, containerId, processId, pid, timestamp: new Date() });
}

/** What differs between the init process and an exec. */
interface ProcessRole {
  /** Resolves when the exit may be published (the init process: after start). */
  exitGate: Promise<void>;
  /** Stops the process where HCS cannot signal (before RS5). Default: terminate it. */
  stopWithoutSignals?: () => Promise<void>;
  /** Releases what goes with the process once deleted. Default: its own handle and streams. */
  release?: () => Promise<void>;
}

/** An HCS process as the core drives it. */
export class LocalProcess implements ProcessDriver {
  readonly stdin;
  readonly stdout;
  readonly stderr;
  exitStatus: ExitStatus | undefined;
  private deleted = false;
  private readonly exit: Promise<ExitStatus>;

  constructor(
    private readonly rt: LocalRuntime,
    private readonly container: ContainerState,
    readonly id: string,
    readonly hcs: HcsProcess,
    streams: ProcessStreams,
    private readonly role: ProcessRole,
  ) {
    this.stdin = streams.stdin;
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
    this.exit = this.monitor(role.exitGate);
    this.exit.catch(() => {});
  }

  get pid(): number {
    return this.hcs.pid;
  }

  private async monitor(exitGate: Promise<void>): Promise<ExitStatus> {
    let exitCode: number | undefined;
    try {
      await this.hcs.waitExited();
    } catch (err) {
      if (!this.hcs.lost) throw err;
      // The HCS service went away (ServiceDisconnect): no exit will ever come. hcsshim's waitBackground ends
      // the wait with exit code -1 (internal/hcs/process.go), and moby's reap reports that exit "to avoid a
      // container being dropped on the floor" (libcontainerd/local/local_windows.go); so does this.
      this.rt.logger.warn({ process: this.hcs.subject, err }, "HCS disconnected; reporting exit code -1");
      exitCode = -1;
    }
    const exitedAt = new Date();
    if (exitCode === undefined) {
      try {
        exitCode = await this.hcs.exitCode();
      } catch (err) {
        this.rt.logger.warn({ process: this.hcs.subject, err }, "reading the exit code failed");
        exitCode = -1;
      }
    }
    await exitGate;
    const status = { exitCode, exitedAt };
    this.exitStatus = status;
    this.rt.core.exits.publish(this.container.id, this.id, this.pid, status);
    return status;
  }

  wait(_call: Call): Promise<ExitStatus> {
    return this.exit;
  }

  async signal(_call: Call, signal: string | number): Promise<void> {
    const request = hcsSignal(this.container.guestOs, signal);
    this.assertNotDeleted();
    if (this.exitStatus || this.hcs.exited) return;
    if (request.kind === "terminate") return this.hcs.kill();
    if (this.signalsSupported()) {
      if (this.container.guestOs === "windows") {
        // hcsshim cmd/containerd-shim-runhcs-v1/exec_hcs.go Kill: servercore blocks HcsSignalProcess until the
        // process has ended (Bug36689012), so a Windows guest's signal is delivered in the background and the
        // kill returns at once; a caller then waits for the exit with its own timeout, and a SIGKILL still
        // goes through (another thread, another system handle). Failures are logged, as hcsshim logs them.
        this.hcs.signal(request.options).catch((err: unknown) => {
          this.rt.logger.warn({ process: this.hcs.subject, err }, "delivering a signal failed");
        });
        return;
      }
      await this.hcs.signal(request.options);
      return;
    }
    // Before RS5 HCS cannot signal. As hcsshim's ValidateWCOW without signal support (internal/signals/
    // signal.go): only a stop request (SIGTERM, CtrlShutdown) is honoured, by stopping the process as moby does
    // (the init process by shutting the container down, an exec by terminating it); any other signal would be
    // a kill the caller did not ask for, so it is refused (hcsshim: ErrInvalidSignal).
    if (request.options.Signal !== "CtrlShutdown") {
      throw new FailedPreconditionError(
        `signal ${JSON.stringify(signal)} cannot be delivered before Windows build ${WINDOWS_BUILD_RS5} (RS5); only SIGTERM (a stop) and SIGKILL`,
      );
    }
    return this.role.stopWithoutSignals ? this.role.stopWithoutSignals() : this.hcs.terminate();
  }

  private signalsSupported(): boolean {
    return this.rt.windowsBuild >= WINDOWS_BUILD_RS5 && this.rt.hcs.api.has("HcsSignalProcess");
  }

  async resize(_call: Call, width: number, height: number): Promise<void> {
    this.assertNotDeleted();
    await this.hcs.modify({ Operation: "ConsoleSize", ConsoleSize: { Height: height, Width: width } });
  }

  /** Ends our end of the pipe (after pending writes), then tells HCS to close the guest side. */
  async closeStdin(_call: Call): Promise<void> {
    this.assertNotDeleted();
    const stdin = this.stdin;
    if (stdin && !stdin.destroyed) {
      stdin.end();
      await finished(stdin).catch(() => {});
      stdin.destroy();
    }
    if (this.hcs.exited) return;
    try {
      await this.hcs.modify({ Operation: "CloseHandle", CloseHandle: { Handle: "StdIn" } });
    } catch (err) {
      // moby ignores these: the process exited or its stdin is already closed.
      if (isErrorCode(err, "failed_precondition") || isErrorCode(err, "not_found")) return;
      throw err;
    }
  }

  async delete(_call: Call): Promise<ExitStatus> {
    this.assertNotDeleted();
    const status = this.exitStatus;
    if (!status) throw new FailedPreconditionError("it is still running");
    await (this.role.release ? this.role.release() : this.release());
    return status;
  }

  /** Closes the handle and the streams nobody reads; streams being read end at EOF by themselves. */
  async release(): Promise<void> {
    this.deleted = true;
    this.stdin?.destroy();
    for (const stream of [this.stdout, this.stderr]) {
      if (stream && stream.readableFlowing === null && stream.listenerCount("readable") === 0)
        stream.destroy();
    }
    await this.hcs.close();
    this.container.currentTask?.forgetExec(this.id);
  }

  /**
   * Terminates (if needed), gives the exit a moment to be reported (one exit per process, even
   * for a process that goes down with its task), and releases.
   */
  async dispose(): Promise<void> {
    if (this.deleted) return;
    if (!this.hcs.exited) await this.hcs.terminate().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exit.catch(() => {}),
      new Promise((resolve) => {
        timer = setTimeout(resolve, DISPOSE_EXIT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    await this.release();
  }

  assertNotDeleted(): void {
    if (this.deleted) throw new NotFoundError("it was deleted");
  }
}

export class LocalTask extends TaskBase<LocalProcess> {
  private started = false;
  private readonly openGate: () => void;
  private readonly execs = new Map<string, LocalProcess>();

  private constructor(
    private readonly rt: LocalRuntime,
    private readonly owner: ContainerState,
    hcs: HcsProcess,
    streams: ProcessStreams,
  ) {
    let open!: () => void;
    const exitGate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const role: ProcessRole = {
      exitGate,
      // Before RS5 the init process is stopped by shutting the container down (moby's local backend).
      stopWithoutSignals: async () => {
        await owner.system.shutdown();
      },
    };
    super(rt.core, owner, new LocalProcess(rt, owner, owner.id, hcs, streams, role));
    role.release = () => this.releaseAll();
    this.openGate = open;
  }

  static async create(
    rt: LocalRuntime,
    container: ContainerState,
    process: OciProcess,
    stdio: Stdio,
    /** The container's spec: an LCOW init process carries it whole. */
    spec: OciSpec,
  ): Promise<LocalTask> {
    const parameters = processParameters(container.guestOs, process, stdio, spec);
    const { process: hcs, info } = await HcsProcess.create(container.system, parameters, closeRawStdio);
    return new LocalTask(rt, container, hcs, openStreams(info, hcs));
  }

  get exitStatus(): ExitStatus | undefined {
    return this.driver.exitStatus;
  }

  protected async startTask(_call: Call): Promise<void> {
    this.driver.assertNotDeleted();
    if (this.started) throw new FailedPreconditionError("it is already started");
    this.started = true;
    // `start` is queued before the gate opens, so the exit can never overtake it.
    publish(this.rt, "start", this.id, this.id, this.pid);
    this.openGate();
  }

  protected async taskStatus(_call: Call): Promise<TaskStatus> {
    this.driver.assertNotDeleted();
    if (this.driver.exitStatus) return "stopped";
    if (this.owner.paused) return "paused";
    return this.started ? "running" : "created";
  }

  protected async startExec(
    call: Call,
    execId: string,
    process: OciProcess,
    stdio: Stdio,
  ): Promise<LocalProcess> {
    this.driver.assertNotDeleted();
    if (this.execs.has(execId)) throw new AlreadyExistsError(`exec id ${execId} is in use`);
    if (this.driver.exitStatus || this.driver.hcs.exited)
      throw new FailedPreconditionError("the task is not running");
    assertStdioSupported(stdio);
    const parameters = processParameters(this.owner.guestOs, process, stdio);
    const { process: hcs, info } = await HcsProcess.create(this.owner.system, parameters, closeRawStdio);
    if (call.signal?.aborted) {
      // The caller gave up while HCS was creating the process: nobody will ever wait for or delete it.
      closeRawStdio(info);
      await hcs.terminate().catch(() => {});
      await hcs.close();
      throw abortError(call.signal, call.what);
    }
    const exec = new LocalProcess(this.rt, this.owner, execId, hcs, openStreams(info, hcs), {
      exitGate: Promise.resolve(),
    });
    this.execs.set(execId, exec);
    publish(this.rt, "exec-added", this.id, execId, 0);
    publish(this.rt, "exec-started", this.id, execId, exec.pid);
    return exec;
  }

  forgetExec(execId: string): void {
    this.execs.delete(execId);
  }

  protected async pauseTask(call: Call): Promise<void> {
    this.assertHyperV();
    await this.owner.system.pause(call.signal);
    this.owner.paused = true;
    publish(this.rt, "paused", this.id, this.id, 0);
  }

  protected async resumeTask(call: Call): Promise<void> {
    this.assertHyperV();
    await this.owner.system.resume(call.signal);
    this.owner.paused = false;
    publish(this.rt, "resumed", this.id, this.id, 0);
  }

  private assertHyperV(): void {
    this.driver.assertNotDeleted();
    if (!this.owner.hyperV)
      throw new NotImplementedError("it needs Hyper-V isolation; the container is process-isolated");
  }

  protected async listPids(_call: Call): Promise<ProcessInfo[]> {
    this.driver.assertNotDeleted();
    const props = await propertiesWhileThere<HcsSystemProperties>(this.owner.system, {
      PropertyTypes: ["ProcessList"],
    });
    const execByPid = new Map<number, string>();
    for (const [id, exec] of this.execs) execByPid.set(exec.pid, id);
    return (props.ProcessList ?? []).map((p) => {
      const pid = p.ProcessId ?? 0;
      const execId = execByPid.get(pid);
      return execId === undefined ? { pid } : { pid, execId };
    });
  }

  protected async taskStats(_call: Call): Promise<Stats> {
    this.driver.assertNotDeleted();
    const props = await propertiesWhileThere<HcsSystemProperties>(this.owner.system, {
      PropertyTypes: ["Statistics"],
    });
    return normalizeStats(hcsStats(props.Statistics));
  }

  /**
   * hcsshim's update of a running process-isolated container (cmd/containerd-shim-runhcs-v1/task_hcs.go
   * updateWCOWResources): HcsModifyComputeSystem with a ModifySettingRequest "Update" of
   * "Container/Memory/SizeInMB" (MiB, rounded up to even: hcsoci NormalizeMemorySize) and, from 20H2, of
   * "Container/Processor" with one of Count, Maximum and Weight. Schema v1 (before RS5, Hyper-V, LCOW) has no
   * such request: NotImplementedError there, rather than moby's silent no-op, so a caller never believes a
   * limit was applied. Storage limits cannot change either.
   */
  protected async updateTaskResources(_call: Call, resources: Resources): Promise<void> {
    this.driver.assertNotDeleted();
    const v2Silo =
      this.owner.guestOs === "windows" && !this.owner.hyperV && this.rt.windowsBuild >= WINDOWS_BUILD_RS5;
    if (!v2Silo || !("windows" in resources)) {
      throw new NotImplementedError(
        "HCS changes limits of a running container only for process isolation on schema v2 (RS5+)",
      );
    }
    const { memory, cpu, storage } = resources.windows;
    if (storage && Object.values(storage).some((v) => v !== undefined)) {
      throw new NotImplementedError("HCS cannot change a running container's storage limits");
    }
    const sizeInMB = memoryLimitInMB(this.id, memory?.limit);
    const processor = processorLimits(
      cpu,
      { id: this.id, warn: (m) => this.rt.logger.warn({ id: this.id }, m) },
      false,
    );
    const processorUpdate = dropUndefined({
      Count: processor.processorCount,
      Maximum: processor.processorMaximum,
      Weight: processor.processorWeight,
    });
    if (Object.keys(processorUpdate).length > 0 && this.rt.windowsBuild < WINDOWS_BUILD_V20H2) {
      throw new NotImplementedError(
        `HCS changes a running container's CPU limits from Windows build ${WINDOWS_BUILD_V20H2} (20H2) on`,
      );
    }
    if (sizeInMB !== undefined) {
      await this.owner.system.modify({
        ResourcePath: "Container/Memory/SizeInMB",
        RequestType: "Update",
        Settings: sizeInMB + (sizeInMB % 2),
      });
    }
    if (Object.keys(processorUpdate).length > 0) {
      await this.owner.system.modify({
        ResourcePath: "Container/Processor",
        RequestType: "Update",
        Settings: processorUpdate,
      });
    }
  }

  /** Unreachable: the core asks the container's runtime first, and HCS has no checkpoints. */
  protected async checkpointTask(): Promise<void> {
    throw new NotImplementedError("the HCS (local) backend has no checkpoints");
  }

  protected async forceDeleteTask(call: Call): Promise<void> {
    this.driver.assertNotDeleted();
    if (!this.driver.exitStatus) {
      await this.driver.hcs.kill();
      // A task that was never started still has to report its one exit.
      if (!this.started) {
        this.started = true;
        this.openGate();
      }
      await this.waitExit(call);
    }
    await this.releaseAll();
  }

  /** Execs go with their task: running ones are terminated, every handle is closed. */
  private async releaseAll(): Promise<void> {
    await Promise.all([...this.execs.values()].map((exec) => exec.dispose()));
    this.execs.clear();
    await this.driver.release();
    if (this.owner.currentTask === this) this.owner.currentTask = undefined;
  }

  /** For client shutdown: stop what runs and close every handle, without waiting for exits. */
  async dispose(): Promise<void> {
    this.openGate();
    await Promise.all([...this.execs.values()].map((exec) => exec.dispose()));
    this.execs.clear();
    await this.driver.dispose();
    if (this.owner.currentTask === this) this.owner.currentTask = undefined;
  }
}

/**
 * What a compute system that is stopping or gone answers a property query with: containerd-shim-runhcs-v1's
 * isStatsNotFound (cmd/containerd-shim-runhcs-v1/task.go: IsNotExist, IsOperationInvalidState,
 * IsAccessIsDenied, IsErrorInvalidHandle), for which its Stats and Pids answer NotFound, as containerd does
 * for a task that is gone.
 */
const GONE = new Set([0xc037010e, 0x80070490, 0xc0370105, 0x80070005, 0x80070006]);

async function propertiesWhileThere<T>(system: HcsSystem, query: object): Promise<T> {
  try {
    return await system.properties<T>(query);
  } catch (err) {
    const origin = err instanceof LibcontainerdError ? err.origin : undefined;
    if (origin?.backend === "hcs" && GONE.has(origin.hresult)) {
      throw new NotFoundError(`its compute system is stopping or gone (${origin.hresultName})`, {
        cause: err,
        origin,
      });
    }
    throw err;
  }
}

function openStreams(info: Parameters<typeof streamsFromHandles>[0], hcs: HcsProcess): ProcessStreams {
  try {
    return streamsFromHandles(info); // on failure it has closed every handle
  } catch (err) {
    void hcs
      .terminate()
      .catch(() => {})
      .then(() => hcs.close());
    throw new UnavailableError(`cannot open stdio of process ${hcs.subject}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
