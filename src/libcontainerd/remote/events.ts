import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from "../../gen/github.com/containerd/containerd/api/events/task_pb.js";
import type {
  Envelope,
  Events,
} from "../../gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js";
import type { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { Status } from "../../gen/github.com/containerd/containerd/api/types/task/task_pb.js";
import { UNKNOWN_EXIT_CODE } from "../../state/labels.js";
import { delay } from "../call.js";
import type { ExitLedger } from "../core/exits.js";
import type { EventFanout } from "../event-queue.js";
import { codecOf } from "../grpc/codec.js";
import { toTypedError } from "../grpc/errors.js";
import type { ExitStatus } from "../types/client.js";
import { isErrorCode } from "../types/errors.js";
import type { LibcontainerdEvent } from "../types/events.js";

/** Exit status when a process vanished while we could not watch it (as Docker reports it). */
export { UNKNOWN_EXIT_CODE };

/** Bounds the memory of containers with an OOM, as the core's ledger bounds remembered exits. */
const MAX_REMEMBERED_OOMS = 10_000;

interface Tracked {
  containerId: string;
  processId: string;
  pid: number;
}

const key = (containerId: string, processId: string) => `${containerId}\u0000${processId}`;
const date = (ts: Timestamp | undefined) => (ts ? timestampDate(ts) : new Date());

/**
 * containerd never replays events, and delivers exits at least once (sometimes never, across a
 * restart). So: one Subscribe stream, resubscribed with backoff; after every (re)subscribe a resync
 * that lists tasks and reports each exit that happened meanwhile. The core's ExitLedger
 * deduplicates on (container, process, pid), so the caller sees each exit exactly once.
 */
export class TaskEventStream {
  /** Processes we believe are running, so a resync knows whose exits it may have missed. */
  private readonly running = new Map<string, Tracked>();
  /** Containers whose current task had an OOM event (cleared when a new task is created). */
  private readonly ooms = new Set<string>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** For tests: turns the resync off to show what it prevents. */
  resyncEnabled = true;

  constructor(
    private readonly deps: {
      namespace: string;
      events: ConnectClient<typeof Events>;
      tasks: ConnectClient<typeof Tasks>;
      exits: ExitLedger;
      fanout: EventFanout;
      logger: Logger;
    },
  ) {}

  /** Subscribes (once). Clients start it when someone listens, so one-shot callers pay nothing. */
  start(): void {
    if (this.abort.signal.aborted) return;
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** Called by the client when it creates, starts or execs a process, before any event for it. */
  track(containerId: string, processId: string, pid: number): void {
    // Without a subscription nobody would ever untrack it; the first resync seeds the set instead.
    // An exit already delivered means the caller's track() lost the race with the event stream (a
    // fast exec): tracking it then would keep it forever, as exec processes get no TaskDelete.
    if (pid > 0 && this.loop && !this.deps.exits.published(containerId, processId, pid))
      this.running.set(key(containerId, processId), { containerId, processId, pid });
  }

  /** Whether containerd reported an OOM for the container's current task (while subscribed). */
  oomSeen(containerId: string): boolean {
    return this.ooms.has(containerId);
  }

  private async run(): Promise<void> {
    const { logger } = this.deps;
    const filter = `namespace==${this.deps.namespace},topic~=|^/tasks/|`;
    let backoffMs = 100;
    while (!this.abort.signal.aborted) {
      const attempt = new AbortController();
      const stop = () => attempt.abort();
      this.abort.signal.addEventListener("abort", stop, { once: true });
      try {
        const stream = this.deps.events.subscribe({ filters: [filter] }, { signal: attempt.signal });
        const iterator = stream[Symbol.asyncIterator]();
        // The request goes out with the first next(); the resync runs after it, so an exit is
        // either in the stream or in the task list.
        const first = iterator.next();
        void first.catch(() => {});
        await this.resync();
        backoffMs = 100;
        for (let item = await first; !item.done; item = await iterator.next()) {
          this.handle(item.value);
        }
        if (!this.abort.signal.aborted) logger.warn("containerd closed the event stream; resubscribing");
      } catch (err) {
        if (this.abort.signal.aborted) break;
        logger.warn({ err: toTypedError(err, "events") }, "event stream lost; resubscribing");
      } finally {
        this.abort.signal.removeEventListener("abort", stop);
        attempt.abort();
      }
      try {
        await delay(backoffMs, this.abort.signal, "resubscribe");
      } catch {
        break;
      }
      backoffMs = Math.min(backoffMs * 2, 2000);
    }
  }

  /** Lists tasks and reports the exits of tracked processes that stopped or vanished meanwhile. */
  async resync(): Promise<void> {
    if (!this.resyncEnabled) return;
    const { tasks } = await this.deps.tasks.list({}, { signal: this.abort.signal, timeoutMs: 30_000 });
    const present = new Set<string>();
    for (const task of tasks) {
      const containerId = task.containerId || task.id;
      present.add(containerId);
      const init = key(containerId, containerId);
      if (task.status === Status.STOPPED) {
        if (this.running.has(init)) {
          this.emitExit(containerId, containerId, task.pid, {
            exitCode: task.exitStatus,
            exitedAt: date(task.exitedAt),
          });
        }
      } else if (task.pid > 0 && !this.deps.exits.published(containerId, containerId, task.pid)) {
        this.running.set(init, { containerId, processId: containerId, pid: task.pid });
      }
    }
    for (const tracked of [...this.running.values()]) {
      const { containerId, processId, pid } = tracked;
      if (!present.has(containerId)) {
        this.emitExit(
          containerId,
          processId,
          pid,
          { exitCode: UNKNOWN_EXIT_CODE, exitedAt: new Date() },
          true,
        );
        continue;
      }
      if (processId === containerId) continue;
      try {
        const { process } = await this.deps.tasks.get(
          { containerId, execId: processId },
          { signal: this.abort.signal },
        );
        if (process?.status === Status.STOPPED) {
          this.emitExit(containerId, processId, pid, {
            exitCode: process.exitStatus,
            exitedAt: date(process.exitedAt),
          });
        }
      } catch (err) {
        if (isErrorCode(toTypedError(err, "resync"), "not_found")) {
          this.emitExit(
            containerId,
            processId,
            pid,
            { exitCode: UNKNOWN_EXIT_CODE, exitedAt: new Date() },
            true,
          );
        } else throw err;
      }
    }
  }

  private handle(envelope: Envelope): void {
    let event: LibcontainerdEvent | "deleted" | undefined;
    try {
      event = decodeEnvelope(envelope, (containerId, processId) =>
        this.running.delete(key(containerId, processId)),
      );
    } catch (err) {
      this.deps.logger.warn({ err, topic: envelope.topic }, "skipping an event that does not decode");
      return;
    }
    if (!event || event === "deleted") return;
    if (event.type === "exit") {
      const status = { exitCode: event.exitCode ?? 0, exitedAt: event.exitedAt ?? new Date() };
      this.emitExit(event.containerId, event.processId, event.pid, status, false, event.timestamp);
      return;
    }
    if (event.type === "create" || event.type === "start" || event.type === "exec-started") {
      this.track(event.containerId, event.processId, event.pid);
    }
    if (event.type === "create") this.ooms.delete(event.containerId);
    if (event.type === "oom") {
      this.ooms.add(event.containerId);
      if (this.ooms.size > MAX_REMEMBERED_OOMS) {
        const oldest = this.ooms.values().next().value;
        if (oldest !== undefined) this.ooms.delete(oldest);
      }
    }
    this.publish(event);
  }

  private emitExit(
    containerId: string,
    processId: string,
    pid: number,
    status: ExitStatus,
    unknown = false,
    timestamp = new Date(),
  ): void {
    const id = key(containerId, processId);
    const tracked = this.running.get(id);
    if (tracked && tracked.pid === pid) this.running.delete(id);
    this.deps.exits.publish(containerId, processId, pid, status, {
      timestamp,
      ...(unknown
        ? {
            error: new Error(
              "the process went away while containerd was unreachable; its exit status is unknown",
            ),
          }
        : {}),
    });
  }

  private publish(event: LibcontainerdEvent): void {
    this.deps.fanout.publish(event);
  }
}

/** Maps a containerd task envelope to our event; `onDelete` hears of deleted processes. */
function decodeEnvelope(
  envelope: Envelope,
  onDelete: (containerId: string, processId: string) => void,
): LibcontainerdEvent | "deleted" | undefined {
  const any = envelope.event;
  if (!any) return undefined;
  const timestamp = date(envelope.timestamp);
  const base = { timestamp, pid: 0 };
  switch (envelope.topic) {
    case "/tasks/create": {
      const e = codecOf(TaskCreateSchema).decode(any.value);
      return { ...base, type: "create", containerId: e.containerId, processId: e.containerId, pid: e.pid };
    }
    case "/tasks/start": {
      const e = codecOf(TaskStartSchema).decode(any.value);
      return { ...base, type: "start", containerId: e.containerId, processId: e.containerId, pid: e.pid };
    }
    case "/tasks/exit": {
      const e = codecOf(TaskExitSchema).decode(any.value);
      return {
        ...base,
        type: "exit",
        containerId: e.containerId,
        processId: e.id || e.containerId,
        pid: e.pid,
        exitCode: e.exitStatus,
        exitedAt: date(e.exitedAt),
      };
    }
    case "/tasks/oom": {
      const e = codecOf(TaskOOMSchema).decode(any.value);
      return { ...base, type: "oom", containerId: e.containerId, processId: e.containerId };
    }
    case "/tasks/exec-added": {
      const e = codecOf(TaskExecAddedSchema).decode(any.value);
      return { ...base, type: "exec-added", containerId: e.containerId, processId: e.execId };
    }
    case "/tasks/exec-started": {
      const e = codecOf(TaskExecStartedSchema).decode(any.value);
      return { ...base, type: "exec-started", containerId: e.containerId, processId: e.execId, pid: e.pid };
    }
    case "/tasks/paused": {
      const e = codecOf(TaskPausedSchema).decode(any.value);
      return { ...base, type: "paused", containerId: e.containerId, processId: e.containerId };
    }
    case "/tasks/resumed": {
      const e = codecOf(TaskResumedSchema).decode(any.value);
      return { ...base, type: "resumed", containerId: e.containerId, processId: e.containerId };
    }
    case "/tasks/delete": {
      // The process is gone for good; an exit missed before this is no longer ours to find.
      const e = codecOf(TaskDeleteSchema).decode(any.value);
      onDelete(e.containerId, e.id || e.containerId);
      return "deleted";
    }
    default:
      return undefined;
  }
}
