import type { CallOptions } from "./types/client.js";
import { CanceledError, DeadlineExceededError } from "./types/errors.js";

/** One AbortSignal for a call's `signal` and `timeoutMs`, so every wait in a backend honours both. */
export function callSignal(opts: CallOptions | undefined): AbortSignal | undefined {
  const signals: AbortSignal[] = [];
  if (opts?.signal) signals.push(opts.signal);
  if (opts?.timeoutMs !== undefined) signals.push(AbortSignal.timeout(Math.max(0, opts.timeoutMs)));
  if (signals.length === 0) return undefined;
  return signals.length === 1 ? signals[0] : AbortSignal.any(signals);
}

/** The typed error for an aborted signal: a timeout is DeadlineExceeded, anything else Canceled. */
export function abortError(signal: AbortSignal, what: string): CanceledError | DeadlineExceededError {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new DeadlineExceededError(`${what}: deadline exceeded`, { cause: reason });
  }
  return new CanceledError(`${what}: canceled`, { cause: reason });
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** Sleeps, or rejects with the typed abort error. */
export function delay(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, what));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!, what));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
