/**
 * HCS notifications (vmcompute HCS_NOTIFICATIONS) and the callback plumbing: one koffi trampoline
 * per library dispatches by an integer context key (hcsshim's callbackMap) to a mailbox per
 * registration. The trampoline only records; all follow-up work runs later on the event loop,
 * because the HCS thread that called it is blocked until it returns.
 */
import { abortError } from "../call.js";
import { DeadlineExceededError, FailedPreconditionError, UnavailableError } from "../types/errors.js";
import { type HcsErrorContext, hcsError, hresultName, isFailure } from "./hresult.js";
import type { HcsHandle, Vmcompute } from "./vmcompute.js";

export const HcsNotification = {
  SystemExited: 0x1,
  SystemCreateCompleted: 0x2,
  SystemStartCompleted: 0x3,
  SystemPauseCompleted: 0x4,
  SystemResumeCompleted: 0x5,
  SystemCrashReport: 0x6,
  SystemSiloJobCreated: 0x7,
  SystemSaveCompleted: 0x8,
  SystemRdpEnhancedModeStateChanged: 0x9,
  SystemShutdownFailed: 0xa,
  SystemGetPropertiesCompleted: 0xb,
  SystemModifyCompleted: 0xc,
  SystemCrashInitiated: 0xd,
  SystemGuestConnectionClosed: 0xe,
  ProcessExited: 0x10000,
  ServiceDisconnect: 0x1000000,
} as const;

/** The upper nibble carries HCS_NOTIFICATION_FLAGS, not the type. */
const NOTIFICATION_TYPE_MASK = 0x0fffffff;

const NOTIFICATION_NAMES = new Map<number, string>(Object.entries(HcsNotification).map(([k, v]) => [v, k]));

export function notificationName(type: number): string {
  return NOTIFICATION_NAMES.get(type) ?? `0x${type.toString(16)}`;
}

/** Terminal events stay delivered for every later waiter; completions are consumed one per wait. */
const STICKY = new Set<number>([
  HcsNotification.SystemExited,
  HcsNotification.ProcessExited,
  HcsNotification.ServiceDisconnect,
]);

export interface Notification {
  type: number;
  status: number;
  /** Only meaningful during the callback on real HCS; the fake sends exit documents. Informational. */
  data: string | null;
}

export interface WaitOptions {
  /** Bounds the wait; omitted only for waits that last as long as a process does. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Notifications that end the wait with an error because the awaited one can no longer come. */
  interruptOn?: readonly number[];
  /** Names the wait in errors (`HcsStartComputeSystem test-1`). */
  what: string;
}

/**
 * Node exits when nothing holds the event loop, and koffi's foreign-thread callbacks do not.
 * While someone awaits a notification, an interval keeps the process alive.
 */
class KeepAlive {
  private holders = 0;
  private timer: NodeJS.Timeout | undefined;

  acquire(): () => void {
    this.holders++;
    this.timer ??= setInterval(() => {}, 1 << 30);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holders === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }
}

const keepAlive = new KeepAlive();

interface Waiter {
  type: number;
  interruptOn: readonly number[];
  what: string;
  resolve: (n: Notification) => void;
  reject: (err: Error) => void;
}

export class NotificationMailbox {
  private readonly received: Notification[] = [];
  private readonly waiters = new Set<Waiter>();
  private closedWith: Error | undefined;

  constructor(readonly subject: string) {}

  deliver(notification: Notification): void {
    this.received.push(notification);
    for (const waiter of [...this.waiters]) this.settle(waiter);
  }

  has(type: number): boolean {
    return this.received.some((n) => n.type === type);
  }

