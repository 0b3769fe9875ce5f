import { EventEmitter, once } from "node:events";
import { accessSync, constants, existsSync, rmSync, writeFileSync } from "node:fs";
import { type Logger, pino } from "pino";
import { ensurePrivateDir } from "../../fs/private-dir.js";
import { DEFAULT_MANAGED_ROOT, DEFAULT_MANAGED_STATE_DIR } from "../../platform/addresses.js";
import type { Environment } from "../../platform/detect.js";
import { lastAnswerAt } from "../grpc/transport.js";
import { CanceledError, FailedPreconditionError, UnavailableError } from "../types/errors.js";
import { checkContainerdBinary, findContainerdBinary } from "./binary.js";
import type { ContainerdLogLevel } from "./config.js";
import { ContainerdProcessControl, type Incarnation } from "./containerd-process.js";
import { checkServingHere, HealthProbe } from "./health.js";
import { type ManagedContainerdLayout, managedContainerdLayout } from "./layout.js";
import { cpuTicks, isProcessStopped } from "./process-info.js";
import { HangDetector, type HangPolicy, RestartSchedule } from "./restart-policy.js";

export interface RestartBackoff {
  /** Delay before the first restart after a stable run. Default 100 ms. */
  initialMs?: number;
  /** Cap for the doubling delay between restarts that keep failing. Default 5 s. */
  maxMs?: number;
  /** A containerd that served this long counts as stable: the next restart starts at `initialMs` again. Default 10 s. */
  resetAfterMs?: number;
}

/** Where a health check runs: on this thread, or on the probe's worker thread (see health.ts). */
type ProbeWhere = "here" | "thread";

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
  /** A single health check's deadline, timed on the probe's own thread. Default 2 s. */
  healthTimeoutMs?: number;
  /**
   * Consecutive failed checks after which containerd is judged: replaced when it is stopped (SIGSTOP)
   * or its CPU time stood still over those checks (hung); left to work when its CPU time moved (busy).
   * Default 3.
   */
  unhealthyThreshold?: number;
  /** CPU time (clock ticks, usually 10 ms) over the failed checks that counts as working. Default 2. */
  minProgressTicks?: number;
  /** Answering nothing for this long is hung even while its CPU time moves (a livelock). Default 120 s. */
  maxUnresponsiveMs?: number;
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
  /** It made progress over the failed checks (CPU time moved, or other calls answered): busy, left running. */
  busy: boolean;
}

export interface ManagedContainerdEvents {
  /** A containerd serves: the first one, an adopted one, and every replacement. */
  started: [ContainerdStartedEvent];
  exited: [ContainerdExitedEvent];
  /** A replacement serves after the previous one died or was killed as unhealthy (after its `started`). */
  restarted: [ContainerdRestartedEvent];
  /**
   * Another supervisor on these dirs stopped containerd on purpose (`ctrd daemon stop`): it is not
   * restarted, and this one supervises no more. Calls fail as unavailable until someone starts it.
   */
  "stopped-elsewhere": [{ pid: number }];
  unhealthy: [ContainerdUnhealthyEvent];
}

export interface ShutdownOptions {
  leaveRunning?: boolean;
  /**
   * A stop the user asked for (`ctrd daemon stop`): recorded, so that the other supervisors on these
   * dirs let containerd be instead of restarting it. A client that merely closes does not set it: the
   * others go on needing containerd, and restart it.
   */
  onPurpose?: boolean;
  timeoutMs?: number;
  /** Aborting it ends the SIGTERM grace early: containerd is SIGKILLed at once. */
  signal?: AbortSignal;
}

type SupervisorState = "starting" | "running" | "restarting" | "stopping" | "stopped" | "detached";

/**
 * A containerd this library starts and keeps alive (moby's supervisor, plus replacing a hung one,
 * but never a busy one). Create with `ManagedContainerd.start()`; stop with `shutdown()`.
 * Process control lives in containerd-process.ts, the hung/busy judgement and the restart backoff in
 * restart-policy.ts; this class decides when to use them and reports what happened.
 */
