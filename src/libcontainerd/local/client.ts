/**
 * The local driver: Windows HCS in-process through vmcompute.dll (on Linux, the fake library).
 * Containers are compute systems this client creates and starts; tasks are HCS processes.
 */
import fs from "node:fs";
import { setTimeout } from "node:timers/promises";
import pino, { type Logger } from "pino";
import type { OciSpec } from "../../oci/spec.js";
import { throwIfAborted } from "../call.js";
import type { Call } from "../core/calls.js";
import { ClientBase, type ContainerRequest } from "../core/client.js";
import type { Container, ContainerInfo } from "../types/client.js";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  isErrorCode,
  NotFoundError,
  NotImplementedError,
} from "../types/errors.js";
import { LOCAL_RUNTIME_NAME, LocalContainer } from "./container.js";
import { createDocument, WINDOWS_BUILD_RS3, WINDOWS_BUILD_RS5 } from "./documents.js";
import { type HcsContext, HcsSystem } from "./hcs-system.js";
import {
  ERROR_ACCESS_DENIED,
  ERROR_VMCOMPUTE_INVALID_STATE,
  hcsError,
  isFailure,
  toUnsigned,
} from "./hresult.js";
import type { LcowOptions } from "./lcow.js";
import { CallbackRegistry } from "./notifications.js";
import { type LocalRuntime, publish } from "./process.js";
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

export class LocalClient extends ClientBase {
  readonly backend = "local" as const;
  private readonly api: Vmcompute;
  private readonly callbacks = new CallbackRegistry();
  private readonly rt: LocalRuntime;
  private readonly hcs: HcsContext;
  private readonly logger: Logger;
  private readonly containers = new Map<string, LocalContainer>();
  private readonly creating = new Set<string>();

  constructor(private readonly options: LocalClientOptions) {
    const logger = (options.logger ?? pino({ level: "silent" })).child({ backend: "local" });
    super({ namespace: options.namespace, defaultTimeoutMs: options.defaultTimeoutMs, logger });
    this.logger = logger;
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
    this.rt = { hcs: this.hcs, core: this.core, windowsBuild: options.windowsBuild, logger: this.logger };
  }

  protected async backendVersion(_call: Call): Promise<{ version: string; revision: string }> {
    return {
      version: `vmcompute HCS schema ${this.options.windowsBuild >= WINDOWS_BUILD_RS5 ? "2.1" : "1.0"}`,
      revision: `windows build ${this.options.windowsBuild}`,
    };
  }

  protected async createContainer(call: Call, request: ContainerRequest): Promise<Container> {
    const { id, spec, runtime, labels } = request;
    if (runtime && runtime !== LOCAL_RUNTIME_NAME) {
      this.logger.debug({ id, runtime }, "the local backend has one runtime; ignoring the requested one");
    }
    if (request.image !== undefined || request.snapshot !== undefined)
      throw new NotImplementedError("images and snapshots are containerd's: not on the HCS backend");
    if (this.containers.has(id) || this.creating.has(id))
      throw new AlreadyExistsError(`container ${id} already exists`);
    this.creating.add(id);
    try {
      // Everything that can be checked without HCS is checked first (LCOW boot files included).
      const doc = await this.createDocument(id, spec);
      this.logger.debug({ id, schema: doc.schema, guestOs: doc.guestOs }, "creating compute system");
      const system = await HcsSystem.create(this.hcs, id, JSON.stringify(doc.document), call.signal);
      try {
        await system.start(call.signal);
        throwIfAborted(call.signal, call.what);
      } catch (err) {
        await system.terminateAndClose();
        throw err;
      }
      const container = new LocalContainer(this.rt, {
        id,
        system,
        spec: doc.guestOs === "linux" ? doc.guestSpec : spec,
        guestOs: doc.guestOs,
        hyperV: doc.guestOs === "linux" || spec.windows?.hyperv != null,
        labels,
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
    const warn = (message: string) => this.logger.warn({ id }, message);
    if (!this.api.has("NameToGuid"))
      return createDocument(spec, { ...base, layerId: nameBasedLayerId, warn });
    createDocument(spec, { ...base, layerId: nameBasedLayerId }); // checks the spec before any HCS call
    // Real HCS identifies layers by vmcompute's NameToGuid; resolve them only once the spec is valid.
    const ids = new Map<string, string>();
    for (const folder of spec.windows?.layerFolders ?? []) {
      const name = folder.split(/[\\/]/).filter(Boolean).pop() ?? folder;
      ids.set(name, await this.api.nameToGuid(name));
    }
    return createDocument(spec, {
      ...base,
      layerId: (name) => ids.get(name) ?? nameBasedLayerId(name),
      warn,
    });
  }

  /**
   * A container this client created, or an existing compute system of this namespace opened by
   * id. An opened one can be inspected and deleted, not given a task: HCS offers no reattach.
   */
  protected async openContainer(_call: Call, id: string): Promise<Container> {
    const known = this.containers.get(id);
    if (known) return known;
    let system: HcsSystem;
    try {
      system = await HcsSystem.open(this.hcs, id);
    } catch (err) {
      if (isErrorCode(err, "not_found")) throw new NotFoundError(`container ${id} not found`, { cause: err });
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
  }

  protected async listContainerInfo(call: Call): Promise<ContainerInfo[]> {
    const query = JSON.stringify({ Owners: [this.namespace] });
    let r = await this.api.enumerateComputeSystems(query);
    // RS1 and RS2 fail an enumeration that races a silo going away with ERROR_ACCESS_DENIED or INVALID_STATE
    // (hcsshim internal/hcs/errors.go ErrVmcomputeOperationAccessIsDenied, "HCS was fixed in RS3"); moby
    // retries them every 10 ms, up to 500 times (daemon/graphdriver/windows/windows.go).
    for (let retry = 0; this.enumerationRaces(r.hresult) && retry < 500; retry++) {
      await setTimeout(10);
      throwIfAborted(call.signal, call.what);
      r = await this.api.enumerateComputeSystems(query);
    }
    if (isFailure(r.hresult)) {
      throw hcsError(r.hresult, { operation: "HcsEnumerateComputeSystems", resultJson: r.result });
    }
    const systems = JSON.parse(r.computeSystems || "[]") as HcsSystemProperties[];
    return systems
      .filter((s) => s.Id && (s.Owner === undefined || s.Owner === this.namespace))
      .map((s) => {
        const id = s.Id!;
        return {
          id,
          runtime: { name: LOCAL_RUNTIME_NAME },
          labels: { ...(this.containers.get(id)?.labels ?? {}) },
        };
      });
  }

  private enumerationRaces(hresult: number): boolean {
    const raced =
      toUnsigned(hresult) === ERROR_ACCESS_DENIED || toUnsigned(hresult) === ERROR_VMCOMPUTE_INVALID_STATE;
    return raced && this.options.windowsBuild < WINDOWS_BUILD_RS3;
  }

  /**
   * Terminates the containers this client holds and closes every handle: the backend is
   * in-process, so nothing could manage them after the client is gone.
   */
  protected async closeBackend(): Promise<void> {
    await this.core.calls.settled();
    await Promise.allSettled([...this.containers.values()].map((c) => c.dispose()));
    if (this.callbacks.size > 0) {
      // A registration HCS still holds needs the trampoline alive; leaking it beats a crash.
      this.logger.error(
        { registrations: this.callbacks.size },
        "callbacks still registered; keeping the library loaded",
      );
      return;
    }
    this.api.close();
  }
}
