import { statSync } from "node:fs";
import { type Logger, pino } from "pino";
import { type ImageService, unsupportedImageService } from "../images/unsupported.js";
import type { OciSpec } from "../oci/spec.js";
import { defaultStateDir } from "../platform/addresses.js";
import { detectPlatform, type Environment, type OperatingSystem } from "../platform/detect.js";
import { ownerLabels, type ReapOptions, reap } from "../run/owner.js";
import { type RemoveContainerOptions, removeContainer } from "../run/remove.js";
import { type RunOptions, type RunResult, run } from "../run/run.js";
import type { RuntimeRegistry } from "../runtime/registry.js";
import type { RuntimeConfig } from "../runtime/types.js";
import { type BackendChoice, type BackendName, chooseBackend, type SocketProbe } from "./backend-choice.js";
import type { LcowOptions } from "./local/lcow.js";
import type { ManagedContainerd, ManagedContainerdOptions } from "./supervisor/supervisor.js";
import type {
  CallOptions,
  Client,
  Container,
  ContainerInfo,
  EventsOptions,
  NewContainerOptions,
} from "./types/client.js";
import { CanceledError } from "./types/errors.js";
import type { Backend, LibcontainerdEvent } from "./types/events.js";

export {
  type BackendChoice,
  type BackendInputs,
  type BackendName,
  chooseBackend,
  type SocketProbe,
  WINDOWS_CONTAINERD_ENV,
} from "./backend-choice.js";

/** How the managed containerd is run; its dirs come from the client's `root` and `stateDir`. */
export type ManagedContainerdSettings = Omit<
  ManagedContainerdOptions,
  "root" | "stateDir" | "env" | "logger" | "signal"
>;

export interface CreateClientOptions {
  /** Socket path, `unix://…`, `\\.\pipe\…`, `tcp://…`. None on Linux → a managed containerd. */
  containerdAddress?: string;
  namespace?: string;
  /** The client's state (FIFOs); also the managed containerd's socket, pid file and state. */
  stateDir?: string;
  /** The managed containerd's data root. */
  root?: string;
  /** daemon.json's `runtimes` (remote backend). */
  runtimes?: Record<string, RuntimeConfig>;
  defaultRuntime?: string;
  /** `--add-runtime name=path` flags. */
  addRuntimes?: string[];
  /** dockerd's `native.cgroupdriver`: `systemd` gives runc runtimes SystemdCgroup. Default `cgroupfs`. */
  cgroupDriver?: "cgroupfs" | "systemd";
  experimental?: boolean;
  /** Default `process.env`: DOCKER_WINDOWS_CONTAINERD(_RUNTIME), and the managed containerd's environment. */
  env?: Environment;
  /** Overrides the platform rules. */
  backend?: BackendName;
  /** Default: this host. */
  platform?: { os: "linux" | "windows"; windowsBuild?: number };
  /** Linux containers on Windows: the utility VM's boot files. */
  lcow?: LcowOptions;
  /** The local backend's vmcompute library; required for `backend: "local"` off Windows. */
  vmcomputeLibrary?: string;
  logger?: Logger;
  /** Used when no `containerdAddress` is given on Linux; `leaveRunning` keeps it (and the containers) across a client restart. */
  managedContainerd?: ManagedContainerdSettings;
  /** Deadline for calls whose caller gives none. */
  defaultTimeoutMs?: number;
  /** Cancels creation (a half-started managed containerd is stopped). */
  signal?: AbortSignal;
  /**
   * Containers this client creates are labelled with this process (pid and start time) and do not
   * outlive it: `close()` removes them, and containers of owners that died without closing (even
   * SIGKILLed) are removed when a client with `reapOnExit` is created, or by `reap()`.
   */
  reapOnExit?: boolean;
}