export class ManagedContainerd extends EventEmitter<ManagedContainerdEvents> {
  readonly layout: ManagedContainerdLayout;
  readonly binary: string;
  private readonly logger: Logger;
  private readonly probe: HealthProbe;
  private readonly processes: ContainerdProcessControl;
  private readonly schedule: RestartSchedule;
  private readonly hangPolicy: HangPolicy;
  private readonly stopController = new AbortController();
  private readonly wakers = new Set<() => void>();
  private readonly settings: Required<
    Pick<
      ManagedContainerdOptions,
      "startTimeoutMs" | "healthIntervalMs" | "healthTimeoutMs" | "shutdownTimeoutMs"
    >
  > & { leaveRunning: boolean };
  private current: Incarnation | undefined;
  private state: SupervisorState = "starting";
  private monitorLoop: Promise<void> | undefined;
  private shutdownPromise: Promise<void> | undefined;
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
    const childEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      // A systemd NOTIFY_SOCKET meant for our process would make containerd report readiness for us.
      if (value !== undefined && key !== "NOTIFY_SOCKET") childEnv[key] = value;
    }
    this.probe = new HealthProbe(this.layout.socket);
    this.processes = new ContainerdProcessControl({
      binary: this.binary,
      layout: this.layout,
      env: childEnv,
      logger: this.logger,
      ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
      onChildExit: (incarnation, exitCode, signal) => this.onChildExit(incarnation, exitCode, signal),
    });
    this.startSignal = opts.signal;
    this.settings = {
      startTimeoutMs: opts.startTimeoutMs ?? 15_000,
      healthIntervalMs: opts.healthIntervalMs ?? 1_000,
      healthTimeoutMs: opts.healthTimeoutMs ?? 2_000,
      shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 10_000,
      leaveRunning: opts.leaveRunning ?? false,
    };
    this.hangPolicy = {
      unhealthyThreshold: Math.max(1, opts.unhealthyThreshold ?? 3),
      minProgressTicks: opts.minProgressTicks ?? 2,
      maxBusyMs: opts.maxUnresponsiveMs ?? 120_000,
    };
    this.schedule = new RestartSchedule({
      initialMs: opts.restartBackoff?.initialMs ?? 100,
      maxMs: opts.restartBackoff?.maxMs ?? 5_000,
      resetAfterMs: opts.restartBackoff?.resetAfterMs ?? 10_000,
    });
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
      this.processes.detach(incarnation);
      this.state = "detached";
      return;
    }
    if (incarnation && !incarnation.exited) {
      incarnation.killedOnPurpose = true;
      // Before the signal: the other supervisors on these dirs must find it when they see the exit.
      if (opts.onPurpose) this.markStopped(true);
      this.logger.info({ pid: incarnation.pid }, "stopping containerd");
      // SIGCONT: a stopped containerd would hold SIGTERM pending until someone resumed it.
      await this.processes.terminate(
        incarnation,
        opts.timeoutMs ?? this.settings.shutdownTimeoutMs,
        opts.signal,
        ["SIGTERM", "SIGCONT"],
      );
    }
    // Not the files of a containerd another supervisor on these dirs runs now (ours had died).
    if (this.processes.leftovers().length === 0) this.processes.removeRuntimeFiles();
    this.state = "stopped";
  }

  /** Records (or clears) that containerd was stopped on purpose; see `layout.stoppedMarker`. */
  private markStopped(stopped: boolean): void {
    try {
      if (stopped) writeFileSync(this.layout.stoppedMarker, `${new Date().toISOString()}\n`);
      else rmSync(this.layout.stoppedMarker, { force: true });
    } catch (err) {
      this.logger.warn({ err, path: this.layout.stoppedMarker }, "could not record the stop of containerd");
    }
  }

  /** Someone stopped containerd on purpose: this supervisor lets it be, and supervises no more. */
  private stoppedElsewhere(incarnation: Incarnation): boolean {
    if (!existsSync(this.layout.stoppedMarker)) return false;
    this.logger.info({ pid: incarnation.pid }, "containerd was stopped on purpose; not restarting it");
    this.setState("stopped");
    this.emit("stopped-elsewhere", { pid: incarnation.pid });
    return true;
  }

  private async begin(signal: AbortSignal | undefined): Promise<void> {
    if (this.stopController.signal.aborted)
      throw new UnavailableError("the managed containerd has been shut down");
    const abort = signal ? AbortSignal.any([signal, this.stopController.signal]) : this.stopController.signal;
    try {
      this.prepareDirs();
      // This client wants containerd: a stop on purpose before it no longer holds.
      this.markStopped(false);
      // The first start (or adoption) checks on this thread: it is the client's start, the event loop
      // waits for it with nothing else to do, and the probe thread would cost every ctrd command
      // ~30 ms. A restart, later, runs beside the client's own work: through the probe thread.
      const adopted = await this.adoptRunning(abort, "here");
      this.current = adopted ?? (await this.launchUntilServing(abort, "here"));
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
   * Fails fast, and typed, where containerd could not run safely here: another user's dirs would
   * otherwise look like a containerd that does not serve (and cost the whole start timeout), or
   * let that user redirect what we write.
   */
  private prepareDirs(): void {
    for (const dir of [this.layout.root, this.layout.stateDir]) {
      ensurePrivateDir(dir);
      try {
        accessSync(dir, constants.W_OK);
      } catch (err) {
        throw new FailedPreconditionError(
          `the managed containerd cannot use ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); run as root or pass other dirs`,
          { cause: err },
        );
      }
    }
  }

  /** An earlier run's containerd on these dirs, if one runs and serves; any other leftover is killed. */
  private async adoptRunning(signal: AbortSignal, probe: ProbeWhere): Promise<Incarnation | undefined> {
    let adopted: Incarnation | undefined;
    for (const pid of this.processes.leftovers()) {
      if (adopted === undefined && !isProcessStopped(pid)) {
        const candidate: Incarnation = { pid, exited: false, killedOnPurpose: false };
        try {
          await this.waitServing(candidate, signal, probe);
          adopted = this.processes.adopt(pid);
          this.logger.info({ pid }, "adopted a running containerd");
          continue;
        } catch (err) {
          if (signal.aborted) throw err;
          this.logger.warn({ pid, err }, "a leftover containerd does not serve; killing it");
        }
      }
      await this.processes.killLeftover(pid);
    }
    return adopted;
  }

  private async launchUntilServing(signal: AbortSignal, probe: ProbeWhere): Promise<Incarnation> {
    const incarnation = await this.processes.launch();
    try {
      await this.waitServing(incarnation, signal, probe);
      return incarnation;
    } catch (err) {
      incarnation.killedOnPurpose = true;
      await this.processes.terminate(incarnation, 0, undefined, []);
      throw err;
    }
  }

  private async waitServing(incarnation: Incarnation, signal: AbortSignal, probe: ProbeWhere): Promise<void> {
    const deadline = Date.now() + this.settings.startTimeoutMs;
    let lastError: Error | undefined;
    while (!signal.aborted) {
      if (this.processes.isGone(incarnation)) {
        throw new UnavailableError(
          `containerd (pid ${incarnation.pid}) exited during start-up${this.processes.logTailMessage()}`,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const timeoutMs = Math.min(this.settings.healthTimeoutMs, remaining);
      const result =
        probe === "here"
          ? await checkServingHere(this.layout.socket, timeoutMs, signal)
          : await this.probe.check(timeoutMs, signal);
      if (result.serving) return;
      lastError = result.error;
      await this.pause(Math.min(50, Math.max(0, deadline - Date.now())));
    }
    if (signal.aborted) throw new CanceledError("waiting for containerd to serve was canceled");
    throw new UnavailableError(
      `containerd (pid ${incarnation.pid}) did not serve within ${this.settings.startTimeoutMs} ms: ${lastError?.message ?? "no answer"}${this.processes.logTailMessage()}`,
      { cause: lastError },
    );
  }

  private async monitor(): Promise<void> {
    const hang = new HangDetector(this.hangPolicy);
    while (this.state === "running") {
      if (!this.current?.exited) await this.pause(this.settings.healthIntervalMs);
      const incarnation = this.current;
      if (this.state !== "running" || !incarnation) return;
      if (this.processes.isGone(incarnation)) {
        if (!incarnation.child && !incarnation.exited) {
          incarnation.exited = true;
          this.emit("exited", { pid: incarnation.pid, exitCode: null, signal: null, expected: false });
        }
        if (this.stoppedElsewhere(incarnation)) return;
        this.logger.warn({ pid: incarnation.pid }, "containerd exited; restarting it");
        await this.restart(incarnation, "exited");
        hang.answered();
        continue;
      }
      const result = await this.probe.check(this.settings.healthTimeoutMs, this.stopController.signal);
      if (this.state !== "running" || incarnation.exited) continue;
      if (result.serving) {
        hang.answered();
        continue;
      }
      const stopped = isProcessStopped(incarnation.pid);
      const verdict = hang.unanswered({
        stopped,
        cpuTicks: cpuTicks(incarnation.pid),
        lastAnswerAt: lastAnswerAt(this.layout.socket),
        now: Date.now(),
      });
      const busy = verdict.kind === "busy";
      const consecutiveFailures = busy ? this.hangPolicy.unhealthyThreshold : hang.consecutiveFailures;
      this.logger.warn(
        { pid: incarnation.pid, consecutiveFailures, stopped, verdict, err: result.error },
        busy
          ? "containerd misses health checks but is working (CPU time moves or calls answer); leaving it be"
          : "containerd failed a health check",
      );
      this.emit("unhealthy", {
        pid: incarnation.pid,
        consecutiveFailures,
        error: result.error,
        stopped,
        busy,
      });
      if (verdict.kind !== "hung") continue;
      this.logger.error(
        { pid: incarnation.pid, consecutiveFailures, reason: verdict.reason },
        "killing unresponsive containerd",
      );
      this.setState("restarting");
      incarnation.killedOnPurpose = true;
      await this.processes.terminate(incarnation, 0, undefined, []);
      await this.restart(incarnation, "unhealthy");
      hang.answered();
    }
  }

  private async restart(previous: Incarnation, reason: "exited" | "unhealthy"): Promise<void> {
    this.setState("restarting");
    this.schedule.beginRestart(previous.servingSince, Date.now());
    let attempts = 0;
    while (!this.stopController.signal.aborted) {
      await this.pause(this.schedule.nextDelayMs());
      if (this.stopController.signal.aborted || this.stoppedElsewhere(previous)) return;
      attempts++;
      try {
        // Another supervisor on these dirs (a second client) may have restarted it first: take that
        // one over rather than kill it and fight over the socket.
        const incarnation =
          (await this.adoptRunning(this.stopController.signal, "thread")) ??
          (await this.launchUntilServing(this.stopController.signal, "thread"));
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
  private setState(state: "running" | "restarting" | "stopped"): void {
    if (!this.stopController.signal.aborted) this.state = state;
  }

  private onChildExit(
    incarnation: Incarnation,
    exitCode: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    const expected = incarnation.killedOnPurpose;
    this.logger[expected ? "info" : "warn"]({ pid: incarnation.pid, exitCode, signal }, "containerd exited");
    this.emit("exited", { pid: incarnation.pid, exitCode, signal, expected });
    this.wakeMonitor();
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
