import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import type { Logger } from "pino";
import { ensureOwnSubdir, readFileNoFollow, writeFileNoFollow } from "../../fs/private-dir.js";
import { FailedPreconditionError } from "../types/errors.js";
import { type ContainerdLogLevel, containerdConfigToml } from "./config.js";
import type { ManagedContainerdLayout } from "./layout.js";
import { forwardContainerdLog, parseContainerdLogLine } from "./log-forwarder.js";
import {
  findContainerdProcesses,
  isManagedContainerd,
  isProcessAlive,
  signalProcess,
  waitForProcessExit,
} from "./process-info.js";

/** One containerd process: a child we launched, or an earlier run's that we adopted. */
export interface Incarnation {
  pid: number;
  /** Absent for an adopted containerd. */
  child?: ChildProcess;
  exited: boolean;
  /** Set when the supervisor kills it, so its exit is reported as expected. */
  killedOnPurpose: boolean;
  servingSince?: number;
}

export interface ContainerdProcessOptions {
  binary: string;
  layout: ManagedContainerdLayout;
  env: Record<string, string>;
  logger: Logger;
  logLevel?: ContainerdLogLevel;
  /** A launched child exited (adopted ones are noticed by polling `isGone`). */
  onChildExit: (incarnation: Incarnation, exitCode: number | null, signal: NodeJS.Signals | null) => void;
}

const LOG_TAIL_LINES = 30;

/**
 * Process control for the managed containerd: launch, find, signal, wait for, and let go of the
 * processes, and the files they run from (config, pid file, sockets). No policy: when to do any of
 * it is the supervisor's (supervisor.ts) and its restart policy's (restart-policy.ts).
 */
export class ContainerdProcessControl {
  private readonly logTail: string[] = [];

  constructor(private readonly opts: ContainerdProcessOptions) {}

  private get layout(): ManagedContainerdLayout {
    return this.opts.layout;
  }

  /**
   * Pids an earlier run left on these dirs. The pid file's, if it is still our containerd, alone:
   * looking through /proc reads every process's command line, which cost each ctrd command ~5 ms on
   * a host of 150 processes, and more with every container. Otherwise those found in /proc: the pid
   * file may be gone while the process is not (a crash between writes, a manual rm). One the pid
   * file names that does not serve is killed, and a launch looks through /proc before it starts one.
   */
  leftovers(): number[] {
    const recorded = this.readPidFile();
    if (recorded !== undefined && isManagedContainerd(recorded, this.layout.configFile)) return [recorded];
    return findContainerdProcesses(this.layout.configFile);
  }

  async killLeftover(pid: number): Promise<void> {
    signalProcess(pid, "SIGKILL");
    await waitForProcessExit(pid, 5_000);
  }

  adopt(pid: number): Incarnation {
    this.writePidFile(pid);
    return { pid, exited: false, killedOnPurpose: false };
  }

  /** Whether the process is gone (for an adopted one, by asking /proc). */
  isGone(incarnation: Incarnation): boolean {
    return incarnation.exited || (!incarnation.child && !isProcessAlive(incarnation.pid));
  }

  async launch(): Promise<Incarnation> {
    for (const leftover of findContainerdProcesses(this.layout.configFile)) {
      // Two containerds on one root would fight over its bolt lock and socket.
      this.opts.logger.warn({ pid: leftover }, "killing a leftover containerd before starting a new one");
      await this.killLeftover(leftover);
    }
    ensureOwnSubdir(this.layout.daemonStateDir);
    this.removeSockets();
    writeFileNoFollow(this.layout.configFile, containerdConfigToml(this.layout, this.opts.logLevel), 0o600);
    const child = spawn(this.opts.binary, ["--config", this.layout.configFile], {
      // Own session and process group: a Ctrl-C meant for us must not reach containerd.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: this.opts.env,
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) =>
        reject(new FailedPreconditionError(`cannot run ${this.opts.binary}: ${err.message}`, { cause: err })),
      );
    });
    const pid = child.pid!;
    const incarnation: Incarnation = { pid, child, exited: false, killedOnPurpose: false };
    child.once("exit", (exitCode, signal) => {
      incarnation.exited = true;
      this.opts.onChildExit(incarnation, exitCode, signal);
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      forwardContainerdLog(stream, this.opts.logger, pid);
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => this.rememberLog(chunk));
    }
    try {
      this.writePidFile(pid);
    } catch (err) {
      incarnation.killedOnPurpose = true;
      await this.terminate(incarnation, 0, undefined, []);
      throw err;
    }
    this.opts.logger.info(
      { pid, binary: this.opts.binary, config: this.layout.configFile },
      "started containerd",
    );
    return incarnation;
  }

  /** Sends `signals`, waits up to `graceMs` (or until `abort`), then SIGKILLs and waits for the exit. */
  async terminate(
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
    if (signals.length > 0) {
      this.opts.logger.warn({ pid: incarnation.pid, graceMs }, "containerd ignored SIGTERM; killing it");
    }
    signalProcess(incarnation.pid, "SIGKILL");
    if (!(await this.waitGone(incarnation, 10_000, gone))) {
      this.opts.logger.error({ pid: incarnation.pid }, "containerd survived SIGKILL for 10 s");
    }
  }

  /** Lets a running containerd go: it keeps running for the next client to adopt. */
  detach(incarnation: Incarnation): void {
    const child = incarnation.child;
    if (!child) return;
    // containerd ignores SIGPIPE, so closing our ends of its output pipes only drops its later log lines.
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.removeAllListeners("exit");
    child.unref();
  }

  /** The pid file and sockets of a containerd that is gone for good. */
  removeRuntimeFiles(): void {
    this.removeFiles([this.layout.pidFile, this.layout.socket, this.layout.ttrpcSocket]);
  }

  /** The last lines containerd logged, for an error message ("" when it logged nothing). */
  logTailMessage(): string {
    if (this.logTail.length === 0) return "";
    const lines = this.logTail.slice(-10).map((line) => `  ${parseContainerdLogLine(line).msg}`);
    return `; containerd's last log lines:\n${lines.join("\n")}`;
  }

  private removeSockets(): void {
    this.removeFiles([this.layout.socket, this.layout.ttrpcSocket]);
  }

  private removeFiles(paths: string[]): void {
    for (const path of paths) {
      try {
        rmSync(path, { force: true });
      } catch (err) {
        // A path that cannot exist (its parent is not a directory) has nothing to remove; anything
        // else (a read-only state dir) leaves a file the next start replaces.
        if ((err as NodeJS.ErrnoException).code !== "ENOTDIR") {
          this.opts.logger.warn({ err, path }, "could not remove a file of the stopped containerd");
        }
      }
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

  private readPidFile(): number | undefined {
    const pid = Number(readFileNoFollow(this.layout.pidFile)?.trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  }

  private writePidFile(pid: number): void {
    writeFileNoFollow(this.layout.pidFile, `${pid}\n`, 0o644);
  }

  private rememberLog(chunk: string): void {
    for (const line of chunk.split("\n")) {
      if (line.trim() === "") continue;
      this.logTail.push(line);
      if (this.logTail.length > LOG_TAIL_LINES) this.logTail.shift();
    }
  }
}
