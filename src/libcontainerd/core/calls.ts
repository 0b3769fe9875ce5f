/**
 * CallOptions → one Call: the caller's signal and deadline (the client's default when the caller
 * names none) as a single AbortSignal, the closed state, and errors that start with the operation's
 * name. Every public operation of every backend goes through `Calls.run`, so they cannot differ.
 */
import { abortError, callSignal } from "../call.js";
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
    let signal: AbortSignal | undefined;
    try {
      if (opts?.timeoutMs !== undefined) checkTimeout(opts.timeoutMs, "timeoutMs");
      const timeoutMs = opts?.timeoutMs ?? (unbounded ? undefined : this.defaultTimeoutMs);
      signal = callSignal({
        ...(opts?.signal ? { signal: opts.signal } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
    } catch (err) {
      return Promise.reject(inContext(err, what));
    }
    if (signal?.aborted) return Promise.reject(abortError(signal, what));
    let operation: Promise<T>;
    try {
      operation = fn({ what, signal, waitForReady: opts?.waitForReady === true });
    } catch (err) {
      return Promise.reject(inContext(err, what));
    }
    if (!unbounded) this.track(operation);
    if (!signal) return operation.catch((err: unknown) => Promise.reject(inContext(err, what)));
    const bound = signal;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(abortError(bound, what));
      bound.addEventListener("abort", onAbort, { once: true });
      operation.then(
        (value) => {
          bound.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err: unknown) => {
          bound.removeEventListener("abort", onAbort);
          reject(bound.aborted ? abortError(bound, what) : inContext(err, what));
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

  private track(operation: Promise<unknown>): void {
    this.pending.add(operation);
    const done = () => this.pending.delete(operation);
    operation.then(done, done);
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
