/**
 * The local backend: Windows HCS in-process through vmcompute.dll (on Linux, the fake library).
 * Containers are compute systems this client creates and starts; tasks are HCS processes.
 */
import fs from "node:fs";
import pino, { type Logger } from "pino";
import type { OciSpec } from "../../oci/spec.js";
import { throwIfAborted } from "../call.js";
import { EventFanout } from "../event-queue.js";
import type {
  CallOptions,
  Client,
  Container,
  ContainerInfo,
  EventsOptions,
  NewContainerOptions,
} from "../types/client.js";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  isErrorCode,
  NotFoundError,
  UnavailableError,
} from "../types/errors.js";
import type { Backend, LibcontainerdEvent } from "../types/events.js";
import { LOCAL_RUNTIME_NAME, LocalContainer } from "./container.js";
import { createDocument, WINDOWS_BUILD_RS5 } from "./documents.js";
import { type HcsContext, HcsSystem } from "./hcs-system.js";
import { hcsError, isFailure } from "./hresult.js";
import type { LcowOptions } from "./lcow.js";
import { CallbackRegistry } from "./notifications.js";
import { bounded, honour, type LocalRuntime, publish } from "./process.js";
import type { HcsSystemProperties } from "./properties.js";
import { Vmcompute } from "./vmcompute.js";
import { nameBasedLayerId } from "./windows-config.js";

export interface LocalClientOptions {
  /**
   * Path of vmcompute.dll or of the fake (`native/fake-vmcompute/build/libfakevmcompute.so`).
   * Default on Windows: `vmcompute.dll`; elsewhere it must be given.
   */
  library?: string;
  /** The factory's name for `library`. */
  vmcomputeLibrary?: string;
  /** The host's Windows build: picks the HCS schema (v1 before 17763, v2.1 from it) and signal support. */
  windowsBuild: number;
  /** HCS `Owner` of the systems this client creates; listContainers shows only these. Default `default`. */
  namespace?: string;
  lcow?: LcowOptions;
  logger?: Logger;
  /** Injectable for tests on Linux, where LCOW boot files and UtilityVM folders are Windows paths. */
  fileExists?: (hostPath: string) => boolean;
  /** Bound on each HCS completion (create, start, pause, resume). Default 4 minutes, like hcsshim. */
  operationTimeoutMs?: number;
  /** How long delete waits for a graceful shutdown before terminating. Default 30 s (containerd-shim-runhcs). */
  stopTimeoutMs?: number;
  /** Timeout for calls that set none, except waits for an exit and event streams. */
  defaultTimeoutMs?: number;
}

const DEFAULT_OPERATION_TIMEOUT_MS = 4 * 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** containerd's identifier rules, so ids are portable between the two backends. */
const VALID_ID = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,74}[A-Za-z0-9])?$/;

