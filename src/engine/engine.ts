import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import type { SeccompProfile } from "../oci/seccomp.js";
import { buildRoutes } from "./build/routes.js";
import type { CniNetworks } from "./cni-networks.js";
import type { ContainerdImages } from "./containerd-images.js";
import { ContainerManager } from "./containers/manager.js";
import { containerRoutes, listViewsWithSizes } from "./containers/routes.js";
import { ContainerStore } from "./containers/store.js";
import { EventBus } from "./events.js";
import { ExecService, execRoutes } from "./exec.js";
import { imageRoutes } from "./images.js";
import { networkRoutes } from "./networks.js";
import { commitRoutes } from "./new-images.js";
import { Router } from "./router.js";
import { type EngineHost, EngineServer, type ListenOptions } from "./server.js";
import { systemRoutes } from "./system.js";
import { hasOptions, VolumeStore } from "./volume-store.js";
import { volumeRoutes } from "./volumes.js";

export interface EngineOptions {
  client: LibcontainerdClient;
  /** The engine's own state: container records and logs (`<dir>/containers/<id>/`). */
  stateDir: string;
  images: ContainerdImages;
  networks: CniNetworks;
  logger: Logger;
  /** Reported as the engine's version. */
  version: string;
  /** A static init (tini) for HostConfig.Init. */
  initBinary?: string;
  /** The default seccomp profile (docker's format), and where it came from, for /info. */
  seccomp?: { path: string; profile: SeccompProfile };
  runtimes?: string[];
  defaultRuntime?: string;
}

/**
 * The Docker Engine API on the library: a router of Docker's endpoints over the container
 * manager, exec, images and system services, served by an EngineServer.
 */
export class Engine {
  readonly router = new Router();
  readonly events = new EventBus();
  readonly manager: ContainerManager;
  readonly volumes: VolumeStore;
  private readonly servers: EngineServer[] = [];

  private constructor(private readonly options: EngineOptions) {
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    const store = new ContainerStore(join(options.stateDir, "containers"), options.logger);
    // Who uses a volume is read from the container records, the one place it is kept.
    this.volumes = new VolumeStore(join(options.stateDir, "volumes"), options.logger, this.events, (name) =>
      store
        .all()
        .filter((record) =>
          record.MountPoints?.some((mountPoint) => mountPoint.Type === "volume" && mountPoint.Name === name),
        )
        .map((record) => record.Id),
    );
    this.manager = new ContainerManager({
      client: options.client,
      store,
      images: options.images,
      networks: options.networks,
      events: this.events,
      volumes: this.volumes,
      logger: options.logger,
      ...(options.initBinary !== undefined ? { initBinary: options.initBinary } : {}),
      ...(options.seccomp ? { seccompProfile: options.seccomp.profile } : {}),
    });
    const exec = new ExecService(this.manager, store, options.logger);
    const imageSize = async (id: string, opts: CallOptions): Promise<number> =>
      (await options.images.list(opts).catch(() => [])).find((image) => image.id === id)?.size ?? 0;
    systemRoutes(this.router, {
      client: options.client,
      store,
      events: this.events,
      version: options.version,
      rootDir: options.stateDir,
      images: (opts) => options.images.list(opts).catch(() => []),
      // As dockerd's LocalVolumesSize: volumes with driver options are not local data.
      volumes: () =>
        Promise.all(
          this.volumes
            .all()
            .filter((volume) => !hasOptions(volume))
            .map((volume) => this.volumes.usage(volume)),
        ),
      containers: (opts) =>
        listViewsWithSizes(
          store.all().sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created)),
          { manager: this.manager, imageSize },
          opts,
        ),
      runtimes: options.runtimes ?? ["runc"],
      defaultRuntime: options.defaultRuntime ?? "runc",
      ...(options.seccomp ? { seccompProfilePath: options.seccomp.path } : {}),
      engineId: createHash("sha256").update(options.stateDir).digest("hex").slice(0, 36),
    });
    containerRoutes(this.router, {
      manager: this.manager,
      store,
      execIds: (id) => exec.idsOf(id),
      imageSize,
      imageId: (ref, opts) =>
        options.images.resolve(ref, opts).then(
          (image) => image.id,
          () => undefined,
        ),
    });
    execRoutes(this.router, exec, store);
    imageRoutes(this.router, options.images, store, this.events);
    commitRoutes(this.router, { images: options.images, store, manager: this.manager });
    buildRoutes(this.router, { images: options.images, manager: this.manager, events: this.events });
    networkRoutes(this.router, options.networks, store, this.events, {
      connect: (record, network, aliases, signal, ipam) =>
        this.manager.connect(record, network, aliases, { signal }, ipam),
      disconnect: (record, network, signal) => this.manager.disconnect(record, network, { signal }),
    });
    volumeRoutes(this.router, this.volumes, this.events);
  }

  /** An engine with the containers an earlier one left adopted (running ones followed, policies applied). */
  static async create(options: EngineOptions, signal?: AbortSignal): Promise<Engine> {
    const engine = new Engine(options);
    await engine.volumes.load();
    await engine.manager.adopt(signal ? { signal } : {});
    return engine;
  }

  async listen(host: EngineHost, options: ListenOptions = {}): Promise<EngineServer> {
    const server = new EngineServer(this.router, this.options.logger, this.options.version);
    await server.listen(host, options);
    this.servers.push(server);
    return server;
  }

  /** Stops serving; containers keep running and are adopted by the next engine. */
  async close(): Promise<void> {
    await Promise.all(this.servers.splice(0).map((server) => server.close()));
    this.manager.close();
  }
}
