import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type Logger, pino } from "pino";
import { DEFAULT_MANAGED_ROOT, DEFAULT_MANAGED_STATE_DIR } from "../../platform/addresses.js";
import type { Environment } from "../../platform/detect.js";
import { CanceledError, FailedPreconditionError, UnavailableError } from "../types/errors.js";
import { checkContainerdBinary, findContainerdBinary } from "./binary.js";
import { type ContainerdLogLevel, containerdConfigToml } from "./config.js";
import { HealthProbe } from "./health.js";
import { type ManagedContainerdLayout, managedContainerdLayout } from "./layout.js";
import { forwardContainerdLog, parseContainerdLogLine } from "./log-forwarder.js";
import {
  findContainerdProcesses,
  isManagedContainerd,
  isProcessAlive,
  isProcessStopped,
  signalProcess,
  waitForProcessExit,
} from "./process-info.js";

export interface RestartBackoff {
  /** Delay before the first restart after a stable run. Default 100 ms. */
  initialMs?: number;
  /** Cap for the doubling delay between restarts that keep failing. Default 5 s. */
  maxMs?: number;
  /** A containerd that served this long counts as stable: the next restart starts at `initialMs` again. Default 10 s. */
  resetAfterMs?: number;
}

export interface ManagedContainerdOptions {
  /** containerd's data root. Default /var/lib/libcontainerd/containerd. */
  root?: string;
  /** Socket, pid file, config and containerd's state live here. Default /run/libcontainerd/containerd. */
  stateDir?: string;
  /** An explicit containerd binary; otherwise searched on `searchPath` then `searchDirs`. */
  binary?: string;
  /** Default `env.PATH`. */
  searchPath?: string;
  /** Searched after `searchPath`. Default /usr/bin, /usr/local/bin. */
  searchDirs?: readonly string[];
  /** containerd's environment (it finds shims on its PATH). Default `process.env`; NOTIFY_SOCKET is dropped. */
  env?: Environment;
  logger?: Logger;
  /** containerd's own log level; its lines are forwarded to `logger` at the level containerd gives them. */
  logLevel?: ContainerdLogLevel;
  /** Budget for a (re)started containerd to answer SERVING. Default 15 s. */
  startTimeoutMs?: number;
  /** Default 1 s. */
  healthIntervalMs?: number;
  /** A single health check's deadline. Default 1 s. */
  healthTimeoutMs?: number;
  /** Consecutive failed checks after which a live but unresponsive containerd is killed and replaced. Default 3. */
  unhealthyThreshold?: number;
  restartBackoff?: RestartBackoff;
  /** SIGTERM → SIGKILL grace on shutdown. Default 10 s. */
  shutdownTimeoutMs?: number;
  /** Default for `shutdown()`: leave containerd (and so the containers) running for the next client to adopt. */
  leaveRunning?: boolean;
  /** Cancels start-up (the half-started containerd is killed); `start({ signal })` overrides it. */
  signal?: AbortSignal;
}

export interface ContainerdStartedEvent {
  pid: number;
  address: string;
  /** True when an earlier run's containerd was taken over instead of starting one. */
  adopted: boolean;
}

export interface ContainerdExitedEvent {
  pid: number;
  /** null for a signal death, and for an adopted containerd (not our child: no status to read). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when the supervisor itself stopped it (shutdown, or replacing an unhealthy one). */
  expected: boolean;
}

export interface ContainerdRestartedEvent {
  pid: number;
  previousPid: number;
  reason: "exited" | "unhealthy";
  /** Launch attempts this restart took (1 when the first one served). */
  attempts: number;
}

export interface ContainerdUnhealthyEvent {
  pid: number;
  consecutiveFailures: number;
  error: Error;
  /** The process is stopped (SIGSTOP): alive, holding the socket, answering nothing. */
  stopped: boolean;
}

export interface ManagedContainerdEvents {
  /** A containerd serves: the first one, an adopted one, and every replacement. */
  started: [ContainerdStartedEvent];
  exited: [ContainerdExitedEvent];
  /** A replacement serves after the previous one died or was killed as unhealthy (after its `started`). */
  restarted: [ContainerdRestartedEvent];
  unhealthy: [ContainerdUnhealthyEvent];
}

