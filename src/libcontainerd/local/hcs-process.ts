/**
 * A process handle (hcsshim internal/hcs/process.go). The exit comes from ProcessExited, the
 * code from HcsGetProcessProperties; HCS replays an exit that happened before the callback was
 * registered, so a process that dies at once is still reported.
 */
import { FailedPreconditionError, InternalError } from "../types/errors.js";
import { closeQuietly, type HcsHandleKind, HcsHandleOwner } from "./hcs-handle.js";
import { type HcsContext, type HcsSystem, isAlreadyStopped } from "./hcs-system.js";
import { ERROR_ACCESS_DENIED, hcsError, isFailure, isPending, toUnsigned } from "./hresult.js";
import { HcsNotification } from "./notifications.js";
import type { HcsHandle, HcsProcessInformation } from "./vmcompute.js";

/** hcsschema.ProcessStatus; every field is omitempty in Go, so absent means 0/false. */
export interface HcsProcessStatus {
  ProcessId?: number;
  Exited?: boolean;
  ExitCode?: number;
  LastWaitResult?: number;
}

/** hcsshim's processSignalResult: ErrVmcomputeOperationInvalidState, ErrComputeSystemDoesNotExist, ErrElementNotFound. */
const SIGNAL_NOT_DELIVERED = new Set([0xc0370105, 0xc037010e, 0x80070490]);
const FORCE_UNBLOCK_MS = 1000;

const PROCESS_HANDLE: HcsHandleKind = {
  callback: "process",
  noun: "process",
  logField: "process",
  close: (api, handle) => api.closeProcess(handle),
};

/** `close()` unregisters and closes the handle once no call is in flight; it does not stop the process. */
export class HcsProcess extends HcsHandleOwner {
  private forceExitTimer: NodeJS.Timeout | undefined;
  private forcedExit = false;
  /** The failing status ProcessExited came with: the wait itself failed. */
  private exitWaitFailure: number | undefined;
  private killDelivered = false;

  private constructor(
    ctx: HcsContext,
    readonly system: HcsSystem,
    readonly pid: number,
    handle: HcsHandle,
  ) {
    super(ctx, handle, PROCESS_HANDLE, `process ${pid} in ${system.id}`);
  }

  /**
   * HcsCreateProcess, then the callback. `closeStdio` releases the returned stdio handles if the
   * process cannot be set up; once this resolves, the caller owns them.
   */
  static async create(
    system: HcsSystem,
    parameters: object,
    closeStdio: (info: HcsProcessInformation) => void,
  ): Promise<{ process: HcsProcess; info: HcsProcessInformation }> {
    const { process: handle, info } = await system.createProcessHandle(parameters);
    const process = new HcsProcess(system.ctx, system, info.processId, handle);
    try {
      await process.register();
      return { process, info };
    } catch (err) {
      closeStdio(info);
      await process.terminate().catch(() => {});
      await process.close();
      throw err;
    }
  }

  override get subject(): string {
    return `${this.system.id}/${this.pid}`;
  }

  get exited(): boolean {
    return this.mailbox.has(HcsNotification.ProcessExited);
  }

  /** HCS lost the process: ServiceDisconnect came instead of its exit. */
  get lost(): boolean {
    return this.mailbox.has(HcsNotification.ServiceDisconnect);
  }

  /** Resolves at ProcessExited. Unbounded unless a signal is given: a process may run for days. */
  async waitExited(signal?: AbortSignal): Promise<void> {
    const n = await this.mailbox.wait(HcsNotification.ProcessExited, {
      signal,
      interruptOn: [HcsNotification.ServiceDisconnect],
      what: `wait for process ${this.subject}`,
    });
    if (isFailure(n.status)) this.exitWaitFailure = n.status;
  }

