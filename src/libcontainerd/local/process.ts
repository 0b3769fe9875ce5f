/**
 * Process and Task over HCS processes. The init process already runs when newTask returns
 * (HCS has no create/start split), so its exit is held back until `start()` has published
 * `start`: callers see create → start → exit, and one exit per process, as on containerd.
 */
import { finished } from "node:stream/promises";
import type { Logger } from "pino";
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import { abortError, callSignal, throwIfAborted } from "../call.js";
import type { EventFanout } from "../event-queue.js";
import { normalizeStats } from "../stats.js";
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
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  isErrorCode,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
} from "../types/errors.js";
import type { EventType } from "../types/events.js";
import type { Stats } from "../types/stats.js";
import { type GuestOs, processParameters, WINDOWS_BUILD_RS5 } from "./documents.js";
import { HcsProcess } from "./hcs-process.js";
import type { HcsContext, HcsSystem } from "./hcs-system.js";
import { type HcsSystemProperties, hcsStats } from "./properties.js";
import { hcsSignal } from "./signals.js";
import { assertStdioSupported, closeRawStdio, type ProcessStreams, streamsFromHandles } from "./stdio.js";

export interface LocalRuntime {
  hcs: HcsContext;
  events: EventFanout;
  windowsBuild: number;
  logger: Logger;
  /** Applied to calls that name no timeout of their own; never to waits for an exit. */
  defaultTimeoutMs?: number;
}

/** The caller's options, with the client's default timeout when they set none. */
export function bounded(rt: LocalRuntime, opts: CallOptions | undefined): CallOptions | undefined {
  if (rt.defaultTimeoutMs === undefined || opts?.timeoutMs !== undefined) return opts;
  return { ...opts, timeoutMs: rt.defaultTimeoutMs };
}

/** What a task needs from its container. */
export interface ContainerState {
  readonly id: string;
  readonly system: HcsSystem;
  readonly guestOs: GuestOs;
  readonly hyperV: boolean;
  paused: boolean;
  currentTask: LocalTask | undefined;
}

/** How long disposal waits for a terminated process's exit before closing its handle anyway. */
const DISPOSE_EXIT_WAIT_MS = 5_000;

/** Runs `fn` and rejects as soon as `opts` aborts; the operation itself finishes in the background. */
export async function honour<T>(
  opts: CallOptions | undefined,
  what: string,
  fn: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const signal = callSignal(opts);
  throwIfAborted(signal, what);
  const operation = fn(signal);
  if (!signal) return operation;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener("abort", onAbort, { once: true });
    operation.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

export function publish(
  rt: LocalRuntime,
  type: EventType,
  containerId: string,
  processId: string,
  pid: number,
  exit?: ExitStatus,
): void {
  rt.events.publish({
    type,
    containerId,
    processId,
    pid,
    exitCode: exit?.exitCode,
    exitedAt: exit?.exitedAt,
    timestamp: new Date(),
  });
}

export class LocalProcess implements Process {
  readonly stdin;
  readonly stdout;
  readonly stderr;
  protected exitStatus: ExitStatus | undefined;
  protected deleted = false;
  private readonly exit: Promise<ExitStatus>;

  constructor(
    protected readonly rt: LocalRuntime,
    protected readonly container: ContainerState,
    readonly id: string,
    protected readonly hcs: HcsProcess,
    streams: ProcessStreams,
    /** Resolves when the exit may be published (the init process: after start). */
    exitGate: Promise<void>,
  ) {
    this.stdin = streams.stdin;
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
    this.exit = this.monitor(exitGate);
    this.exit.catch(() => {});
  }

  get containerId(): string {
    return this.container.id;
  }

  get pid(): number {
    return this.hcs.pid;
  }

  get exited(): boolean {
    return this.exitStatus !== undefined;
  }

  private async monitor(exitGate: Promise<void>): Promise<ExitStatus> {
    await this.hcs.waitExited();
    const exitedAt = new Date();
    let exitCode: number;
    try {
      exitCode = await this.hcs.exitCode();
    } catch (err) {
      this.rt.logger.warn({ process: this.hcs.subject, err }, "reading the exit code failed");
      exitCode = -1;
    }
    await exitGate;
    const status = { exitCode, exitedAt };
    this.exitStatus = status;
    publish(this.rt, "exit", this.container.id, this.id, this.pid, status);
    return status;
  }

  wait(opts?: CallOptions): Promise<ExitStatus> {
    return honour(opts, `wait ${this.describe()}`, () => this.exit);
  }

  kill(signal: NodeJS.Signals | string | number, opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `kill ${this.describe()}`, async () => {
      const request = hcsSignal(this.container.guestOs, signal);
      this.assertNotDeleted();
      if (this.exitStatus || this.hcs.exited) return;
      if (request.kind === "terminate") return this.hcs.kill();
      if (this.signalsSupported()) {
        await this.hcs.signal(request.options);
        return;
      }
      return this.killWithoutSignals();
    });
  }

  /** Before RS5 HCS cannot signal: an exec is terminated, whatever the signal (moby). */
  protected killWithoutSignals(): Promise<void> {
    return this.hcs.terminate();
  }

  private signalsSupported(): boolean {
    return this.rt.windowsBuild >= WINDOWS_BUILD_RS5 && this.rt.hcs.api.has("HcsSignalProcess");
  }

  resize(width: number, height: number, opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `resize ${this.describe()}`, () => {
      this.assertNotDeleted();
      return this.hcs.modify({ Operation: "ConsoleSize", ConsoleSize: { Height: height, Width: width } });
    });
  }

  /** Ends our end of the pipe (after pending writes), then tells HCS to close the guest side. */
  closeStdin(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `close stdin of ${this.describe()}`, async () => {
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
    });
  }

  delete(opts?: CallOptions): Promise<ExitStatus> {
    return honour(bounded(this.rt, opts), `delete ${this.describe()}`, async () => {
      this.assertNotDeleted();
      const status = this.exitStatus;
      if (!status) throw new FailedPreconditionError(`${this.describe()} is still running`);
      await this.release();
      this.forget();
      return status;
    });
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

  protected forget(): void {
    this.container.currentTask?.forgetExec(this.id);
  }

  protected assertNotDeleted(): void {
    if (this.deleted) throw new NotFoundError(`${this.describe()} was deleted`);
  }

  protected describe(): string {
    return this.id === this.container.id ? `task ${this.id}` : `exec ${this.id} in ${this.container.id}`;
  }
}

