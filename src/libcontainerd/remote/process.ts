import type { Readable, Writable } from "node:stream";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { abortError, delay } from "../call.js";
import type { Call } from "../core/calls.js";
import type { ProcessDriver } from "../core/process.js";
import { mayHaveReachedContainerd, toTypedError } from "../grpc/errors.js";
import { parseSignal } from "../signals.js";
import type { ExitStatus } from "../types/client.js";
import { isErrorCode } from "../types/errors.js";
import type { RemoteContext } from "./context.js";
import type { ProcessIO } from "./stdio.js";

export const toDate = (ts: Timestamp | undefined): Date => (ts ? timestampDate(ts) : new Date(0));

/** A process in a containerd task, the init process (id = container id) or an exec: its containerd calls. */
export class RemoteProcess implements ProcessDriver {
  constructor(
    protected readonly ctx: RemoteContext,
    readonly containerId: string,
    readonly id: string,
    readonly pid: number,
    readonly io: ProcessIO,
  ) {}

  get stdin(): Writable | null {
    return this.io.stdin;
  }
  get stdout(): Readable | null {
    return this.io.stdout;
  }
  get stderr(): Readable | null {
    return this.io.stderr;
  }

  /** The exec id containerd expects: empty for the init process. */
  private get execId(): string {
    return this.id === this.containerId ? "" : this.id;
  }

  async signal(call: Call, signal: string | number): Promise<void> {
    const number = parseSignal(signal);
    await this.ctx.rpc(call, (s) =>
      this.ctx.tasks.kill(
        { containerId: this.containerId, execId: this.execId, signal: number },
        { signal: s },
      ),
    );
  }

  async resize(call: Call, width: number, height: number): Promise<void> {
    await this.ctx.rpc(call, (s) =>
      this.ctx.tasks.resizePty(
        { containerId: this.containerId, execId: this.execId, width, height },
        { signal: s },
      ),
    );
  }

  /** Ends our stdin stream (flushing what was written), then has the shim close the process's stdin. */
  async closeStdin(call: Call): Promise<void> {
    await this.io.closeStdin();
    await this.ctx.rpc(call, (s) =>
      this.ctx.tasks.closeIO(
        { containerId: this.containerId, execId: this.execId, stdin: true },
        { signal: s },
      ),
    );
  }

  /**
   * The Wait RPC, kept alive across containerd restarts: when the connection drops, wait for
   * containerd to come back and ask again (a stopped task keeps its status until deleted).
   */
  async wait(call: Call): Promise<ExitStatus> {
    const { signal, what } = call;
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await this.ctx.tasks.wait(
          { containerId: this.containerId, execId: this.execId },
          { signal },
        );
        this.io.finishAfterExit();
        return { exitCode: reply.exitStatus, exitedAt: toDate(reply.exitedAt) };
      } catch (err) {
        if (signal?.aborted) throw abortError(signal, what);
        const typed = toTypedError(err, what);
        const transient =
          isErrorCode(typed, "unavailable") || (isErrorCode(typed, "internal") && attempt < 20);
        if (!transient) throw typed;
        this.ctx.logger.debug({ err: typed }, "wait interrupted; retrying when containerd is back");
        await delay(Math.min(100 * 2 ** Math.min(attempt, 4), 1000), signal, what);
      }
    }
  }

  async delete(call: Call): Promise<ExitStatus> {
    const remove = (s: AbortSignal | undefined) =>
      this.execId
        ? this.ctx.tasks.deleteProcess({ containerId: this.containerId, execId: this.execId }, { signal: s })
        : this.ctx.tasks.delete({ containerId: this.containerId }, { signal: s });
    let reply: Awaited<ReturnType<typeof remove>>;
    try {
      reply = await this.ctx.rpc(call, remove);
    } catch (err) {
      if (!isErrorCode(err, "unavailable") || !mayHaveReachedContainerd(err)) throw err;
      // containerd went away mid-delete, leaving the task half deleted (its shim cancels the runtime
      // call with the request). Ask again once it is back; NotFound then means the first one finished.
      try {
        reply = await this.ctx.rpc({ ...call, waitForReady: true }, remove);
      } catch (retryErr) {
        const known = isErrorCode(retryErr, "not_found")
          ? this.ctx.core.exits.lastExit(this.containerId, this.id)
          : undefined;
        if (!known) throw retryErr;
        await this.io.release(this.ctx.logger);
        return known;
      }
    }
    await this.io.release(this.ctx.logger);
    return { exitCode: reply.exitStatus, exitedAt: toDate(reply.exitedAt) };
  }
}