  wait(type: number, options: WaitOptions): Promise<Notification> {
    return new Promise<Notification>((resolve, reject) => {
      const { signal, timeoutMs } = options;
      if (signal?.aborted) return reject(abortError(signal, options.what));
      const release = keepAlive.acquire();
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        this.waiters.delete(waiter);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        release();
      };
      const waiter: Waiter = {
        type,
        interruptOn: options.interruptOn ?? [],
        what: options.what,
        resolve: (n) => {
          cleanup();
          resolve(n);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const onAbort = () => waiter.reject(abortError(signal!, options.what));
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            waiter.reject(
              hcsTimeoutError(`${options.what}: no ${notificationName(type)} within ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }
      this.waiters.add(waiter);
      this.settle(waiter);
    });
  }

  /** Fails every current and future wait: the handle is gone. */
  close(reason: Error): void {
    this.closedWith ??= reason;
    for (const waiter of [...this.waiters]) waiter.reject(reason);
  }

  private settle(waiter: Waiter): void {
    const index = this.received.findIndex((n) => n.type === waiter.type);
    if (index >= 0) {
      const notification = this.received[index]!;
      if (!STICKY.has(notification.type)) this.received.splice(index, 1);
      waiter.resolve(notification);
      return;
    }
    const interrupt = this.received.find((n) => waiter.interruptOn.includes(n.type));
    if (interrupt) {
      waiter.reject(interruptError(interrupt, waiter.what, this.subject));
      return;
    }
    if (this.closedWith) waiter.reject(this.closedWith);
  }
}

function hcsTimeoutError(message: string): Error {
  return new DeadlineExceededError(message);
}

function interruptError(n: Notification, what: string, subject: string): Error {
  if (n.type === HcsNotification.ServiceDisconnect) {
    return new UnavailableError(`${what}: the HCS service disconnected`);
  }
  const status = isFailure(n.status) ? ` (${hresultName(n.status)})` : "";
  return new FailedPreconditionError(`${what}: ${subject} exited before ${what} completed${status}`);
}

/** Turns a completion's status into an error carrying the notification data's ErrorEvents, if any. */
export function completionError(n: Notification, context: HcsErrorContext): Error | undefined {
  if (!isFailure(n.status)) return undefined;
  return hcsError(n.status, { ...context, resultJson: context.resultJson ?? n.data });
}

/** Context keys handed to HCS. Never 0: some layers treat a NULL context as "none". */
export class CallbackRegistry {
  private nextKey = 1n;
  private readonly mailboxes = new Map<bigint, NotificationMailbox>();

  allocate(mailbox: NotificationMailbox): bigint {
    const key = this.nextKey++;
    this.mailboxes.set(key, mailbox);
    return key;
  }

  release(key: bigint): void {
    this.mailboxes.delete(key);
  }

  get size(): number {
    return this.mailboxes.size;
  }

  readonly dispatch = (type: number, context: bigint, status: number, data: string | null): void => {
    this.mailboxes.get(context)?.deliver({ type: type & NOTIFICATION_TYPE_MASK, status, data });
  };
}

const ERROR_TIMEOUT_HRESULT = 0x800705b4;

/**
 * One HcsRegister*Callback registration. Unregistering runs on a vmcompute thread, never the main
 * one: it waits for a callback in flight, and that callback waits for the main thread.
 */
export class CallbackRegistration {
  private constructor(
    private readonly api: Vmcompute,
    private readonly registry: CallbackRegistry,
    private readonly kind: "system" | "process",
    private readonly key: bigint,
    private readonly callbackHandle: HcsHandle,
  ) {}

  static async register(
    api: Vmcompute,
    registry: CallbackRegistry,
    kind: "system" | "process",
    handle: HcsHandle,
    mailbox: NotificationMailbox,
  ): Promise<CallbackRegistration> {
    const key = registry.allocate(mailbox);
    try {
      const { hresult, callbackHandle } =
        kind === "system"
          ? await api.registerComputeSystemCallback(handle, key)
          : await api.registerProcessCallback(handle, key);
      if (isFailure(hresult)) {
        throw hcsError(hresult, {
          operation: kind === "system" ? "HcsRegisterComputeSystemCallback" : "HcsRegisterProcessCallback",
          subject: mailbox.subject,
        });
      }
      return new CallbackRegistration(api, registry, kind, key, callbackHandle);
    } catch (err) {
      registry.release(key);
      throw err;
    }
  }

  /**
   * Retries while HCS reports ERROR_TIMEOUT (a callback still running): the registration is
   * already stopped then, but its handle stays open until an unregister succeeds.
   */
  async unregister(): Promise<void> {
    const operation =
      this.kind === "system" ? "HcsUnregisterComputeSystemCallback" : "HcsUnregisterProcessCallback";
    for (let attempt = 0; ; attempt++) {
      const hresult =
        this.kind === "system"
          ? await this.api.unregisterComputeSystemCallback(this.callbackHandle)
          : await this.api.unregisterProcessCallback(this.callbackHandle);
      if (!isFailure(hresult)) break;
      if (hresult >>> 0 !== ERROR_TIMEOUT_HRESULT || attempt >= 5) {
        // The context key stays allocated: HCS may still hold it, and a late callback must find nothing worse than a stale mailbox.
        throw hcsError(hresult, { operation });
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * (attempt + 1)));
    }
    this.registry.release(this.key);
  }
}
