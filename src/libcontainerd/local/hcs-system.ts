/**
 * A compute system handle (hcsshim internal/hcs/system.go): asynchronous operations complete
 * through notifications, every wait is bounded, and the handle is closed only after every call
 * on it has returned and its callback is unregistered.
 */
import { throwIfAborted } from "../call.js";
import { InternalError } from "../types/errors.js";
import { closeQuietly, type HcsContext, type HcsHandleKind, HcsHandleOwner } from "./hcs-handle.js";
import { hcsError, isFailure, isPending, toUnsigned } from "./hresult.js";
import { completionError, HcsNotification } from "./notifications.js";
import type { HcsCallResult, HcsHandle, HcsProcessInformation } from "./vmcompute.js";

export { closeQuietly, type HcsContext, settledWithin } from "./hcs-handle.js";

/** hcsshim's IsAlreadyStopped ∪ IsNotExist: a stop request that found nothing to stop. */
const ALREADY_STOPPED = new Set([0xc0370110, 0x80370110, 0x8037011f, 0x80070490, 0xc037010e]);

export function isAlreadyStopped(hresult: number): boolean {
  return ALREADY_STOPPED.has(toUnsigned(hresult));
}

const SYSTEM_HANDLE: HcsHandleKind = {
  callback: "system",
  noun: "compute system",
  logField: "id",
  close: (api, handle) => api.closeComputeSystem(handle),
};

export class HcsSystem extends HcsHandleOwner {
  /** Public here (processes are made with their system's context); protected in the base. */
  declare readonly ctx: HcsContext;

  private constructor(
    ctx: HcsContext,
    readonly id: string,
    handle: HcsHandle,
  ) {
    super(ctx, handle, SYSTEM_HANDLE, `compute system ${id}`);
  }

  /**
   * HcsCreateComputeSystem, then the callback (registered after the call, as hcsshim does: HCS
   * replays a completion that came first), then SystemCreateCompleted when the call was pending.
   * On any failure the half-made system is terminated and its handle closed.
   */
  static async create(
    ctx: HcsContext,
    id: string,
    document: string,
    signal?: AbortSignal,
  ): Promise<HcsSystem> {
    const created = await ctx.api.createComputeSystem(id, document);
    const pending = isPending(created.hresult);
    if (isFailure(created.hresult) && !pending) {
      if (created.system) await closeQuietly(ctx, () => ctx.api.closeComputeSystem(created.system), id);
      throw hcsError(created.hresult, {
        operation: "HcsCreateComputeSystem",
        subject: id,
        resultJson: created.result,
      });
    }
    const system = new HcsSystem(ctx, id, created.system);
    try {
      await system.register();
      if (pending)
        await system.completion(HcsNotification.SystemCreateCompleted, "HcsCreateComputeSystem", signal);
      throwIfAborted(signal, `create ${id}`);
      return system;
    } catch (err) {
      await system.terminateAndClose();
      throw err;
    }
  }

  /** Another handle to an existing system (NotFoundError when there is none). */
  static async open(ctx: HcsContext, id: string): Promise<HcsSystem> {
    const opened = await ctx.api.openComputeSystem(id);
    if (isFailure(opened.hresult)) {
      if (opened.system) await closeQuietly(ctx, () => ctx.api.closeComputeSystem(opened.system), id);
      throw hcsError(opened.hresult, {
        operation: "HcsOpenComputeSystem",
        subject: id,
        resultJson: opened.result,
      });
    }
    const system = new HcsSystem(ctx, id, opened.system);
    try {
      await system.register();
      return system;
    } catch (err) {
      await system.close();
      throw err;
    }
  }

  protected override get subject(): string {
    return this.id;
  }