  async status(): Promise<HcsProcessStatus> {
    const r = await this.call((h) => this.ctx.api.getProcessProperties(h));
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, {
        operation: "HcsGetProcessProperties",
        subject: this.subject,
        resultJson: r.result,
      });
    }
    if (!r.properties) throw new InternalError(`HcsGetProcessProperties ${this.subject}: empty properties`);
    return JSON.parse(r.properties) as HcsProcessStatus;
  }

  /**
   * hcsshim's waitBackground (internal/hcs/process.go): -1 unless the wait succeeded, i.e. ProcessExited came
   * with a success status (a failing one is the wait's error, and the properties are not read) and
   * LastWaitResult is 0. moby's reap reports -1 for the same.
   */
  async exitCode(): Promise<number> {
    if (this.forcedExit) return -1;
    if (this.exitWaitFailure !== undefined) {
      this.ctx.logger.warn(
        { process: this.subject, status: toUnsigned(this.exitWaitFailure) },
        "ProcessExited reported a failure; exit code -1",
      );
      return -1;
    }
    const status = await this.status();
    if (!status.Exited) throw new FailedPreconditionError(`process ${this.subject} has not exited`);
    return (status.LastWaitResult ?? 0) === 0 ? (status.ExitCode ?? 0) : -1;
  }

  /** HcsTerminateProcess; the exit arrives later as ProcessExited. Already gone counts as done. */
  async terminate(): Promise<void> {
    if (this.exited) return;
    const r = await this.call((h) => this.ctx.api.terminateProcess(h));
    if (!isFailure(r.hresult) || isPending(r.hresult)) return;
    if (isAlreadyStopped(r.hresult) || toUnsigned(r.hresult) === ERROR_ACCESS_DENIED) return;
    throw hcsError(r.hresult, {
      operation: "HcsTerminateProcess",
      subject: this.subject,
      resultJson: r.result,
    });
  }

  /**
   * hcsshim's Process.Kill (internal/hcs/process.go at 7c9ff7f48): HCS serializes signals per
   * system handle, so the terminate goes through a second system handle and HcsOpenProcess and
   * cannot queue behind a signal that never completes. If no second system handle can be opened,
   * the whole compute system is terminated, "so that no container is left behind". A process
   * that is already gone, or ERROR_ACCESS_DENIED (TerminateProcess on a process that has just
   * ended), counts as killed; a kill already delivered is not sent again.
   */
  async kill(): Promise<void> {
    if (this.exited || this.killDelivered) return;
    const api = this.ctx.api;
    const opened = await api.openComputeSystem(this.system.id);
    const system = opened.system;
    try {
      if (isFailure(opened.hresult)) {
        this.ctx.logger.error(
          { process: this.subject, hresult: toUnsigned(opened.hresult) },
          "HcsOpenComputeSystem failed; terminating the compute system",
        );
        await this.system.terminate();
        this.killDelivered = true;
        return;
      }
      const reopened = await api.openProcess(system, this.pid);
      const process = reopened.process;
      try {
        if (isFailure(reopened.hresult)) {
          if (isAlreadyStopped(reopened.hresult)) return;
          throw hcsError(reopened.hresult, {
            operation: "HcsOpenProcess",
            subject: this.subject,
            resultJson: reopened.result,
          });
        }
        const r = await api.terminateProcess(process);
        // INVALID_STATE, SYSTEM_NOT_FOUND, ERROR_NOT_FOUND: hcsshim's processSignalResult counts the kill "not
        // delivered" (the process is going or gone) and returns no error; a later kill tries again.
        if (SIGNAL_NOT_DELIVERED.has(toUnsigned(r.hresult))) return;
        if (
          isFailure(r.hresult) &&
          !isAlreadyStopped(r.hresult) &&
          toUnsigned(r.hresult) !== ERROR_ACCESS_DENIED
        ) {
          throw hcsError(r.hresult, {
            operation: "HcsTerminateProcess",
            subject: this.subject,
            resultJson: r.result,
          });
        }
        this.killDelivered = true;
      } finally {
        if (process) await closeQuietly(this.ctx, () => api.closeProcess(process), this.subject);
      }
    } finally {
      if (system) await closeQuietly(this.ctx, () => api.closeComputeSystem(system), this.system.id);
    }
  }

  /**
   * HcsSignalProcess; true when delivered. INVALID_STATE, SYSTEM_NOT_FOUND and ERROR_NOT_FOUND mean
   * "not delivered": the process is gone, whether or not its exit was seen. As hcsshim does
   * (internal/hcs/process.go processSignalResult, 7c9ff7f48), a wait that has not seen the exit a
   * second later is unblocked with exit code -1 (an HCS deadlock would otherwise hang it).
   */
  async signal(options: object): Promise<boolean> {
    const r = await this.call((h) => this.ctx.api.signalProcess(h, JSON.stringify(options)));
    if (!isFailure(r.hresult)) return true;
    if (SIGNAL_NOT_DELIVERED.has(toUnsigned(r.hresult))) {
      if (!this.exited) this.forceExitLater(r.hresult);
      return false;
    }
    throw hcsError(r.hresult, { operation: "HcsSignalProcess", subject: this.subject, resultJson: r.result });
  }

  private forceExitLater(status: number): void {
    if (this.forceExitTimer) return;
    this.forceExitTimer = setTimeout(() => {
      if (this.exited) return;
      this.ctx.logger.warn(
        { process: this.subject, status: toUnsigned(status) },
        "force unblocking process waits",
      );
      this.forcedExit = true;
      this.mailbox.deliver({ type: HcsNotification.ProcessExited, status, data: null });
    }, FORCE_UNBLOCK_MS);
    this.forceExitTimer.unref();
  }

  async modify(settings: object): Promise<void> {
    const r = await this.call((h) => this.ctx.api.modifyProcess(h, JSON.stringify(settings)));
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, {
        operation: "HcsModifyProcess",
        subject: this.subject,
        resultJson: r.result,
      });
    }
  }
}
