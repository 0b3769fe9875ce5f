/**
 * The supervisor's decisions, apart from the processes they act on: when an unanswered containerd
 * is hung (and replaced) rather than busy (and left to work), and how long to wait between restarts.
 */

export interface HangPolicy {
  /** Consecutive unanswered checks before containerd is judged at all. */
  unhealthyThreshold: number;
  /** CPU time (clock ticks) containerd must use over those checks to count as busy, not hung. */
  minProgressTicks: number;
  /** Unanswered for this long is hung even while its CPU time moves (a livelock). */
  maxBusyMs: number;
}

export type HangVerdict =
  /** Not enough failed checks yet to judge. */
  | { kind: "waiting" }
  /** It answers nothing, but it is working: leave it be and look again. */
  | { kind: "busy"; progressTicks: number; answeredOtherCalls: boolean }
  | { kind: "hung"; reason: "stopped" | "no-progress" | "busy-too-long" };

export interface ProbeObservation {
  /** State T: SIGSTOPped, holding its socket, answering nothing. */
  stopped: boolean;
  /** Its CPU time now (undefined when /proc cannot tell). */
  cpuTicks: number | undefined;
  /** When it last answered any other call from this process (see `lastAnswerAt` in transport.ts). */
  lastAnswerAt: number | undefined;
  now: number;
}

/**
 * Tracks unanswered health checks. Under load a check may time out while containerd works through
 * hundreds of requests; killing it then loses every one of them. So a containerd is replaced only
 * when it is stopped, or when over `unhealthyThreshold` unanswered checks it showed no progress (its
 * CPU time stood still and it answered no other call), or when its checks have gone unanswered for
 * `maxBusyMs` however busy it looks.
 */
export class HangDetector {
  private failures = 0;
  private unansweredSince: number | undefined;
  private windowStartTicks: number | undefined;
  private windowStartedAt = 0;

  constructor(private readonly policy: HangPolicy) {}

  get consecutiveFailures(): number {
    return this.failures;
  }

  answered(): void {
    this.failures = 0;
    this.unansweredSince = undefined;
    this.windowStartTicks = undefined;
  }

  unanswered(observation: ProbeObservation): HangVerdict {
    this.failures++;
    this.unansweredSince ??= observation.now;
    if (this.failures === 1) this.startWindow(observation);
    if (this.failures < this.policy.unhealthyThreshold) return { kind: "waiting" };
    if (observation.stopped) return { kind: "hung", reason: "stopped" };
    const progressTicks =
      observation.cpuTicks !== undefined && this.windowStartTicks !== undefined
        ? observation.cpuTicks - this.windowStartTicks
        : 0;
    const answeredOtherCalls =
      observation.lastAnswerAt !== undefined && observation.lastAnswerAt >= this.windowStartedAt;
    if (progressTicks < this.policy.minProgressTicks && !answeredOtherCalls) {
      return { kind: "hung", reason: "no-progress" };
    }
    if (observation.now - this.unansweredSince >= this.policy.maxBusyMs) {
      return { kind: "hung", reason: "busy-too-long" };
    }
    // Judge the next window on its own progress, so a containerd that hangs after being busy is caught.
    this.failures = 0;
    this.startWindow(observation);
    return { kind: "busy", progressTicks, answeredOtherCalls };
  }

  private startWindow(observation: ProbeObservation): void {
    this.windowStartTicks = observation.cpuTicks;
    this.windowStartedAt = observation.now;
  }
}

export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
  /** A containerd that served this long counts as stable: the next restart starts at `initialMs`. */
  resetAfterMs: number;
}

/** Doubling delays between restarts that keep failing, back to the first step after a stable run. */
export class RestartSchedule {
  private restartsSinceStable = 0;

  constructor(private readonly settings: BackoffSettings) {}

  /** Call when a restart begins, with when the containerd being replaced started serving. */
  beginRestart(previousServingSince: number | undefined, now: number): void {
    if (previousServingSince !== undefined && now - previousServingSince >= this.settings.resetAfterMs) {
      this.restartsSinceStable = 0;
    }
  }

  /** The delay before the next launch attempt. */
  nextDelayMs(): number {
    const delay = Math.min(this.settings.maxMs, this.settings.initialMs * 2 ** this.restartsSinceStable);
    this.restartsSinceStable++;
    return delay;
  }
}
