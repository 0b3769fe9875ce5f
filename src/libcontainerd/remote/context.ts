import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Containers } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import type { Snapshots } from "../../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import type { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { abortError, callSignal, delay } from "../call.js";
import type { CallOptions } from "../types/client.js";
import { isErrorCode } from "../types/errors.js";
import { toTypedError } from "./errors.js";
import type { TaskEventStream } from "./events.js";

/** What the client, its containers, tasks and processes share: the service clients and the event stream. */
export class RemoteContext {
  constructor(
    readonly namespace: string,
    readonly stateDir: string,
    readonly containers: ConnectClient<typeof Containers>,
    readonly tasks: ConnectClient<typeof Tasks>,
    readonly events: TaskEventStream,
    readonly logger: Logger,
    /** A deadline for calls whose caller gave none, so a hung containerd cannot hang us forever. */
    readonly defaultTimeoutMs: number,
    /** Container rootfs snapshots (images): mounts for the task, removal with the container. */
    readonly snapshots?: ConnectClient<typeof Snapshots>,
  ) {}

  /**
   * Runs one containerd call with the caller's signal and deadline, converting failures to typed
   * errors named after `what`. `long` calls (Wait) get no default deadline.
   */
  async call<T>(
    what: string,
    opts: CallOptions | undefined,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    long = false,
  ): Promise<T> {
    const timeoutMs = opts?.timeoutMs ?? (long ? undefined : this.defaultTimeoutMs);
    const signal = callSignal({ signal: opts?.signal, timeoutMs });
    for (let backoffMs = 50; ; backoffMs = Math.min(backoffMs * 2, 1000)) {
      if (signal?.aborted) throw abortError(signal, what);
      try {
        return await fn(signal);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal, what);
        const typed = toTypedError(err, what);
        if (!(opts?.waitForReady && isErrorCode(typed, "unavailable"))) throw typed;
        await delay(backoffMs, signal, what);
      }
    }
  }
}
