import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { Transport } from "@connectrpc/connect";
import { type Logger, pino } from "pino";
import { Containers } from "../../gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Events } from "../../gen/github.com/containerd/containerd/api/services/events/v1/events_pb.js";
import { Snapshots } from "../../gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import { Tasks } from "../../gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { Version } from "../../gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { RemoteImageService } from "../../images/service.js";
import { checkLinuxResources } from "../../oci/resources.js";
import type { OciSpec } from "../../oci/spec.js";
import { RuntimeRegistry } from "../../runtime/registry.js";
import type { RuntimeResolver } from "../../runtime/types.js";
import { EventFanout } from "../event-queue.js";
import type {
  CallOptions,
  Client,
  Container,
  ContainerInfo,
  EventsOptions,
  NewContainerOptions,
} from "../types/client.js";
import { AlreadyExistsError, InvalidArgumentError, isErrorCode, NotFoundError } from "../types/errors.js";
import type { Backend, LibcontainerdEvent } from "../types/events.js";
import { parseAddress } from "./address.js";
import { bareAny, jsonAny, TYPE_URL } from "./any.js";
import { CGROUP_PARENT_LABEL, missingCgroupParent } from "./cgroup-parents.js";
import { containerInfo, RemoteContainer, removeSnapshot } from "./container.js";
import { RemoteContext } from "./context.js";
import { TaskEventStream } from "./events.js";
import { validateIdentifier, validateNamespace } from "./identifiers.js";
import { createContainerdTransport, serviceClient } from "./transport.js";

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

export const DEFAULT_NAMESPACE = "default";

/** The remote backend: containerd over gRPC. Stateless apart from the event stream; containerd is the truth. */
export class RemoteClient implements Client {
  readonly backend = "remote" as const;
  readonly namespace: string;
  readonly address: string;
  readonly runtimes: RuntimeResolver;
  private readonly ctx: RemoteContext;
  private readonly fanout: EventFanout;
  private readonly version_;
  private readonly transport: Transport;
  private images_: RemoteImageService | undefined;
  private closed = false;
  /** containerd runs on this host: its cgroups are ours to look at. */
  private readonly sameHost: boolean;
  /** cgroup parents this client saw missing and had runc create: later containers under them share them. */
  private readonly createdCgroupParents = new Set<string>();

