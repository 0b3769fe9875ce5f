/**
 * The lifecycle shared by every HCS handle this backend owns (compute systems and processes):
 * calls on the handle are tracked, and the handle is closed only after every call on it has
 * returned and its callback is unregistered.
 */
import type { Logger } from "pino";
import { FailedPreconditionError, UnavailableError } from "../types/errors.js";
import { isFailure, toUnsigned } from "./hresult.js";
import { CallbackRegistration, type CallbackRegistry, NotificationMailbox } from "./notifications.js";
import type { HcsHandle, Vmcompute } from "./vmcompute.js";

/** What every HCS handle of a client shares: the library, the callback registry, logging, bounds. */
export interface HcsContext {
  api: Vmcompute;
  callbacks: CallbackRegistry;
  logger: Logger;
  /** Bound on every completion wait (hcsshim's default is 4 minutes). */
  operationTimeoutMs: number;
}

/** What tells one kind of HCS handle from another. */
export interface HcsHandleKind {
  /** The HcsRegister*Callback the handle uses. */
  readonly callback: "system" | "process";
  /** Names the handle in messages: "compute system", "process". */
  readonly noun: string;
  /** The log field that carries the subject. */
  readonly logField: string;
  /** The export that closes the handle. */
  close(api: Vmcompute, handle: HcsHandle): Promise<number>;
}

export abstract class HcsHandleOwner {
  readonly mailbox: NotificationMailbox;
  protected registration: CallbackRegistration | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  protected closing: Promise<void> | undefined;

  protected constructor(
    protected readonly ctx: HcsContext,
    private handle: HcsHandle,
    private readonly kind: HcsHandleKind,
    mailboxSubject: string,
  ) {
    this.mailbox = new NotificationMailbox(mailboxSubject);
  }

  /** Names the handle in messages and logs. */
  protected abstract get subject(): string;

  /**
   * Registers the callback, after the call that made the handle (as hcsshim does: HCS replays a
   * notification that came first).
   */
  protected async register(): Promise<void> {
    this.registration = await this.track(
      CallbackRegistration.register(
        this.ctx.api,
        this.ctx.callbacks,
        this.kind.callback,
        this.handle,
        this.mailbox,
      ),
    );
  }

  /**
   * Unregisters the callback and closes the handle, after every call in flight on it returned:
   * HCS must never see a handle that was closed under a running call.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const { noun, logField } = this.kind;
      const subject = this.subject;
      this.mailbox.close(new UnavailableError(`${noun} ${subject}: handle closed`));
      if (!(await settledWithin(this.inFlight, this.ctx.operationTimeoutMs))) {
        this.ctx.logger.error(
          { [logField]: subject },
          "an HCS call never returned; leaking the handle rather than closing it under the call",
        );
        return;
      }
      if (this.registration) {
        await this.registration.unregister().catch((err: unknown) => {
          this.ctx.logger.error({ [logField]: subject, err }, `unregistering the ${noun} callback failed`);
        });
      }
      const handle = this.handle;
      this.handle = 0n;
      if (handle) await closeQuietly(this.ctx, () => this.kind.close(this.ctx.api, handle), subject);
    })();
    return this.closing;
  }

  /** Runs `invoke` on the open handle, tracked; FailedPreconditionError once closing has begun. */
  protected call<T>(invoke: (handle: HcsHandle) => Promise<T>): Promise<T> {
    if (this.closing || !this.handle) {
      return Promise.reject(new FailedPreconditionError(`${this.kind.noun} ${this.subject}: handle closed`));
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