/** A client from `createClient`: the backend's client plus why it was chosen. */
export interface LibcontainerdClient extends Client {
  /** Which backend, and why (what `ctrd info` prints). */
  readonly choice: BackendChoice;
  /** The supervisor, when this client runs its own containerd. */
  readonly managedContainerd?: ManagedContainerd;
  /** The backend's own client (RemoteClient or LocalClient), for what the common interface does not cover. */
  readonly backendClient: Client;
  /** The runtimes new containers resolve with (remote backend); undefined on the local backend. */
  readonly runtimes: RuntimeRegistry | undefined;
  /** Images (pull, push, import, save, …): containerd's; on the local backend every call is NotImplementedError. */
  readonly images: ImageService;
}

function probeSocket(path: string): SocketProbe {
  try {
    return statSync(path).isSocket() ? "socket" : "not-socket";
  } catch {
    return "missing";
  }
}

/**
 * Creates a client for this platform: containerd over gRPC (an address, or a managed containerd on
 * Linux), or HCS in-process on Windows. Invalid combinations throw InvalidArgumentError before
 * anything connects or starts.
 */
export async function createClient(options: CreateClientOptions = {}): Promise<LibcontainerdClient> {
  const env = options.env ?? process.env;
  const detected = detectPlatform({ env });
  const os: OperatingSystem = options.platform?.os ?? detected.os;
  const windowsBuild =
    options.platform?.windowsBuild ?? (options.platform === undefined ? detected.windowsBuild : undefined);
  const choice = chooseBackend({
    os,
    env,
    ...(windowsBuild !== undefined ? { windowsBuild } : {}),
    ...(options.experimental !== undefined ? { experimental: options.experimental } : {}),
    ...(options.containerdAddress !== undefined ? { containerdAddress: options.containerdAddress } : {}),
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.vmcomputeLibrary !== undefined ? { vmcomputeLibrary: options.vmcomputeLibrary } : {}),
    probeSocket,
  });
  const logger = options.logger ?? pino({ level: "silent" });
  logger.info({ backend: choice.backend, reason: choice.reason }, "libcontainerd backend chosen");
  if (options.signal?.aborted) throw new CanceledError("createClient was canceled");

  if (choice.backend === "local") {
    // Loaded only when chosen: the local backend pulls in koffi and the vmcompute bindings.
    const { LocalClient } = await import("./local/client.js");
    const client = new LocalClient({
      windowsBuild: choice.windowsBuild,
      ...(choice.vmcomputeLibrary !== undefined ? { vmcomputeLibrary: choice.vmcomputeLibrary } : {}),
      ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
      ...(options.lcow !== undefined ? { lcow: options.lcow } : {}),
      ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
      logger,
    });
    return withReaping(new FactoryClient(client, choice), options);
  }

  const stateDir = options.stateDir ?? defaultStateDir(os, env);
  const runtimes = await runtimeRegistry(options, stateDir, os);
  const { RemoteClient } = await import("./remote/client.js");
  const remoteOptions = {
    stateDir,
    logger,
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    runtimes,
    ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
  };
  if (choice.containerd === "external") {
    return withReaping(
      new FactoryClient(
        new RemoteClient({ ...remoteOptions, address: choice.address }),
        choice,
        undefined,
        runtimes,
      ),
      options,
    );
  }

  const { ManagedContainerd } = await import("./supervisor/supervisor.js");
  const supervisor = new ManagedContainerd({
    ...options.managedContainerd,
    stateDir,
    env,
    logger,
    ...(options.root !== undefined ? { root: options.root } : {}),
  });
  await supervisor.start(options.signal ? { signal: options.signal } : {});
  try {
    const client = new RemoteClient({ ...remoteOptions, address: supervisor.address });
    // Wrapper scripts of runtimes whose runtimeArgs changed stay while containers use them; a
    // managed containerd's client is where they are collected (an external one is not contacted here).
    await client
      .removeUnusedRuntimeWrappers(options.signal ? { signal: options.signal } : {})
      .then((removed) => {
        if (removed.length > 0) logger.info({ removed }, "removed unused runtime wrapper scripts");
      })
      .catch((err: unknown) => logger.warn({ err }, "could not collect unused runtime wrapper scripts"));
    return await withReaping(new FactoryClient(client, choice, supervisor, runtimes), options);
  } catch (err) {
    await supervisor.shutdown();
    throw err;
  }
}

