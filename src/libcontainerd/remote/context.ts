import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Containers } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import type { Snapshots } from "../../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import type { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { abortError, callSignal, delay } from "../call.js";
import type { Call } from "../core/calls.js";
import type { Core } from "../core/client.js";
import { isErrorCode } from "../types/errors.js";
import { CreatedCgroupParents } from "./cgroup-parents.js";
import { toTypedError } from "./errors.js";
import type { TaskEventStream } from "./events.js";

/** What the client, its containers, tasks and processes share: the service clients and the event stream. */
export class RemoteContext {
  readonly logger: Logger;
  /** cgroup parents this client had runc create, and its containers under each. */
  readonly cgroupParents = new CreatedCgroupParents();
  /** Per container, the end of its queue of label writes (never rejects). */
  private readonly labelWrites = new Map<string, Promise<void>>();

  constructor(
    readonly core: Core,
    readonly namespace: string,
    readonly stateDir: string,
    readonly containers: ConnectClient<typeof Containers>,
    readonly tasks: ConnectClient<typeof Tasks>,
    readonly events: TaskEventStream,
    /** Container rootfs snapshots (images): mounts for the task, removal with the container. */
    readonly snapshots: ConnectClient<typeof Snapshots>,
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
   * Runs `write` (an update of the container's labels) after the container's earlier label writes,
   * whatever became of them. Writes of remembered state overlap other calls (a start's with the
   * Start, an exit's with the Delete), so without the queue an exit could land before the start
   * that clears the last exit's labels, and be erased by it.
   */
  writeLabels(containerId: string, write: () => Promise<void>): Promise<void> {
    const previous = this.labelWrites.get(containerId);
    const done = previous ? previous.then(write) : write();
    const tail = done.catch(() => {});
    this.labelWrites.set(containerId, tail);
    void tail.then(() => {
      if (this.labelWrites.get(containerId) === tail) this.labelWrites.delete(containerId);
    });
    return done;
  }

  /** Resolves when the label writes queued so far for the container are done. */
  labelsWritten(containerId: string): Promise<void> {
    return this.labelWrites.get(containerId) ?? Promise.resolve();
  }

  /** Resolves when every queued label write is done (closing the client). */
  async allLabelsWritten(): Promise<void> {
    while (this.labelWrites.size > 0) await Promise.all([...this.labelWrites.values()]);
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