  get exited(): boolean {
    return this.mailbox.has(HcsNotification.SystemExited);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  start(signal?: AbortSignal): Promise<void> {
    return this.asyncOperation(
      "HcsStartComputeSystem",
      (h) => this.ctx.api.startComputeSystem(h),
      HcsNotification.SystemStartCompleted,
      signal,
    );
  }

  pause(signal?: AbortSignal): Promise<void> {
    return this.asyncOperation(
      "HcsPauseComputeSystem",
      (h) => this.ctx.api.pauseComputeSystem(h),
      HcsNotification.SystemPauseCompleted,
      signal,
    );
  }

  resume(signal?: AbortSignal): Promise<void> {
    return this.asyncOperation(
      "HcsResumeComputeSystem",
      (h) => this.ctx.api.resumeComputeSystem(h),
      HcsNotification.SystemResumeCompleted,
      signal,
    );
  }

  /** Asks for a graceful stop; the completion is SystemExited. False when it was already stopped. */
  shutdown(): Promise<boolean> {
    return this.stopRequest("HcsShutdownComputeSystem", (h) => this.ctx.api.shutdownComputeSystem(h));
  }

  /** Forces a stop; the completion is SystemExited. False when it was already stopped. */
  terminate(): Promise<boolean> {
    return this.stopRequest("HcsTerminateComputeSystem", (h) => this.ctx.api.terminateComputeSystem(h));
  }

  async waitExited(timeoutMs: number | undefined, signal?: AbortSignal): Promise<void> {
    const n = await this.mailbox.wait(HcsNotification.SystemExited, {
      timeoutMs,
      signal,
      interruptOn: [HcsNotification.ServiceDisconnect],
      what: `wait for ${this.id} to exit`,
    });
    // 0xC0370106 (unexpected exit) is still an exit; hcsshim records it and carries on.
    if (isFailure(n.status))
      this.ctx.logger.warn({ id: this.id, status: toUnsigned(n.status) }, "compute system exited abnormally");
  }

  /** Shutdown, then Terminate when shutdown fails or takes longer than `timeoutMs` (moby's shutdownContainer). */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exited) return;
    try {
      if (await this.shutdown()) await this.waitExited(timeoutMs);
      return;
    } catch (err) {
      this.ctx.logger.warn({ id: this.id, err }, "shutdown failed, terminating");
    }
    if (await this.terminate()) await this.waitExited(timeoutMs);
  }

  async properties<T>(query: object): Promise<T> {
    const r = await this.call((h) => this.ctx.api.getComputeSystemProperties(h, JSON.stringify(query)));
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, {
        operation: "HcsGetComputeSystemProperties",
        subject: this.id,
        resultJson: r.result,
      });
    }
    if (!r.properties) throw new InternalError(`HcsGetComputeSystemProperties ${this.id}: empty properties`);
    return JSON.parse(r.properties) as T;
  }

  /** HcsModifyComputeSystem: synchronous; any failure, pending included, is an error (hcsshim System.Modify). */
  async modify(request: object): Promise<void> {
    const r = await this.call((h) => this.ctx.api.modifyComputeSystem(h, JSON.stringify(request)));
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, {
        operation: "HcsModifyComputeSystem",
        subject: this.id,
        resultJson: r.result,
      });
    }
  }

  /** HcsCreateProcess. The caller owns the returned stdio handles. */
  async createProcessHandle(
    parameters: object,
  ): Promise<{ process: HcsHandle; info: HcsProcessInformation }> {
    const r = await this.call((h) => this.ctx.api.createProcess(h, JSON.stringify(parameters)));
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, { operation: "HcsCreateProcess", subject: this.id, resultJson: r.result });
    }
    return { process: r.process, info: r.info };
  }

  /** Best-effort cleanup of a system whose creation or start failed. */
  async terminateAndClose(): Promise<void> {
    try {
      // Without a registration no SystemExited can arrive: ask for the stop and do not wait for it.
      const stopping = !this.exited && (await this.terminate());
      if (stopping && this.registration) await this.waitExited(this.ctx.operationTimeoutMs);
    } catch (err) {
      this.ctx.logger.warn({ id: this.id, err }, "terminating a failed compute system");
    }
    await this.close();
  }

  private async asyncOperation(
    operation: string,
    invoke: (handle: HcsHandle) => Promise<HcsCallResult>,
    completed: number,
    signal?: AbortSignal,
  ): Promise<void> {
    throwIfAborted(signal, `${operation} ${this.id}`);
    const r = await this.call(invoke);
    if (isPending(r.hresult)) return this.completion(completed, operation, signal);
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, { operation, subject: this.id, resultJson: r.result });
    }
  }

  private async completion(type: number, operation: string, signal?: AbortSignal): Promise<void> {
    const n = await this.mailbox.wait(type, {
      timeoutMs: this.ctx.operationTimeoutMs,
      signal,
      interruptOn: [HcsNotification.SystemExited, HcsNotification.ServiceDisconnect],
      what: `${operation} ${this.id}`,
    });
    const err = completionError(n, { operation, subject: this.id });
    if (err) throw err;
  }

  private async stopRequest(
    operation: string,
    invoke: (handle: HcsHandle) => Promise<HcsCallResult>,
  ): Promise<boolean> {
    if (this.exited) return false;
    const r = await this.call(invoke);
    if (isPending(r.hresult) || !isFailure(r.hresult)) return true;
    if (isAlreadyStopped(r.hresult)) return false;
    throw hcsError(r.hresult, { operation, subject: this.id, resultJson: r.result });
  }
}