export class LocalClient implements Client {
  readonly backend = "local" as const;
  readonly namespace: string;
  private readonly api: Vmcompute;
  private readonly callbacks = new CallbackRegistry();
  private readonly rt: LocalRuntime;
  private readonly hcs: HcsContext;
  private readonly logger: Logger;
  private readonly events_: EventFanout;
  private readonly containers = new Map<string, LocalContainer>();
  private readonly creating = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: LocalClientOptions) {
    this.namespace = options.namespace ?? "default";
    this.logger = (options.logger ?? pino({ level: "silent" })).child({ backend: "local" });
    const library =
      options.library ??
      options.vmcomputeLibrary ??
      (process.platform === "win32" ? "vmcompute.dll" : undefined);
    if (!library) {
      throw new InvalidArgumentError(
        "the local backend needs the vmcompute library path off Windows (the fake's .so)",
      );
    }
    this.api = new Vmcompute({ library, onNotification: this.callbacks.dispatch });
    this.hcs = {
      api: this.api,
      callbacks: this.callbacks,
      logger: this.logger,
      operationTimeoutMs: options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
    };
    this.events_ = new EventFanout(this.logger);
    this.rt = {
      hcs: this.hcs,
      events: this.events_,
      windowsBuild: options.windowsBuild,
      logger: this.logger,
    };
  }

  version(opts?: CallOptions): Promise<{ version: string; revision: string }> {
    return this.run(opts, "version", async () => ({
      version: `vmcompute HCS schema ${this.options.windowsBuild >= WINDOWS_BUILD_RS5 ? "2.1" : "1.0"}`,
      revision: `windows build ${this.options.windowsBuild}`,
    }));
  }

  newContainer(id: string, spec: OciSpec, opts?: NewContainerOptions): Promise<Container> {
    return this.run(opts, `new container ${id}`, async (signal) => {
      if (!VALID_ID.test(id)) throw new InvalidArgumentError(`invalid container id ${JSON.stringify(id)}`);
      if (opts?.runtime && opts.runtime !== LOCAL_RUNTIME_NAME) {
        this.logger.debug(
          { id, runtime: opts.runtime },
          "the local backend has one runtime; ignoring the requested one",
        );
      }
      if (this.containers.has(id) || this.creating.has(id)) {
        throw new AlreadyExistsError(`container ${id} already exists`);
      }
      this.creating.add(id);
      try {
        // Everything that can be checked without HCS is checked first (LCOW boot files included).
        const doc = await this.createDocument(id, spec);
        this.logger.debug({ id, schema: doc.schema, guestOs: doc.guestOs }, "creating compute system");
        const system = await HcsSystem.create(this.hcs, id, JSON.stringify(doc.document), signal);
        try {
          await system.start(signal);
          throwIfAborted(signal, `new container ${id}`);
        } catch (err) {
          await system.terminateAndClose();
          throw err;
        }
        const container = new LocalContainer(this.rt, {
          id,
          system,
          spec: doc.guestOs === "linux" ? doc.guestSpec : spec,
          guestOs: doc.guestOs,
          hyperV: doc.guestOs === "linux" || spec.windows?.hyperv !== undefined,
          labels: { ...(opts?.labels ?? {}) },
          createdAt: new Date(),
          stopTimeoutMs: this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
          onDeleted: (deleted) => this.containers.delete(deleted),
        });
        this.containers.set(id, container);
        publish(this.rt, "create", id, id, 0);
        return container;
      } finally {
        this.creating.delete(id);
      }
    });
  }

  private async createDocument(id: string, spec: OciSpec) {
    const pathExists = this.options.fileExists ?? ((p: string) => fs.existsSync(p));
    const base = {
      id,
      owner: this.namespace,
      windowsBuild: this.options.windowsBuild,
      lcow: this.options.lcow,
      pathExists,
    };
    const validated = createDocument(spec, { ...base, layerId: nameBasedLayerId });
    if (!this.api.has("NameToGuid")) return validated;
    // Real HCS identifies layers by vmcompute's NameToGuid; resolve them only once the spec is valid.
    const ids = new Map<string, string>();
    for (const folder of spec.windows?.layerFolders ?? []) {
      const name = folder.split(/[\\/]/).filter(Boolean).pop() ?? folder;
      ids.set(name, await this.api.nameToGuid(name));
    }
    return createDocument(spec, { ...base, layerId: (name) => ids.get(name) ?? nameBasedLayerId(name) });
  }

  /**
   * A container this client created, or an existing compute system of this namespace opened by
   * id. An opened one can be inspected and deleted, not given a task: HCS offers no reattach.
   */
  loadContainer(id: string, opts?: CallOptions): Promise<Container> {
    return this.run(opts, `load container ${id}`, async () => {
      const known = this.containers.get(id);
      if (known) return known;
      let system: HcsSystem;
      try {
        system = await HcsSystem.open(this.hcs, id);
      } catch (err) {
        if (isErrorCode(err, "not_found")) {
          throw new NotFoundError(`container ${id} not found`, { cause: err });
        }
        throw err;
      }
      try {
        const props = await system.properties<HcsSystemProperties>({});
        if (props.Owner !== undefined && props.Owner !== this.namespace) {
          throw new NotFoundError(`container ${id} not found in namespace ${this.namespace}`);
        }
        const container = new LocalContainer(this.rt, {
          id,
          system,
          spec: undefined,
          guestOs: props.RuntimeOsType?.toLowerCase() === "linux" ? "linux" : "windows",
          hyperV: props.SystemType?.toLowerCase() === "virtualmachine",
          labels: {},
          createdAt: undefined,
          stopTimeoutMs: this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
          onDeleted: (deleted) => this.containers.delete(deleted),
        });
        this.containers.set(id, container);
        return container;
      } catch (err) {
        await system.close();
        throw err;
      }
    });
  }

  listContainers(opts?: CallOptions): Promise<ContainerInfo[]> {
    return this.run(opts, "list containers", async () => {
      const r = await this.api.enumerateComputeSystems(JSON.stringify({ Owners: [this.namespace] }));
      if (isFailure(r.hresult)) {
        throw hcsError(r.hresult, { operation: "HcsEnumerateComputeSystems", resultJson: r.result });
      }
      const systems = JSON.parse(r.computeSystems || "[]") as HcsSystemProperties[];
      return systems
        .filter((s) => s.Id && (s.Owner === undefined || s.Owner === this.namespace))
        .map((s) => {
          const id = s.Id!;
          return { id, runtime: { name: LOCAL_RUNTIME_NAME }, labels: this.labelsOf(id) };
        });
    });
  }

  private labelsOf(id: string): Record<string, string> {
    return { ...(this.containers.get(id)?.labels ?? {}) };
  }

  events(opts?: EventsOptions): AsyncIterable<LibcontainerdEvent> {
    return this.events_.subscribe(opts?.signal);
  }

  setBackend(backend: Backend): void {
    this.events_.setBackend(backend);
  }

  /**
   * Terminates the containers this client holds and closes every handle: the backend is
   * in-process, so nothing could manage them after the client is gone.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.pending]);
      await Promise.allSettled([...this.containers.values()].map((c) => c.dispose()));
      await this.events_.close();
      if (this.callbacks.size > 0) {
        // A registration HCS still holds needs the trampoline alive; leaking it beats a crash.
        this.logger.error(
          { registrations: this.callbacks.size },
          "callbacks still registered; keeping the library loaded",
        );
        return;
      }
      this.api.close();
    })();
    return this.closing;
  }

  private run<T>(
    opts: CallOptions | undefined,
    what: string,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    if (this.closing) return Promise.reject(new UnavailableError(`${what}: the client is closed`));
    return honour(bounded(this.rt, opts), what, (signal) => {
      const operation = fn(signal);
      this.pending.add(operation);
      const done = () => this.pending.delete(operation);
      operation.then(done, done);
      return operation;
    });
  }
}
