import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import { Containers } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Events } from "../../gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js";
import { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { Version } from "../../gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { RemoteImageService } from "../../images/service.js";
import type { OciSpec } from "../../oci/spec.js";
import { fifoDirOf } from "../../platform/state-dir.js";
import { RuntimeRegistry } from "../../runtime/registry.js";
import { decodeShimOptions } from "../../runtime/shim-options.js";
import type { RuntimeResolver } from "../../runtime/types.js";
import type { Call } from "../core/calls.js";
import { ClientBase, type ContainerRequest } from "../core/client.js";
import { isWindowsSpec } from "../core/inputs.js";
import { parseAddress } from "../grpc/address.js";
import {
  createContainerdTransport,
  lazyServiceClient,
  NAMESPACE_HEADER,
  serviceClient,
} from "../grpc/transport.js";
import type { CallOptions, Container, ContainerInfo } from "../types/client.js";
import { InvalidArgumentError, isErrorCode } from "../types/errors.js";
import { bareAny, jsonAny, TYPE_URL } from "./any.js";
import { CGROUP_PARENT_LABEL } from "./cgroup-parents.js";
import { containerInfo, RemoteContainer, removeSnapshot } from "./container.js";
import { RemoteContext } from "./context.js";
import { TaskEventStream } from "./events.js";
import { clearStaleFifoDir } from "./stdio.js";

export { DEFAULT_NAMESPACE } from "../core/client.js";

export interface RemoteClientOptions {
  /** Socket path, `unix://…`, `\\.\pipe\…` or `tcp://host:port`. */
  address: string;
  namespace?: string;
  /** Where FIFOs live: `<stateDir>/<namespace>/<container>/`. */
  stateDir: string;
  /** Runtime names → shims; defaults to the stock runc runtimes. */
  runtimes?: RuntimeResolver;
  logger?: Logger;
  /** Deadline for calls whose caller gives none (Wait excepted). */
  defaultTimeoutMs?: number;
}

const eventStreams = new WeakMap<RemoteClient, TaskEventStream>();

/**
 * A client's event stream, for tests and chaos experiments (resync on demand, or turned off to
 * show what it prevents). Not part of the package's API: src/index.ts does not export it.
 */
export function eventStreamOf(client: RemoteClient): TaskEventStream {
  const stream = eventStreams.get(client);
  if (!stream) throw new Error("not a RemoteClient");
  return stream;
}

/** The remote driver: containerd over gRPC. Stateless apart from the event stream; containerd is the truth. */
export class RemoteClient extends ClientBase {
  readonly backend = "remote" as const;
  readonly address: string;
  readonly runtimes: RuntimeResolver;
  private readonly ctx: RemoteContext;
  private readonly version_;
  private readonly namespaces_;
  private readonly transport: Transport;
  private images_: RemoteImageService | undefined;
  /** containerd runs on this host: its cgroups are ours to look at. */
  private readonly sameHost: boolean;

  constructor(opts: RemoteClientOptions) {
    super(opts);
    if (typeof opts.stateDir !== "string" || !isAbsolute(opts.stateDir))
      throw new InvalidArgumentError(`stateDir must be an absolute path: ${opts.stateDir}`);
    const address = parseAddress(opts.address);
    this.sameHost = address.kind === "unix";
    const transport = createContainerdTransport({ address, namespace: this.namespace });
    this.address = opts.address;
    this.runtimes = opts.runtimes ?? new RuntimeRegistry({ stateDir: opts.stateDir });
    const tasks = serviceClient(Tasks, transport);
    const events = new TaskEventStream({
      namespace: this.namespace,
      events: serviceClient(Events, transport),
      tasks,
      exits: this.core.exits,
      fanout: this.core.events,
      logger: this.core.logger,
    });
    this.ctx = new RemoteContext(
      this.core,
      this.namespace,
      opts.stateDir,
      serviceClient(Containers, transport),
      tasks,
      events,
      lazyServiceClient(
        async () =>
          (
            await import(
              "../../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js"
            )
          ).Snapshots,
        transport,
      ),
    );
    this.version_ = serviceClient(Version, transport);
    this.namespaces_ = lazyServiceClient(
      async () =>
        (
          await import(
            "../../gen/github.com/containerd/containerd/api/services/namespaces/v1/namespace_pb.js"
          )
        ).Namespaces,
      transport,
    );
    eventStreams.set(this, events);
    this.transport = transport;
  }

  /** Images in this client's namespace: pull, push, import, save, list, tag, remove, snapshots. */
  get images(): RemoteImageService {
    this.images_ ??= new RemoteImageService({
      transport: this.transport,
      defaultTimeoutMs: this.core.calls.defaultTimeoutMs,
    });
    return this.images_;
  }

  /** Creates a client and checks that containerd answers (UnavailableError when it does not). */
  static async connect(opts: RemoteClientOptions, call?: CallOptions): Promise<RemoteClient> {
    const client = new RemoteClient(opts);
    try {
      await client.version({ timeoutMs: 5000, ...call });
      return client;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /**
   * Removes runtime wrapper scripts (RuntimeRegistry) that no container of any namespace runs with
   * any more. The factory runs it when it starts a managed containerd; returns what it removed.
   */
  removeUnusedRuntimeWrappers(opts?: CallOptions): Promise<string[]> {
    const runtimes = this.runtimes;
    if (!(runtimes instanceof RuntimeRegistry) || !runtimes.hasWrapperScripts()) return Promise.resolve([]);
    return this.core.calls.run("collect unused runtime wrapper scripts", opts, async (call) => {
      const { namespaces } = await this.ctx.rpc(call, async (signal) =>
        (await this.namespaces_()).list({}, { signal }),
      );
      const inUse = new Set<string>();
      for (const { name } of namespaces) {
        const { containers } = await this.ctx.rpc(call, (signal) =>
          this.ctx.containers.list({}, { signal, headers: { [NAMESPACE_HEADER]: name } }),
        );
        for (const { runtime } of containers) {
          const options =
            runtime?.options && decodeShimOptions(runtime.options.typeUrl, runtime.options.value);
          // runc v2 names its binary BinaryName, the v1 shim Runtime.
          for (const binary of [options?.BinaryName, options?.Runtime])
            if (typeof binary === "string") inUse.add(binary);
        }
      }
      return runtimes.removeUnusedWrapperScripts(inUse);
    });
  }

  protected async backendVersion(call: Call): Promise<{ version: string; revision: string }> {
    const reply = await this.ctx.rpc(call, (signal) => this.version_.version({}, { signal }));
    return { version: reply.version, revision: reply.revision };
  }

  protected async createContainer(call: Call, request: ContainerRequest): Promise<Container> {
    const { id, spec, runtime, labels, image, snapshot } = request;
    checkRootfs(spec, snapshot !== undefined);
    let cgroupParent: string | undefined;
    try {
      const resolved = await this.runtimes.resolve(runtime);
      cgroupParent = this.sameHost ? this.ctx.cgroupParents.claim(spec.linux?.cgroupsPath) : undefined;
      const { container } = await this.ctx.rpc(call, (signal) =>
        this.ctx.containers.create(
          {
            container: {
              id,
              labels: { ...labels, ...(cgroupParent ? { [CGROUP_PARENT_LABEL]: cgroupParent } : {}) },
              runtime: {
                name: resolved.shim,
                ...(resolved.options
                  ? { options: bareAny(resolved.options.typeUrl, resolved.options.value) }
                  : {}),
              },
              spec: jsonAny(TYPE_URL.spec, spec),
              ...(image !== undefined ? { image } : {}),
              ...(snapshot ? { snapshotter: snapshot.snapshotter, snapshotKey: snapshot.key } : {}),
            },
          },
          { signal },
        ),
      );
      // containerd says the id is new: FIFOs left under it by an earlier container are stale.
      await clearStaleFifoDir(fifoDirOf(this.ctx.stateDir, this.namespace, id), this.ctx.logger);
      return new RemoteContainer(this.ctx, id, container);
    } catch (err) {
      if (cgroupParent) this.ctx.cgroupParents.release(spec.linux?.cgroupsPath, cgroupParent);
      // The container owns its snapshot from here on; one that was never created owns none.
      if (snapshot && !isErrorCode(err, "already_exists"))
        await removeSnapshot(this.ctx, snapshot.snapshotter, snapshot.key);
      throw err;
    }
  }

  protected async openContainer(call: Call, id: string): Promise<Container> {
    const { container } = await this.ctx.rpc(call, (signal) => this.ctx.containers.get({ id }, { signal }));
    return new RemoteContainer(this.ctx, id, container);
  }

  protected async listContainerInfo(call: Call): Promise<ContainerInfo[]> {
    await this.ctx.labels.allWritten();
    const { containers } = await this.ctx.rpc(call, (signal) => this.ctx.containers.list({}, { signal }));
    return containers.map(containerInfo);
  }

  protected override watchEvents(): void {
    this.ctx.events.start();
  }

  protected async closeBackend(): Promise<void> {
    // Remembered state this client is still writing (an exit) is written before it goes.
    try {
      await this.ctx.labels.drained();
      await this.ctx.events.close();
    } finally {
      // Empty cgroup parents kept for a next container go with the client.
      this.ctx.cgroupParents.removeEmpty();
    }
  }
}

/**
 * The rootfs, checked here rather than late, inside the shim: with a snapshot, `spec.root.path` is
 * where it is mounted (relative); without, a host directory.
 */
function checkRootfs(spec: OciSpec, snapshot: boolean): void {
  if (snapshot) {
    if (typeof spec.root?.path !== "string" || isAbsolute(spec.root.path))
      throw new InvalidArgumentError(
        "with a snapshot, spec.root.path must be relative (rootfs): the snapshot is mounted there",
      );
    return;
  }
  if (isWindowsSpec(spec)) return;
  const root = spec.root?.path;
  if (typeof root !== "string" || !isAbsolute(root))
    throw new InvalidArgumentError("spec.root.path must be an absolute host path (no snapshotter is used)");
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new InvalidArgumentError(`rootfs ${root} does not exist or is not a directory`);
}
