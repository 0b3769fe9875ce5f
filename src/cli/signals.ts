import { constants } from "node:os";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { CliError } from "./errors.js";

/** Signals ctrd passes on to the container process, as `docker run` does with its signal proxy. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
];

/** The shell's status for a process ended by `signal`. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Listens for Ctrl-C and the forwarded signals while a container process runs, and remembers those
 * that arrive before there is a process to pass them to. `stop()` removes every listener.
 */
export class SignalRelay {
  interrupts = 0;
  /** The last forwarded signal that arrived; used when it came before the process started. */
  forwarded: NodeJS.Signals | undefined;
  private target: { interrupt(count: number): void; forward(signal: NodeJS.Signals): void } | undefined;
  private readonly stopping = new AbortController();
  private readonly onInterrupt = (): void => {
    this.interrupts++;
    this.stopping.abort();
    this.target?.interrupt(this.interrupts);
  };
  private readonly onForward = (signal: NodeJS.Signals): void => {
    this.forwarded = signal;
    this.stopping.abort();
    this.target?.forward(signal);
  };

  constructor() {
    process.on("SIGINT", this.onInterrupt);
    for (const signal of FORWARDED_SIGNALS) process.on(signal, this.onForward);
  }

  /** Ctrl-C without the key: the same stop, for a reason other than a signal (our output's reader left). */
  interrupt(): void {
    this.onInterrupt();
  }

  /** True once anything asked ctrd to stop before the process started. */
  get stopRequested(): boolean {
    return this.interrupts > 0 || this.forwarded !== undefined;
  }

  /** Aborted at the first stop request: for what runs before there is a process (a pull). */
  get stopSignal(): AbortSignal {
    return this.stopping.signal;
  }

  /** ctrd's status when it stopped before the process ran: 130 for Ctrl-C, else the signal's. */
  get stoppedExitCode(): number {
    return signalExitCode(this.interrupts > 0 || !this.forwarded ? "SIGINT" : this.forwarded);
  }

  /** From now on signals go to `target`; any that came earlier are delivered at once. */
  attach(target: { interrupt(count: number): void; forward(signal: NodeJS.Signals): void }): void {
    this.target = target;
    if (this.interrupts > 0) target.interrupt(this.interrupts);
    else if (this.forwarded) target.forward(this.forwarded);
  }

  stop(): void {
    this.target = undefined;
    process.off("SIGINT", this.onInterrupt);
    for (const signal of FORWARDED_SIGNALS) process.off(signal, this.onForward);
  }
}

/**
 * Runs `work` with a signal that Ctrl-C or SIGTERM aborts, so that what it made is undone (a pull's
 * lease, a save's unfinished file) before ctrd exits with the signal's status; dying at once left
 * them. A second signal ends ctrd without waiting.
 */
export async function untilInterrupted<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) process.exit(signalExitCode(signal));
    received = signal;
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work(controller.signal);
  } catch (err) {
    if (received && isErrorCode(err, "canceled"))
      throw new CliError((err as Error).message, "canceled", signalExitCode(received), { cause: err });
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
