/**
 * Exactly-once exits, for every backend: an exit is published once per (container, process, pid)
 * however many times the backend reports it (containerd's events, its Wait and Delete replies, a
 * resync after a reconnect), and the last exit of each process is remembered for waits that come
 * after the process is gone.
 */
import type { EventFanout } from "../event-queue.js";
import type { ExitStatus } from "../types/client.js";

/** Enough to deduplicate and answer late waits over minutes of heavy churn; bounds the memory. */
const MAX_REMEMBERED_EXITS = 10_000;

const processKey = (containerId: string, processId: string) => `${containerId}\u0000${processId}`;

export interface ExitReport {
  /** When the backend says the event happened; default now. */
  timestamp?: Date;
  /** Why the status is not the process's own (it went away while nobody could watch it). */
  error?: Error;
}

export class ExitLedger {
  /** Exits already published, keyed by container, process and pid. Oldest first out. */
  private readonly delivered = new Set<string>();
  /** The last exit per (container, process). Oldest first out. */
  private readonly last = new Map<string, ExitStatus>();

  constructor(private readonly fanout: EventFanout) {}

  /** Publishes the exit unless it was already published; false for a duplicate. */
  publish(
    containerId: string,
    processId: string,
    pid: number,
    status: ExitStatus,
    report?: ExitReport,
  ): boolean {
    const id = processKey(containerId, processId);
    const exitKey = `${id}\u0000${pid}`;
    if (this.delivered.has(exitKey)) return false;
    this.delivered.add(exitKey);
    if (this.delivered.size > MAX_REMEMBERED_EXITS) {
      const oldest = this.delivered.values().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
    this.remember(id, status);
    this.fanout.publish({
      type: "exit",
      containerId,
      processId,
      pid,
      exitCode: status.exitCode,
      exitedAt: status.exitedAt,
      timestamp: report?.timestamp ?? new Date(),
      ...(report?.error ? { error: report.error } : {}),
    });
    return true;
  }

  /** Whether this exact process (pid included) has had its exit published. */
  published(containerId: string, processId: string, pid: number): boolean {
    return this.delivered.has(`${processKey(containerId, processId)}\u0000${pid}`);
  }

  /**
   * Remembers an exit learned from a reply (Wait, Delete), for later waits. It is not published:
   * the backend's event delivers it, in order after the process's start.
   */
  note(containerId: string, processId: string, status: ExitStatus): void {
    this.remember(processKey(containerId, processId), status);
  }

  lastExit(containerId: string, processId: string): ExitStatus | undefined {
    return this.last.get(processKey(containerId, processId));
  }

  private remember(id: string, status: ExitStatus): void {
    this.last.delete(id);
    this.last.set(id, status);
    if (this.last.size > MAX_REMEMBERED_EXITS) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
  }
}