export interface ShutdownOptions {
  leaveRunning?: boolean;
  timeoutMs?: number;
  /** Aborting it ends the SIGTERM grace early: containerd is SIGKILLed at once. */
  signal?: AbortSignal;
}

interface Incarnation {
  pid: number;
  /** Absent for an adopted containerd. */
  child?: ChildProcess;
  exited: boolean;
  /** Set when the supervisor kills it, so its exit is reported as expected. */
  killedOnPurpose: boolean;
  servingSince?: number;
}

type SupervisorState = "starting" | "running" | "restarting" | "stopping" | "stopped" | "detached";

const LOG_TAIL_LINES = 30;

/**
 * A containerd this library starts and keeps alive (moby's supervisor, plus killing a hung one).
 * Create with `ManagedContainerd.start()`; stop with `shutdown()`.
 */
export class ManagedContainerd extends EventEmitter<ManagedContainerdEvents> {
  readonly layout: ManagedContainerdLayout;
  readonly binary: string;
  private readonly logger: Logger;
  private readonly env: Record<string, string>;
  private readonly probe: HealthProbe;
  private readonly stopController = new AbortController();
  private readonly wakers = new Set<() => void>();
  private readonly logTail: string[] = [];
  private readonly settings: Required<
    Pick<
      ManagedContainerdOptions,
      "startTimeoutMs" | "healthIntervalMs" | "healthTimeoutMs" | "unhealthyThreshold" | "shutdownTimeoutMs"
    >
  > & { backoff: Required<RestartBackoff>; leaveRunning: boolean; logLevel?: ContainerdLogLevel };
  private current: Incarnation | undefined;
  private state: SupervisorState = "starting";
  private monitorLoop: Promise<void> | undefined;
  private shutdownPromise: Promise<void> | undefined;
  private restartsSinceStable = 0;
  private startPromise: Promise<void> | undefined;
  private readonly startSignal: AbortSignal | undefined;

  /** Finds the binary (FailedPreconditionError when there is none) but starts nothing; see `start()`. */
  constructor(opts: ManagedContainerdOptions = {}) {
    super();
    const env = opts.env ?? process.env;
    this.binary =
      opts.binary !== undefined
        ? checkContainerdBinary(opts.binary)
        : findContainerdBinary({
            path: opts.searchPath ?? env.PATH ?? "",
            ...(opts.searchDirs ? { extraDirs: opts.searchDirs } : {}),
          });
    this.layout = managedContainerdLayout(
      opts.root ?? DEFAULT_MANAGED_ROOT,
      opts.stateDir ?? DEFAULT_MANAGED_STATE_DIR,
    );
    this.logger = (opts.logger ?? pino({ level: "silent" })).child({ component: "managed-containerd" });
    this.env = {};
    for (const [key, value] of Object.entries(env)) {
      // A systemd NOTIFY_SOCKET meant for our process would make containerd report readiness for us.
      if (value !== undefined && key !== "NOTIFY_SOCKET") this.env[key] = value;
    }
    this.probe = new HealthProbe(this.layout.socket);
    this.startSignal = opts.signal;
    this.settings = {
      startTimeoutMs: opts.startTimeoutMs ?? 15_000,
      healthIntervalMs: opts.healthIntervalMs ?? 1_000,
      healthTimeoutMs: opts.healthTimeoutMs ?? 1_000,
      unhealthyThreshold: Math.max(1, opts.unhealthyThreshold ?? 3),
      shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 10_000,
      backoff: {
        initialMs: opts.restartBackoff?.initialMs ?? 100,
        maxMs: opts.restartBackoff?.maxMs ?? 5_000,
        resetAfterMs: opts.restartBackoff?.resetAfterMs ?? 10_000,
      },
      leaveRunning: opts.leaveRunning ?? false,
      ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
    };
  }

