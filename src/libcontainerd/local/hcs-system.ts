/**
 * A compute system handle (hcsshim internal/hcs/system.go): asynchronous operations complete
 * through notifications, every wait is bounded, and the handle is closed only after every call
 * on it has returned and its callback is unregistered.
 */
import type { Logger } from "pino";
import { throwIfAborted } from "../call.js";
import { FailedPreconditionError, InternalError, UnavailableError } from "../types/errors.js";
import { hcsError, isFailure, isPending, toUnsigned } from "./hresult.js";
import {
  CallbackRegistration,
  type CallbackRegistry,
  completionError,
  HcsNotification,
  NotificationMailbox,
} from "./notifications.js";
import type { HcsCallResult, HcsHandle, HcsProcessInformation, Vmcompute } from "./vmcompute.js";

export interface HcsContext {
  api: Vmcompute;
  callbacks: CallbackRegistry;
  logger: Logger;
  /** Bound on every completion wait (hcsshim's default is 4 minutes). */
  operationTimeoutMs: number;
}

/** hcsshim's IsAlreadyStopped ∪ IsNotExist: a stop request that found nothing to stop. */
const ALREADY_STOPPED = new Set([0xc0370110, 0x80370110, 0x8037011f, 0x80070490, 0xc037010e]);

export function isAlreadyStopped(hresult: number): boolean {
  return ALREADY_STOPPED.has(toUnsigned(hresult));
}

export class HcsSystem {
  readonly mailbox: NotificationMailbox;
  private registration: CallbackRegistration | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly ctx: HcsContext,
    readonly id: string,
    private handle: HcsHandle,
  ) {
    this.mailbox = new NotificationMailbox(`compute system ${id}`);
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

  private async register(): Promise<void> {
    this.registration = await this.track(
      CallbackRegistration.register(this.ctx.api, this.ctx.callbacks, "system", this.handle, this.mailbox),
    );
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

  /**
   * Unregisters the callback and closes the handle, after every call in flight on it returned:
   * HCS must never see a handle that was closed under a running call.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.mailbox.close(new UnavailableError(`compute system ${this.id}: handle closed`));
      if (!(await settledWithin(this.inFlight, this.ctx.operationTimeoutMs))) {
        this.ctx.logger.error(
          { id: this.id },
          "an HCS call never returned; leaking the handle rather than closing it under the call",
        );
        return;
      }
      if (this.registration) {
        await this.registration.unregister().catch((err: unknown) => {
          this.ctx.logger.error({ id: this.id, err }, "unregistering the compute system callback failed");
        });
      }
      const handle = this.handle;
      this.handle = 0n;
      if (handle) await closeQuietly(this.ctx, () => this.ctx.api.closeComputeSystem(handle), this.id);
    })();
    return this.closing;
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

  private call<T>(invoke: (handle: HcsHandle) => Promise<T>): Promise<T> {
    if (this.closing || !this.handle) {
      return Promise.reject(new FailedPreconditionError(`compute system ${this.id}: handle closed`));
    }
    return this.track(invoke(this.handle));
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const done = () => this.inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }
}

/** False when some call is still running after `timeoutMs`: then its handle must stay open. */
export async function settledWithin(
  calls: ReadonlySet<Promise<unknown>>,
  timeoutMs: number,
): Promise<boolean> {
  if (calls.size === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([Promise.allSettled([...calls]).then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export async function closeQuietly(
  ctx: HcsContext,
  close: () => Promise<number>,
  subject: string,
): Promise<void> {
  try {
    const hresult = await close();
    if (isFailure(hresult)) {
      ctx.logger.error({ subject, hresult: toUnsigned(hresult) }, "closing an HCS handle failed");
    }
  } catch (err) {
    ctx.logger.error({ subject, err }, "closing an HCS handle failed");
  }
}
