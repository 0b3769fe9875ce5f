/**
 * The backend-neutral client (undici's dispatcher-base, for containers): it owns the rules every
 * backend must share — ids and labels, CallOptions, the closed state, event delivery, error
 * wording — and leaves a few hooks to a driver (remote: containerd; local: HCS).
 */
import { type Logger, pino } from "pino";
import type { OciSpec } from "../../oci/spec.js";
import { type ReapOptions, reap } from "../../run/owner.js";
import { type RemoveContainerOptions, removeContainer } from "../../run/remove.js";
import { type RunOptions, type RunResult, run } from "../../run/run.js";
import { EventFanout } from "../event-queue.js";
import type {
  CallOptions,
  Client,
  Container,
  ContainerInfo,
  EventsOptions,
  NewContainerOptions,
} from "../types/client.js";
import { LibcontainerdError } from "../types/errors.js";
import type { Backend, LibcontainerdEvent } from "../types/events.js";
import { type Call, Calls, reworded } from "./calls.js";
import { ExitLedger } from "./exits.js";
import { validateIdentifier, validateLabels, validateNamespace } from "./identifiers.js";
import { checkSpec } from "./inputs.js";

export const DEFAULT_NAMESPACE = "default";

/** What a client, its containers and processes share. */
export interface Core {
  readonly calls: Calls;
  readonly exits: ExitLedger;
  readonly events: EventFanout;
  readonly logger: Logger;
}

export interface ClientBaseOptions {
  namespace?: string | undefined;
  /** Deadline for calls whose caller names none (waits for an exit excepted). Default 60 s. */
  defaultTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/** What `newContainer` hands the driver, checked. */
export interface ContainerRequest {
  id: string;
  spec: OciSpec;
  /** As the caller named it; the driver resolves it. */
  runtime: string | undefined;
  labels: Record<string, string>;
  /** The image the container runs (recorded, remote backend). */
  image: string | undefined;
  /** The rootfs snapshot the container owns from now on (remote backend). */
  snapshot: { snapshotter: string; key: string } | undefined;
}

export abstract class ClientBase implements Client {
  abstract readonly backend: "remote" | "local";
  readonly namespace: string;
  protected readonly core: Core;
  private closing: Promise<void> | undefined;

  constructor(options: ClientBaseOptions) {
    this.namespace = validateNamespace(options.namespace ?? DEFAULT_NAMESPACE);
    const logger = options.logger ?? pino({ level: "silent" });
    const events = new EventFanout(logger);
    this.core = { calls: new Calls(options.defaultTimeoutMs), exits: new ExitLedger(events), events, logger };
  }

  version(opts?: CallOptions): Promise<{ version: string; revision: string }> {
    return this.core.calls.run("version", opts, (call) => this.backendVersion(call));
  }

  async newContainer(id: string, spec: OciSpec, opts?: NewContainerOptions): Promise<Container> {
    if (opts?.replace) await this.removeForReplace(id, opts);
    return this.core.calls.run(`create container ${id}`, opts, async (call) => {
      validateIdentifier("container id", id);
      const labels = validateLabels(opts?.labels);
      checkSpec(spec);
      try {
        return await this.createContainer(call, {
          id,
          spec,
          runtime: opts?.runtime || undefined,
          labels,
          image: opts?.image,
          snapshot: opts?.snapshot,
        });
      } catch (err) {
        if (err instanceof LibcontainerdError && err.code === "already_exists")
          throw reworded(err, `${call.what}: it already exists`);
        throw err;
      }
    });
  }

  /** `replace`: whatever holds the id goes first (its task killed); nothing there is fine. */
  private async removeForReplace(id: string, opts: CallOptions): Promise<void> {
    validateIdentifier("container id", id);
    const { signal, timeoutMs, waitForReady } = opts;
    const call: CallOptions = {
      ...(signal ? { signal } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(waitForReady !== undefined ? { waitForReady } : {}),
    };
    await removeContainer(this, id, { ...call, force: true }).catch((err: unknown) => {
      if (!(err instanceof LibcontainerdError && err.code === "not_found")) throw err;
    });
  }

  run(options: RunOptions): Promise<RunResult> {
    return run(this, options);
  }

  removeContainer(id: string, opts?: RemoveContainerOptions): Promise<void> {
    return removeContainer(this, id, opts);
  }

  reap(opts?: ReapOptions): Promise<string[]> {
    return reap(this, opts);
  }

  loadContainer(id: string, opts?: CallOptions): Promise<Container> {
    return this.core.calls.run(`load container ${id}`, opts, async (call) => {
      validateIdentifier("container id", id);
      try {
        return await this.openContainer(call, id);
      } catch (err) {
        if (err instanceof LibcontainerdError && err.code === "not_found")
          throw reworded(err, `${call.what}: no such container`);
        throw err;
      }
    });
  }

  listContainers(opts?: CallOptions): Promise<ContainerInfo[]> {
    return this.core.calls.run("list containers", opts, (call) => this.listContainerInfo(call));
  }

  events(opts?: EventsOptions): AsyncIterable<LibcontainerdEvent> {
    if (!this.core.calls.isClosed) this.watchEvents();
    return this.core.events.subscribe(opts?.signal);
  }

  setBackend(backend: Backend): void {
    this.core.events.setBackend(backend);
    if (!this.core.calls.isClosed) this.watchEvents();
  }

  /** Refuses new calls (UnavailableError), lets the driver release what it holds, ends every event iterable. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.core.calls.close();
      try {
        await this.closeBackend();
      } finally {
        await this.core.events.close();
      }
    })();
    return this.closing;
  }

  // The driver's hooks. Each gets the Call (signal, deadline, name) of the public operation.
  protected abstract backendVersion(call: Call): Promise<{ version: string; revision: string }>;
  /** AlreadyExistsError when the id is taken. */
  protected abstract createContainer(call: Call, request: ContainerRequest): Promise<Container>;
  /** NotFoundError when there is no such container. */
  protected abstract openContainer(call: Call, id: string): Promise<Container>;
  protected abstract listContainerInfo(call: Call): Promise<ContainerInfo[]>;
  /** Someone listens for events: a driver that has to subscribe to its backend does it now. */
  protected watchEvents(): void {}
  protected abstract closeBackend(): Promise<void>;
}