async function runtimeRegistry(
  options: CreateClientOptions,
  stateDir: string,
  os: OperatingSystem,
): Promise<RuntimeRegistry> {
  const { RuntimeRegistry } = await import("../runtime/registry.js");
  return new RuntimeRegistry({
    stateDir,
    platform: os === "windows" ? "windows" : "linux",
    ...(options.runtimes !== undefined ? { runtimes: options.runtimes } : {}),
    ...(options.addRuntimes !== undefined ? { addRuntimes: options.addRuntimes } : {}),
    ...(options.defaultRuntime !== undefined ? { defaultRuntime: options.defaultRuntime } : {}),
    ...(options.cgroupDriver !== undefined ? { cgroupDriver: options.cgroupDriver } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
}

/** With `reapOnExit`: the containers of owners that died are removed before the client is handed out. */
async function withReaping(client: FactoryClient, options: CreateClientOptions): Promise<FactoryClient> {
  if (!options.reapOnExit) return client;
  client.reapOnExit = true;
  client.logger = options.logger;
  try {
    await client.reap(options.signal ? { signal: options.signal } : {});
    return client;
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** The chosen backend's client, plus the choice, plus the managed containerd it owns (stopped on close). */
class FactoryClient implements LibcontainerdClient {
  private closing: Promise<void> | undefined;
  reapOnExit = false;
  logger: Logger | undefined;
  private images_: ImageService | undefined;

  constructor(
    readonly backendClient: Client,
    readonly choice: BackendChoice,
    readonly managedContainerd?: ManagedContainerd,
    readonly runtimes: RuntimeRegistry | undefined = undefined,
  ) {}

  get backend(): "remote" | "local" {
    return this.backendClient.backend;
  }

  get namespace(): string {
    return this.backendClient.namespace;
  }

  get images(): ImageService {
    const client = this.backendClient;
    this.images_ ??=
      "images" in client ? (client.images as ImageService) : unsupportedImageService(client.backend);
    return this.images_;
  }

  version(opts?: CallOptions): Promise<{ version: string; revision: string }> {
    return this.backendClient.version(opts);
  }

  newContainer(id: string, spec: OciSpec, opts: NewContainerOptions = {}): Promise<Container> {
    const create = this.reapOnExit ? { ...opts, labels: { ...opts.labels, ...ownerLabels() } } : opts;
    return this.backendClient.newContainer(id, spec, create);
  }

  run(options: RunOptions): Promise<RunResult> {
    return run(this, options);
  }

  removeContainer(id: string, opts?: RemoveContainerOptions): Promise<void> {
    return removeContainer(this.backendClient, id, opts);
  }

  reap(opts?: ReapOptions): Promise<string[]> {
    return reap(this.backendClient, opts);
  }

  loadContainer(id: string, opts?: CallOptions): Promise<Container> {
    return this.backendClient.loadContainer(id, opts);
  }

  listContainers(opts?: CallOptions): Promise<ContainerInfo[]> {
    return this.backendClient.listContainers(opts);
  }

  events(opts?: EventsOptions): AsyncIterable<LibcontainerdEvent> {
    return this.backendClient.events(opts);
  }

  setBackend(backend: Backend): void {
    this.backendClient.setBackend(backend);
  }

  /** Closes the client, then stops the managed containerd (unless it was told to leave it running). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.reapOnExit)
          await reap(this.backendClient, { includeSelf: true }).catch((err: unknown) => {
            this.logger?.warn({ err }, "could not remove this client's containers on close");
          });
        await this.backendClient.close();
      } finally {
        await this.managedContainerd?.shutdown();
      }
    })();
    return this.closing;
  }
}