  constructor(opts: RemoteClientOptions) {
    const namespace = validateNamespace(opts.namespace ?? DEFAULT_NAMESPACE);
    if (!isAbsolute(opts.stateDir))
      throw new InvalidArgumentError(`stateDir must be an absolute path: ${opts.stateDir}`);
    const address = parseAddress(opts.address);
    this.sameHost = address.kind === "unix";
    const logger = opts.logger ?? pino({ level: "silent" });
    const transport = createContainerdTransport({ address, namespace });
    this.namespace = namespace;
    this.address = opts.address;
    this.runtimes = opts.runtimes ?? new RuntimeRegistry({ stateDir: opts.stateDir });
    this.fanout = new EventFanout(logger);
    const tasks = serviceClient(Tasks, transport);
    const events = new TaskEventStream({
      namespace,
      events: serviceClient(Events, transport),
      tasks,
      fanout: this.fanout,
      logger,
    });
    this.ctx = new RemoteContext(
      namespace,
      opts.stateDir,
      serviceClient(Containers, transport),
      tasks,
      events,
      logger,
      opts.defaultTimeoutMs ?? 60_000,
      serviceClient(Snapshots, transport),
    );
    this.version_ = serviceClient(Version, transport);
    this.transport = transport;
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

  /** Images in this client's namespace: pull, push, import, save, list, tag, remove, snapshots. */
  get images(): RemoteImageService {
    this.images_ ??= new RemoteImageService({
      transport: this.transport,
      defaultTimeoutMs: this.ctx.defaultTimeoutMs,
    });
    return this.images_;
  }

  /** The event stream, for tests and the supervisor: resync on demand, turn it off to prove it matters. */
  get eventStream(): TaskEventStream {
    return this.ctx.events;
  }

  async version(opts?: CallOptions): Promise<{ version: string; revision: string }> {
    const reply = await this.ctx.call("containerd version", opts, (s) =>
      this.version_.version({}, { signal: s }),
    );
    return { version: reply.version, revision: reply.revision };
  }

  async newContainer(id: string, spec: OciSpec, opts?: NewContainerOptions): Promise<Container> {
    validateIdentifier("container id", id);
    validateSpec(id, spec, opts?.snapshot !== undefined);
    // containerd's store refuses an empty label key with an untyped "key required" (gRPC Unknown).
    if (opts?.labels && Object.hasOwn(opts.labels, ""))
      throw new InvalidArgumentError(`create container ${id}: label keys must not be empty`);
    const runtime = await this.runtimes.resolve(opts?.runtime);
    const cgroupParent = this.sameHost
      ? missingCgroupParent(spec.linux?.cgroupsPath, this.createdCgroupParents)
      : undefined;
    if (cgroupParent) this.createdCgroupParents.add(cgroupParent);
    try {
      const { container } = await this.ctx.call(`create container ${id}`, opts, (s) =>
        this.ctx.containers.create(
          {
            container: {
              id,
              labels: { ...opts?.labels, ...(cgroupParent ? { [CGROUP_PARENT_LABEL]: cgroupParent } : {}) },
              runtime: {
                name: runtime.shim,
                ...(runtime.options
                  ? { options: bareAny(runtime.options.typeUrl, runtime.options.value) }
                  : {}),
              },
              spec: jsonAny(TYPE_URL.spec, spec),
              ...(opts?.image !== undefined ? { image: opts.image } : {}),
              ...(opts?.snapshot
                ? { snapshotter: opts.snapshot.snapshotter, snapshotKey: opts.snapshot.key }
                : {}),
            },
          },
          { signal: s },
        ),
      );
      return new RemoteContainer(this.ctx, id, container);
    } catch (err) {
      // The container owns its snapshot from here on; one that was never created owns none.
      if (opts?.snapshot && !isErrorCode(err, "already_exists"))
        await removeSnapshot(this.ctx, opts.snapshot.snapshotter, opts.snapshot.key);
      if (isErrorCode(err, "already_exists"))
        throw new AlreadyExistsError(`container ${id} already exists`, { cause: err });
      throw err;
    }
  }

  async loadContainer(id: string, opts?: CallOptions): Promise<Container> {
    validateIdentifier("container id", id);
    try {
      const { container } = await this.ctx.call(`load container ${id}`, opts, (s) =>
        this.ctx.containers.get({ id }, { signal: s }),
      );
      return new RemoteContainer(this.ctx, id, container);
    } catch (err) {
      if (isErrorCode(err, "not_found")) throw new NotFoundError(`no such container: ${id}`, { cause: err });
      throw err;
    }
  }

  async listContainers(opts?: CallOptions): Promise<ContainerInfo[]> {
    const { containers } = await this.ctx.call("list containers", opts, (s) =>
      this.ctx.containers.list({}, { signal: s }),
    );
    return containers.map(containerInfo);
  }

  events(opts?: EventsOptions): AsyncIterable<LibcontainerdEvent> {
    if (!this.closed) this.ctx.events.start();
    return this.fanout.subscribe(opts?.signal);
  }

  setBackend(backend: Backend): void {
    this.fanout.setBackend(backend);
    if (!this.closed) this.ctx.events.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ctx.events.close();
    await this.fanout.close();
  }
}

/** Checks what would otherwise fail late, inside the shim, after FIFOs and bundles exist. */
function validateSpec(id: string, spec: OciSpec, snapshot: boolean): void {
  const bad = (why: string) => new InvalidArgumentError(`create container ${id}: ${why}`);
  if (!spec || typeof spec !== "object") throw bad("spec must be an object");
  if (typeof spec.ociVersion !== "string") throw bad("spec.ociVersion must be a string");
  const process = spec.process;
  if (!process || !Array.isArray(process.args) || process.args.length === 0) {
    if (!process?.commandLine) throw bad("spec.process.args must be a non-empty array");
  }
  if (snapshot) {
    if (typeof spec.root?.path !== "string" || isAbsolute(spec.root.path))
      throw bad("with a snapshot, spec.root.path must be relative (rootfs): the snapshot is mounted there");
  } else if (spec.linux !== undefined || spec.windows === undefined) {
    const root = spec.root?.path;
    if (typeof root !== "string" || !isAbsolute(root)) {
      throw bad("spec.root.path must be an absolute host path (no snapshotter is used)");
    }
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw bad(`rootfs ${root} does not exist or is not a directory`);
  }
  try {
    checkLinuxResources(spec.linux?.resources, "spec.linux.resources");
  } catch (err) {
    throw bad(err instanceof Error ? err.message : String(err));
  }
}