  /**
   * Adopts the containerd an earlier run left serving on these dirs, or starts one, and resolves
   * once it answers SERVING. Then it is watched until `shutdown()`. Listeners attached before this
   * call see the first `started`.
   */
  start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.startPromise) return this.startPromise;
    const signal = opts.signal ?? this.startSignal;
    this.startPromise = this.begin(signal);
    return this.startPromise;
  }

  /** containerd's gRPC socket path. */
  get address(): string {
    return this.layout.socket;
  }

  /** The pid of the containerd now supervised (0 when none). */
  get pid(): number {
    return this.current && !this.current.exited ? this.current.pid : 0;
  }

  get adopted(): boolean {
    return this.current !== undefined && this.current.child === undefined;
  }

  /** Resolves when a containerd serves (at once if one does); UnavailableError after shutdown. */
  async waitUntilServing(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.state === "running") return;
    if (this.state === "stopping" || this.state === "stopped" || this.state === "detached") {
      throw new UnavailableError("the managed containerd has been shut down");
    }
    const signals = [this.stopController.signal];
    if (opts.signal) signals.push(opts.signal);
    if (opts.timeoutMs !== undefined) signals.push(AbortSignal.timeout(opts.timeoutMs));
    try {
      await once(this, "started", { signal: AbortSignal.any(signals) });
    } catch (err) {
      if (this.stopController.signal.aborted)
        throw new UnavailableError("the managed containerd has been shut down");
      if (opts.signal?.aborted)
        throw new CanceledError("waiting for containerd was canceled", { cause: err });
      throw new UnavailableError(`containerd did not serve within ${opts.timeoutMs} ms`, { cause: err });
    }
  }

  /**
   * Stops supervising. By default containerd gets SIGTERM, then SIGKILL after the timeout, and its pid
   * file and sockets are removed. With `leaveRunning` it keeps running and the next `start()` on the
   * same dirs adopts it. Either way containers are not stopped here: their shims keep them running,
   * and the next containerd on these dirs finds them again (stopping containers is the caller's call).
   */
  shutdown(opts: ShutdownOptions = {}): Promise<void> {
    this.shutdownPromise ??= this.stop(opts);
    return this.shutdownPromise;
  }

  private async stop(opts: ShutdownOptions): Promise<void> {
    const leaveRunning = opts.leaveRunning ?? this.settings.leaveRunning;
    this.state = "stopping";
    this.stopController.abort();
    this.wakeMonitor();
    // A start-up still in progress is aborted by now and kills what it half-started.
    await this.startPromise?.catch(() => {});
    await this.monitorLoop;
    this.probe.reset();
    const incarnation = this.current;
    if (leaveRunning && incarnation && !incarnation.exited) {
      this.logger.info({ pid: incarnation.pid }, "leaving containerd running for the next client to adopt");
      this.detach(incarnation);
      this.state = "detached";
      return;
    }
    if (incarnation && !incarnation.exited) {
      incarnation.killedOnPurpose = true;
      this.logger.info({ pid: incarnation.pid }, "stopping containerd");
      // SIGCONT: a stopped containerd would hold SIGTERM pending until someone resumed it.
      await this.terminate(incarnation, opts.timeoutMs ?? this.settings.shutdownTimeoutMs, opts.signal, [
        "SIGTERM",
        "SIGCONT",
      ]);
    }
    this.removeRuntimeFiles();
    this.state = "stopped";
  }

  private async begin(signal: AbortSignal | undefined): Promise<void> {
    if (this.stopController.signal.aborted)
      throw new UnavailableError("the managed containerd has been shut down");
    const abort = signal ? AbortSignal.any([signal, this.stopController.signal]) : this.stopController.signal;
    this.prepareDirs();
    try {
      const adopted = await this.adoptRunning(abort);
      this.current = adopted ?? (await this.launchUntilServing(abort));
    } catch (err) {
      this.state = "stopped";
      this.probe.reset();
      if (signal?.aborted)
        throw new CanceledError("starting the managed containerd was canceled", { cause: err });
      throw err;
    }
    this.state = "running";
    this.current.servingSince = Date.now();
    this.emit("started", { pid: this.current.pid, address: this.address, adopted: this.adopted });
    this.monitorLoop = this.monitor();
  }

  /**
   * Fails fast, and typed, where containerd could not run here: another user's dirs or socket
   * would otherwise look like a containerd that does not serve, and cost the whole start timeout.
   */
  private prepareDirs(): void {
    for (const dir of [this.layout.root, this.layout.stateDir]) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o711 });
        accessSync(dir, constants.W_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new FailedPreconditionError(
          `the managed containerd cannot use ${dir} (${code}); run as root or pass other dirs`,
          {
            cause: err,
          },
        );
      }
    }
  }

  /** An earlier run's containerd on these dirs, if one runs and serves; any other leftover is killed. */
  private async adoptRunning(signal: AbortSignal): Promise<Incarnation | undefined> {
    const candidates = new Set<number>();
    const recorded = this.readPidFile();
    if (recorded !== undefined && isManagedContainerd(recorded, this.layout.configFile))
      candidates.add(recorded);
    // The pid file may be gone while the process is not (a crash between writes, a manual rm).
    for (const pid of findContainerdProcesses(this.layout.configFile)) candidates.add(pid);
    let adopted: Incarnation | undefined;
    for (const pid of candidates) {
      if (adopted === undefined && !isProcessStopped(pid)) {
        const incarnation: Incarnation = { pid, exited: false, killedOnPurpose: false };
        try {
          await this.waitServing(incarnation, signal);
          adopted = incarnation;
          this.writePidFile(pid);
          this.logger.info({ pid }, "adopted a running containerd");
          continue;
        } catch (err) {
          if (signal.aborted) throw err;
          this.logger.warn({ pid, err }, "a leftover containerd does not serve; killing it");
        }
      }
      signalProcess(pid, "SIGKILL");
      await waitForProcessExit(pid, 5_000);
    }
    return adopted;
  }

  private async launchUntilServing(signal: AbortSignal): Promise<Incarnation> {
    const incarnation = await this.launch();
    try {
      await this.waitServing(incarnation, signal);
      return incarnation;
    } catch (err) {
      incarnation.killedOnPurpose = true;
      await this.terminate(incarnation, 0, undefined, []);
      throw err;
    }
  }

  private async launch(): Promise<Incarnation> {
    for (const leftover of findContainerdProcesses(this.layout.configFile)) {
      // Two containerds on one root would fight over its bolt lock and socket.
      this.logger.warn({ pid: leftover }, "killing a leftover containerd before starting a new one");
      signalProcess(leftover, "SIGKILL");
      await waitForProcessExit(leftover, 5_000);
    }
    mkdirSync(this.layout.daemonStateDir, { recursive: true, mode: 0o711 });
    rmSync(this.layout.socket, { force: true });
    rmSync(this.layout.ttrpcSocket, { force: true });
    writeFileSync(this.layout.configFile, containerdConfigToml(this.layout, this.settings.logLevel), {
      mode: 0o600,
    });
    const child = spawn(this.binary, ["--config", this.layout.configFile], {
      // Own session and process group: a Ctrl-C meant for us must not reach containerd.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: this.env,
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) =>
        reject(new FailedPreconditionError(`cannot run ${this.binary}: ${err.message}`, { cause: err })),
      );
    });
    const pid = child.pid!;
    const incarnation: Incarnation = { pid, child, exited: false, killedOnPurpose: false };
    child.once("exit", (exitCode, signal) => this.onChildExit(incarnation, exitCode, signal));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      forwardContainerdLog(stream, this.logger, pid);
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => this.rememberLog(chunk));
    }
    try {
      this.writePidFile(pid);
    } catch (err) {
      incarnation.killedOnPurpose = true;
      await this.terminate(incarnation, 0, undefined, []);
      throw new FailedPreconditionError(`cannot write ${this.layout.pidFile}`, { cause: err });
    }
    this.logger.info({ pid, binary: this.binary, config: this.layout.configFile }, "started containerd");
    return incarnation;
  }

  private async waitServing(incarnation: Incarnation, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    let lastError: Error | undefined;
    while (!signal.aborted) {
      if (incarnation.exited || (!incarnation.child && !isProcessAlive(incarnation.pid))) {
        throw new UnavailableError(
          `containerd (pid ${incarnation.pid}) exited during start-up${this.logTailMessage()}`,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const result = await this.probe.check(Math.min(this.settings.healthTimeoutMs, remaining), signal);
      if (result.serving) return;
      lastError = result.error;
      await this.pause(Math.min(50, Math.max(0, deadline - Date.now())));
    }
    if (signal.aborted) throw new CanceledError("waiting for containerd to serve was canceled");
    throw new UnavailableError(
      `containerd (pid ${incarnation.pid}) did not serve within ${this.settings.startTimeoutMs} ms: ${lastError?.message ?? "no answer"}${this.logTailMessage()}`,
      { cause: lastError },
    );
  }

  private async monitor(): Promise<void> {
    let failures = 0;
    while (this.state === "running") {
      if (!this.current?.exited) await this.pause(this.settings.healthIntervalMs);
      const incarnation = this.current;
      if (this.state !== "running" || !incarnation) return;
      if (incarnation.exited || (!incarnation.child && !isProcessAlive(incarnation.pid))) {
        if (!incarnation.child && !incarnation.exited) {
          incarnation.exited = true;
          this.emit("exited", { pid: incarnation.pid, exitCode: null, signal: null, expected: false });
        }
        this.logger.warn({ pid: incarnation.pid }, "containerd exited; restarting it");
        await this.restart(incarnation, "exited");
        failures = 0;
        continue;
      }
      const result = await this.probe.check(this.settings.healthTimeoutMs, this.stopController.signal);
      if (this.state !== "running" || incarnation.exited) continue;
      if (result.serving) {
        failures = 0;
        continue;
      }
      failures++;
      const stopped = isProcessStopped(incarnation.pid);
      this.logger.warn(
        { pid: incarnation.pid, consecutiveFailures: failures, stopped, err: result.error },
        "containerd failed a health check",
      );
      this.emit("unhealthy", {
        pid: incarnation.pid,
        consecutiveFailures: failures,
        error: result.error,
        stopped,
      });
      if (failures < this.settings.unhealthyThreshold) continue;
      this.logger.error(
        { pid: incarnation.pid, consecutiveFailures: failures },
        "killing unresponsive containerd",
      );
      this.setState("restarting");
      incarnation.killedOnPurpose = true;
      await this.terminate(incarnation, 0, undefined, []);
      await this.restart(incarnation, "unhealthy");
      failures = 0;
    }
  }

  private async restart(previous: Incarnation, reason: "exited" | "unhealthy"): Promise<void> {
    this.setState("restarting");
    const { initialMs, maxMs, resetAfterMs } = this.settings.backoff;
    if (previous.servingSince !== undefined && Date.now() - previous.servingSince >= resetAfterMs) {
      this.restartsSinceStable = 0;
    }
    let attempts = 0;
    while (!this.stopController.signal.aborted) {
      const delay = Math.min(maxMs, initialMs * 2 ** this.restartsSinceStable);
      this.restartsSinceStable++;
      await this.pause(delay);
      if (this.stopController.signal.aborted) return;
      attempts++;
      try {
        // Another supervisor on these dirs (a second client) may have restarted it first: take that
        // one over rather than kill it and fight over the socket.
        const incarnation =
          (await this.adoptRunning(this.stopController.signal)) ??
          (await this.launchUntilServing(this.stopController.signal));
        incarnation.servingSince = Date.now();
        // Even when shutdown began meanwhile: stop() reads `current` after this loop ends and stops it.
        this.current = incarnation;
        if (this.stopController.signal.aborted) return;
        this.setState("running");
        this.logger.info(
          { pid: incarnation.pid, previousPid: previous.pid, reason, attempts },
          "containerd restarted",
        );
        this.emit("started", { pid: incarnation.pid, address: this.address, adopted: this.adopted });
        this.emit("restarted", { pid: incarnation.pid, previousPid: previous.pid, reason, attempts });
        return;
      } catch (err) {
        if (this.stopController.signal.aborted) return;
        this.logger.error({ err, attempts }, "restarting containerd failed; retrying");
      }
    }
  }

  /** Shutdown owns the state once it has begun. */
  private setState(state: "running" | "restarting"): void {
    if (!this.stopController.signal.aborted) this.state = state;
  }

  private onChildExit(
    incarnation: Incarnation,
    exitCode: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    incarnation.exited = true;
    const expected = incarnation.killedOnPurpose;
    this.logger[expected ? "info" : "warn"]({ pid: incarnation.pid, exitCode, signal }, "containerd exited");
    this.emit("exited", { pid: incarnation.pid, exitCode, signal, expected });
    this.wakeMonitor();
  }

  /** Sends `signals`, waits up to `graceMs`, then SIGKILLs and waits for the exit. */
  private async terminate(
    incarnation: Incarnation,
    graceMs: number,
    abort: AbortSignal | undefined,
    signals: NodeJS.Signals[],
  ): Promise<void> {
    const gone = (): boolean => incarnation.exited || !isProcessAlive(incarnation.pid);
    if (gone()) return;
    for (const signal of signals) signalProcess(incarnation.pid, signal);
    if (signals.length > 0 && !abort?.aborted) {
      const aborted = abort
        ? new Promise<boolean>((resolve) =>
            abort.addEventListener("abort", () => resolve(false), { once: true }),
          )
        : new Promise<boolean>(() => {});
      if (await Promise.race([this.waitGone(incarnation, graceMs, gone), aborted])) return;
    }
    if (signals.length > 0)
      this.logger.warn({ pid: incarnation.pid, graceMs }, "containerd ignored SIGTERM; killing it");
    signalProcess(incarnation.pid, "SIGKILL");
    if (!(await this.waitGone(incarnation, 10_000, gone))) {
      this.logger.error({ pid: incarnation.pid }, "containerd survived SIGKILL for 10 s");
    }
  }

  private async waitGone(incarnation: Incarnation, timeoutMs: number, gone: () => boolean): Promise<boolean> {
    const child = incarnation.child;
    if (!child) return waitForProcessExit(incarnation.pid, timeoutMs);
    if (gone()) return true;
    // A child is only reaped (and its pid freed) once Node sees its exit, so wait for that event.
    const exited = once(child, "exit").then(() => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return Promise.race([exited, timedOut]);
  }

  private detach(incarnation: Incarnation): void {
    const child = incarnation.child;
    if (!child) return;
    // containerd ignores SIGPIPE, so closing our ends of its output pipes only drops its later log lines.
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.removeAllListeners("exit");
    child.unref();
  }

  private removeRuntimeFiles(): void {
    for (const path of [this.layout.pidFile, this.layout.socket, this.layout.ttrpcSocket]) {
      try {
        rmSync(path, { force: true });
      } catch (err) {
        // A path that cannot exist (its parent is not a directory) has nothing to remove.
        if ((err as NodeJS.ErrnoException).code !== "ENOTDIR") throw err;
      }
    }
  }

  private readPidFile(): number | undefined {
    try {
      const pid = Number(readFileSync(this.layout.pidFile, "utf8").trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private writePidFile(pid: number): void {
    writeFileSync(this.layout.pidFile, `${pid}\n`, { mode: 0o644 });
  }

  private rememberLog(chunk: string): void {
    for (const line of chunk.split("\n")) {
      if (line.trim() === "") continue;
      this.logTail.push(line);
      if (this.logTail.length > LOG_TAIL_LINES) this.logTail.shift();
    }
  }

  private logTailMessage(): string {
    if (this.logTail.length === 0) return "";
    const lines = this.logTail.slice(-10).map((line) => `  ${parseContainerdLogLine(line).msg}`);
    return `; containerd's last log lines:\n${lines.join("\n")}`;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
      if (this.stopController.signal.aborted) done();
    });
  }

  private wakeMonitor(): void {
    for (const wake of [...this.wakers]) wake();
  }
}

/** Creates a supervisor and starts (or adopts) its containerd. */
export async function startManagedContainerd(
  opts: ManagedContainerdOptions = {},
): Promise<ManagedContainerd> {
  const supervisor = new ManagedContainerd(opts);
  await supervisor.start();
  return supervisor;
}
