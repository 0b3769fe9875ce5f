import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Containers } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import type { Snapshots } from "../../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import type { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { abortError, callSignal, delay } from "../call.js";
import type { Call } from "../core/calls.js";
import type { Core } from "../core/client.js";
import { toTypedError } from "../grpc/errors.js";
import { isErrorCode } from "../types/errors.js";
import { type CreatedCgroupParents, cgroupParents } from "./cgroup-parents.js";
import type { TaskEventStream } from "./events.js";
import { LabelWrites } from "./label-writes.js";

/** What the client, its containers, tasks and processes share: the service clients and the event stream. */
export class RemoteContext {
  readonly logger: Logger;
  /** cgroup parents the library had runc create, and the containers under each (shared by the process's clients). */
  readonly cgroupParents: CreatedCgroupParents = cgroupParents;
  /** Remembered state being written on container records, in order per container. */
  readonly labels = new LabelWrites();
  /** Containers whose task this client deleted in this turn of the event loop. */
  readonly deletedTasks = new TasksDeletedThisTurn();

  constructor(
    readonly core: Core,
    readonly namespace: string,
    readonly stateDir: string,
    readonly containers: ConnectClient<typeof Containers>,
    readonly tasks: ConnectClient<typeof Tasks>,
    readonly events: TaskEventStream,
    /** Container rootfs snapshots (images): mounts for the task, removal with the container. */
    readonly snapshots: () => Promise<ConnectClient<typeof Snapshots>>,
  ) {
    this.logger = core.logger;
  }

  /**
   * One containerd request within `call`, its failure typed and named after `what` (default: the
   * call's name). With `waitForReady`, an unreachable containerd is retried until the call ends.
   */
  async rpc<T>(
    call: Call,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    what = call.what,
  ): Promise<T> {
    const { signal } = call;
    for (let backoffMs = 50; ; backoffMs = Math.min(backoffMs * 2, 1000)) {
      try {
        return await fn(signal);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal, what);
        const typed = toTypedError(err, what);
        if (!(call.waitForReady && isErrorCode(typed, "unavailable"))) throw typed;
        await delay(backoffMs, signal, what);
      }
    }
  }

  /**
   * Runs `fn` as a call of its own that outlives the operation that started it (a label write after
   * a wait): the client's default deadline, cleared when it is done. An unreachable containerd fails
   * it at once, as it did the operation's own call (close() waits for it).
   */
  async inBackground<T>(what: string, fn: (call: Call) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
      this.core.calls.defaultTimeoutMs,
    ).unref();
    try {
      return await fn({ what, signal: controller.signal, waitForReady: false });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A call for cleaning up after a failed one: it must happen whatever the caller's signal says, so
   * it has the client's default deadline of its own and waits for a restarting containerd.
   */
  cleanupCall(what: string): Call {
    return { what, signal: callSignal({ timeoutMs: this.core.calls.defaultTimeoutMs }), waitForReady: true };
  }
}

/**
 * Containers whose task this client deleted in this turn of the event loop: a container delete
 * that follows at once (`await task.delete(); await container.delete()`) needs no Tasks.Get to know
 * that there is no task. Forgotten on the next turn, so the window in which another client could
 * create a task unseen is no wider than the Go client's (between its Tasks.Get and its
 * Containers.Delete).
 */
export class TasksDeletedThisTurn {
  private readonly ids = new Set<string>();

  add(containerId: string): void {
    if (this.ids.has(containerId)) return;
    this.ids.add(containerId);
    setImmediate(() => this.ids.delete(containerId));
  }

  has(containerId: string): boolean {
    return this.ids.has(containerId);
  }
}