export class LocalTask extends LocalProcess implements Task {
  private started = false;
  private openGate!: () => void;
  /** The init process: execs inherit its cwd and env when they name none (as on containerd). */
  private readonly initProcess: OciProcess;
  private readonly execs = new Map<string, LocalProcess>();

  private constructor(
    rt: LocalRuntime,
    container: ContainerState,
    hcs: HcsProcess,
    streams: ProcessStreams,
    initProcess: OciProcess,
    gate: { promise: Promise<void>; open: () => void },
  ) {
    super(rt, container, container.id, hcs, streams, gate.promise);
    this.openGate = gate.open;
    this.initProcess = initProcess;
  }

  static async create(
    rt: LocalRuntime,
    container: ContainerState,
    process: OciProcess,
    stdio: { stdin?: boolean; stdout?: boolean; stderr?: boolean; terminal?: boolean } | undefined,
    /** The container's spec: an LCOW init process carries it whole. */
    spec?: OciSpec,
  ): Promise<LocalTask> {
    const parameters = processParameters(container.guestOs, process, normalizeStdio(stdio), spec);
    const { process: hcs, info } = await HcsProcess.create(container.system, parameters, closeRawStdio);
    const streams = openStreams(info, hcs);
    let open!: () => void;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    return new LocalTask(rt, container, hcs, streams, process, { promise, open });
  }

