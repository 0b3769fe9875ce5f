/**
 * CallOptions → one Call: the caller's signal and deadline (the client's default when the caller
 * names none) as a single AbortSignal, the closed state, and errors that start with the operation's
 * name. Every public operation of every backend goes through `Calls.run`, so they cannot differ.
 */
import { abortError } from "../call.js";
import type { CallOptions } from "../types/client.js";
import { errorFor, InvalidArgumentError, LibcontainerdError, UnavailableError } from "../types/errors.js";

/** One public operation in progress, as a driver sees it. */
export interface Call {
  /** The operation and its object ("create container web"); every error message starts with it. */
  readonly what: string;
  /** The caller's signal and the deadline together; undefined for an unbounded call without a signal. */
  readonly signal: AbortSignal | undefined;
  /** Wait for an unreachable backend (a restarting containerd) instead of failing with UnavailableError. */
  readonly waitForReady: boolean;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

export class Calls {
  private closed = false;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(readonly defaultTimeoutMs: number = DEFAULT_TIMEOUT_MS) {
    checkTimeout(defaultTimeoutMs, "defaultTimeoutMs");
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs one operation. It ends when the signal aborts or the deadline passes, as CanceledError or
   * DeadlineExceededError, even when the backend never answers (the driver's work then settles in
   * the background; `settled()` waits for it). `unbounded` operations (waiting for an exit) get no
   * default deadline.
   */
  run<T>(
    what: string,
    opts: CallOptions | undefined,
    fn: (call: Call) => Promise<T>,
    unbounded = false,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new UnavailableError(`${what}: the client is closed`));
    let timeoutMs: number | undefined;
    try {
      if (opts?.timeoutMs !== undefined) checkTimeout(opts.timeoutMs, "timeoutMs");
      timeoutMs = opts?.timeoutMs ?? (unbounded ? undefined : this.defaultTimeoutMs);
    } catch (err) {
      return Promise.reject(inContext(err, what));
    }
    const callerSignal = opts?.signal;
    if (callerSignal?.aborted) return Promise.reject(abortError(callerSignal, what));
    const deadline =
      timeoutMs !== undefined || callerSignal ? new Deadline(timeoutMs, callerSignal) : undefined;
    let operation: Promise<T>;
    try {
      operation = fn({ what, signal: deadline?.signal, waitForReady: opts?.waitForReady === true });
    } catch (err) {
      deadline?.end();
      return Promise.reject(inContext(err, what));
    }
    if (!unbounded) this.pending.add(operation);
    return new Promise<T>((resolve, reject) => {
      if (deadline) deadline.onAbort = () => reject(abortError(deadline.signal, what));
      operation.then(
        (value) => {
          this.pending.delete(operation);
          deadline?.end();
          resolve(value);
        },
        (err: unknown) => {
          this.pending.delete(operation);
          deadline?.end();
          reject(deadline?.signal.aborted ? abortError(deadline.signal, what) : inContext(err, what));
        },
      );
    });
  }

  /** Refuses new operations from now on. */
  close(): void {
    this.closed = true;
  }

  /** Resolves when every bounded operation started so far has settled. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

/**
 * An operation's deadline and the caller's signal as one AbortSignal: one timer, cleared when the
 * operation settles. (AbortSignal.timeout's timer cannot be cleared: every operation left one behind
 * for a minute, which then built a TimeoutError nobody listened for.)
 */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly forward: (() => void) | undefined;
  /** Told once when the signal aborts (the deadline passed or the caller aborted). */
  onAbort: (() => void) | undefined;

  constructor(
    timeoutMs: number | undefined,
    private readonly callerSignal: AbortSignal | undefined,
  ) {
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(
        () => this.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
        timeoutMs,
      ).unref();
    }
    if (callerSignal) {
      this.forward = () => this.abort(callerSignal.reason);
      callerSignal.addEventListener("abort", this.forward, { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private abort(reason: unknown): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort(reason);
    this.onAbort?.();
  }

  /** The operation settled: no more timer, no more listening to the caller's signal. */
  end(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.forward) this.callerSignal?.removeEventListener("abort", this.forward);
  }
}

function checkTimeout(ms: number, name: string): void {
  if (typeof ms !== "number" || !(ms >= 0) || !Number.isFinite(ms))
    throw new InvalidArgumentError(`${name} must be a finite number of milliseconds >= 0, not ${ms}`);
}

/**
 * The error as the caller sees it: typed (anything untyped is InternalError) and starting with the
 * operation's name. An error already named after it passes through unchanged.
 */
export function inContext(err: unknown, what: string): LibcontainerdError {
  if (err instanceof LibcontainerdError) {
    if (err.message.startsWith(what)) return err;
    return reworded(err, `${what}: ${err.message}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return errorFor("internal", `${what}: ${message}`, { cause: err });
}

/** The same kind of error in the core's words, keeping the backend's details and the original as cause. */
export function reworded(err: LibcontainerdError, message: string): LibcontainerdError {
  return errorFor(err.code, message, { cause: err, ...(err.origin ? { origin: err.origin } : {}) });
}