  start(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `start task ${this.id}`, async () => {
      this.assertNotDeleted();
      if (this.started) throw new FailedPreconditionError(`task ${this.id} is already started`);
      this.started = true;
      // `start` is queued before the gate opens, so the exit can never overtake it.
      publish(this.rt, "start", this.id, this.id, this.pid);
      this.openGate();
    });
  }

  status(opts?: CallOptions): Promise<TaskStatus> {
    return honour(bounded(this.rt, opts), `status of task ${this.id}`, async () => {
      this.assertNotDeleted();
      if (this.exitStatus) return "stopped";
      if (this.container.paused) return "paused";
      return this.started ? "running" : "created";
    });
  }

  exec(execId: string, process: OciProcess, opts?: ExecOptions): Promise<LocalProcess> {
    return honour(bounded(this.rt, opts), `exec ${execId} in ${this.id}`, async () => {
      this.assertNotDeleted();
      if (!execId) throw new InvalidArgumentError("exec id must not be empty");
      if (this.execs.has(execId) || execId === this.id) {
        throw new AlreadyExistsError(`exec ${execId} already exists in ${this.id}`);
      }
      if (this.exitStatus || this.hcs.exited)
        throw new FailedPreconditionError(`task ${this.id} is not running`);
      assertStdioSupported(opts?.stdio);
      const parameters = processParameters(
        this.container.guestOs,
        { ...process, cwd: process.cwd || this.initProcess.cwd, env: process.env ?? this.initProcess.env },
        normalizeStdio(opts?.stdio),
      );
      const { process: hcs, info } = await HcsProcess.create(
        this.container.system,
        parameters,
        closeRawStdio,
      );
      const exec = new LocalProcess(
        this.rt,
        this.container,
        execId,
        hcs,
        openStreams(info, hcs),
        Promise.resolve(),
      );
      this.execs.set(execId, exec);
      publish(this.rt, "exec-added", this.id, execId, 0);
      publish(this.rt, "exec-started", this.id, execId, exec.pid);
      return exec;
    });
  }

  forgetExec(execId: string): void {
    this.execs.delete(execId);
  }

  /** Before RS5 the init process is stopped by shutting the container down (moby's local backend). */
  protected override async killWithoutSignals(): Promise<void> {
    await this.container.system.shutdown();
  }

  pause(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `pause ${this.id}`, async (signal) => {
      this.assertHyperV("pause");
      await this.container.system.pause(signal);
      this.container.paused = true;
      publish(this.rt, "paused", this.id, this.id, 0);
    });
  }

  resume(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `resume ${this.id}`, async (signal) => {
      this.assertHyperV("resume");
      await this.container.system.resume(signal);
      this.container.paused = false;
      publish(this.rt, "resumed", this.id, this.id, 0);
    });
  }

  private assertHyperV(what: string): void {
    this.assertNotDeleted();
    if (!this.container.hyperV) {
      throw new NotImplementedError(`${what} needs Hyper-V isolation; ${this.id} is process-isolated`);
    }
  }

  pids(opts?: CallOptions): Promise<ProcessInfo[]> {
    return honour(bounded(this.rt, opts), `pids of ${this.id}`, async () => {
      this.assertNotDeleted();
      const props = await this.container.system.properties<HcsSystemProperties>({
        PropertyTypes: ["ProcessList"],
      });
      const execByPid = new Map<number, string>();
      for (const [id, exec] of this.execs) execByPid.set(exec.pid, id);
      return (props.ProcessList ?? []).map((p) => {
        const pid = p.ProcessId ?? 0;
        const execId = execByPid.get(pid);
        return execId === undefined ? { pid } : { pid, execId };
      });
    });
  }

  stats(opts?: CallOptions): Promise<Stats> {
    return honour(bounded(this.rt, opts), `stats of ${this.id}`, async () => {
      this.assertNotDeleted();
      const props = await this.container.system.properties<HcsSystemProperties>({
        PropertyTypes: ["Statistics"],
      });
      return normalizeStats(hcsStats(props.Statistics));
    });
  }

  /**
   * Not implemented rather than moby's silent no-op: HCS v1 cannot change a running container's
   * CPU or memory limits, and a caller must not believe a limit was applied.
   */
  updateResources(): Promise<void> {
    return Promise.reject(
      new NotImplementedError("updateResources is not supported by the HCS (local) backend"),
    );
  }

  checkpoint(_dir: string, _opts?: CheckpointOptions): Promise<void> {
    return Promise.reject(
      new NotImplementedError("checkpoints are not supported by the HCS (local) backend"),
    );
  }

  override delete(opts?: CallOptions): Promise<ExitStatus> {
    return honour(bounded(this.rt, opts), `delete task ${this.id}`, async () => {
      this.assertNotDeleted();
      const status = this.exitStatus;
      if (!status) throw new FailedPreconditionError(`task ${this.id} is still running`);
      await this.releaseAll();
      return status;
    });
  }

  forceDelete(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `force-delete task ${this.id}`, async (signal) => {
      this.assertNotDeleted();
      if (!this.exitStatus) {
        await this.hcs.kill();
        // A task that was never started still has to report its one exit.
        if (!this.started) {
          this.started = true;
          this.openGate();
        }
        await this.waitOrAbort(signal);
      }
      await this.releaseAll();
    });
  }

  private waitOrAbort(signal: AbortSignal | undefined): Promise<ExitStatus> {
    return signal ? this.wait({ signal }) : this.wait();
  }

  /** Execs go with their task: running ones are terminated, every handle is closed. */
  private async releaseAll(): Promise<void> {
    await Promise.all([...this.execs.values()].map((exec) => exec.dispose()));
    this.execs.clear();
    await this.release();
    if (this.container.currentTask === this) this.container.currentTask = undefined;
  }

  /** For client shutdown: stop what runs and close every handle, without waiting for exits. */
  override async dispose(): Promise<void> {
    if (this.deleted) return;
    this.openGate();
    await Promise.all([...this.execs.values()].map((exec) => exec.dispose()));
    this.execs.clear();
    await super.dispose();
    if (this.container.currentTask === this) this.container.currentTask = undefined;
  }
}

function normalizeStdio(
  stdio: { stdin?: boolean; stdout?: boolean; stderr?: boolean; terminal?: boolean } | undefined,
) {
  return {
    stdin: stdio?.stdin ?? false,
    stdout: stdio?.stdout ?? false,
    stderr: stdio?.stderr ?? false,
    terminal: stdio?.terminal ?? false,
  };
}

function openStreams(info: Parameters<typeof streamsFromHandles>[0], hcs: HcsProcess): ProcessStreams {
  try {
    return streamsFromHandles(info);
  } catch (err) {
    closeRawStdio(info);
    void hcs
      .terminate()
      .catch(() => {})
      .then(() => hcs.close());
    throw new UnavailableError(`cannot open stdio of process ${hcs.subject}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
