import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmdirSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Logger } from "pino";
import { resolveUser as accountsUser, additionalGroups } from "../../images/image-spec.js";
import type { LibcontainerdClient } from "../../libcontainerd/factory.js";
import type { CallOptions, Container, ExitStatus, Task } from "../../libcontainerd/types/client.js";
import { isErrorCode } from "../../libcontainerd/types/errors.js";
import type { JoinableNamespace } from "../../oci/linux-options.js";
import type { SeccompProfile } from "../../oci/seccomp.js";
import { badRequest, conflict, EngineError, notModified, toHttpError } from "../errors.js";
import type { EventBus } from "../events.js";
import type { ImageSource, PreparedRootfs } from "../image-source.js";
import {
  checkConnectable,
  checkEndpointIpam,
  checkNotRemoved,
  type EndpointIpamConfig,
  type EngineNetworks,
  isRunning,
  type NetworkPlan,
} from "../network-plan.js";
import type { VolumeStore } from "../volume-store.js";
import { type FilesystemChange, rootfsChanges, writableSize } from "./changes.js";
import { type CreateRequest, type HostConfig, parseBind } from "./config.js";
import { mountAll, mountVolumes, readInRoot, unmountAll, type Volume } from "./filesystem.js";
import { HealthMonitor, MAX_PROBE_OUTPUT, type Probe, probeCommand } from "./health.js";
import { IoHub } from "./io-hub.js";
import { type LogSettings, LogWriter, logSettings } from "./log-file.js";
import { unusedDockerName } from "./names.js";
import { forgedPidTitle, noHeaderOption, parsePsOutput, psPidsArg, type TopResult } from "./ps-output.js";
import { type ContainerRoot, openProcessRoot, openRootfs } from "./rootfs-worker.js";
import {
  type Donor,
  inNamespaceOf,
  mountShm,
  resolveDonors,
  sharedNamespaces,
  sharedWith,
  shmPathOf,
  startOrder,
  unmountShm,
  withDonorIds,
  withoutJoinedPaths,
  withSharedNamespaces,
} from "./shared-namespaces.js";
import { buildSpec, resolveUser, updatedResourcesOf, withImageConfig, withPrimaryGroup } from "./spec.js";
import { type ContainerRecord, type ContainerStore, checkName, ZERO_TIME } from "./store.js";
import {
  attachVolumes,
  mountContainerVolumes,
  populateVolumes,
  releaseVolumes,
  unmountContainerVolumes,
  volumesToPopulate,
} from "./volume-mounts.js";

const execFileAsync = promisify(execFile);

/** The label that marks containerd containers the engine made, with the Docker name as its value. */
export const ENGINE_NAME_LABEL = "io.ctrd.engine.name";

export interface ManagerDeps {
  client: LibcontainerdClient;
  store: ContainerStore;
  images: ImageSource;
  networks: EngineNetworks;
  events: EventBus;
  /** The local volumes: made, filled and mounted for containers, removed with them when asked. */
  volumes: VolumeStore;
  logger: Logger;
  /** The seccomp profile of containers that name none (dockerd's default); none: no filter. */
  seccompProfile?: SeccompProfile;
  /** A static init binary for HostConfig.Init (tini). */
  initBinary?: string;
}

export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

type WaitCondition = "not-running" | "next-exit" | "removed";

/** What the engine holds for a container while it runs: its IO, its task, who waits for it. */
interface Live {
  hub: IoHub;
  task?: Task;
  /** Resolves when the current run's exit has been recorded. */
  exited?: Promise<void>;
  exitWaiters: ((result: WaitResult) => void)[];
  removedWaiters: ((result: WaitResult) => void)[];
  restartTimer?: NodeJS.Timeout;
  /** The healthcheck of the current run, when the container has one. */
  health?: HealthMonitor;
  /** Serialises start/stop/kill/remove on one container. */
  lock: Promise<void>;
  /** A removal was asked for: the exit handler must not restart or auto-remove it. */
  removing: boolean;
  /** A restart stops it: the exit handler must not auto-remove it (dockerd clears AutoRemove meanwhile). */
  restarting: boolean;
  removed: boolean;
}

function now(): string {
  return new Date().toISOString();
}

/** Docker's restart backoff: 100 ms doubling per restart, reset after a run of 10 s (restartmanager). */
const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 60_000;
const BACKOFF_RESET_RUN_MS = 10_000;

/**
 * Docker containers on the library: create, start, stop, kill, wait, remove, restart policies,
 * and adoption of what runs when the engine starts. Each container's record is the source of truth
 * for Docker's view; containerd holds the container (spec, rootfs) and its task.
 */
export class ContainerManager {
  private readonly live = new Map<string, Live>();
  private readonly backoff = new Map<string, number>();
  private closing = false;

  constructor(private readonly deps: ManagerDeps) {}

  private liveOf(record: ContainerRecord): Live {
    let live = this.live.get(record.Id);
    if (!live) {
      live = {
        hub: new IoHub(new LogWriter(record.LogPath, keptLogSettings(record))),
        exitWaiters: [],
        removedWaiters: [],
        lock: Promise.resolve(),
        removing: false,
        restarting: false,
        removed: false,
      };
      this.live.set(record.Id, live);
    }
    return live;
  }

  hub(record: ContainerRecord): IoHub {
    return this.liveOf(record).hub;
  }

  private async locked<T>(record: ContainerRecord, work: () => Promise<T>): Promise<T> {
    const live = this.liveOf(record);
    const previous = live.lock;
    let release = (): void => {};
    live.lock = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      return await work();
    } finally {
      release();
    }
  }

  private attributes(record: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
    return { ...record.Config.Labels, image: record.Config.Image, name: record.Name.slice(1), ...extra };
  }

  emit(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.deps.events.publish("container", action, record.Id, this.attributes(record, extra));
  }

  async create(request: CreateRequest, name: string | null, opts: CallOptions): Promise<ContainerRecord> {
    const { store, images, networks, client } = this.deps;
    const image = await images.resolve(request.config.Image, opts);
    const id = randomBytes(32).toString("hex");
    const dir = store.containerDir(id);
    const record: ContainerRecord = {
      Id: id,
      Name: name ? checkName(name) : unusedDockerName((candidate) => store.nameTaken(candidate)),
      Created: now(),
      Path: "",
      Args: [],
      Config: withImageConfig(request.config, image.config),
      HostConfig: withDonorIds(request.hostConfig, (ref) => store.find(ref)?.Id),
      Image: image.id,
      State: {
        Status: "created",
        Pid: 0,
        ExitCode: 0,
        Error: "",
        OOMKilled: false,
        StartedAt: ZERO_TIME,
        FinishedAt: ZERO_TIME,
      },
      RestartCount: 0,
      ManuallyStopped: false,
      LogPath: join(dir, `${id}-json.log`),
      Networks: {},
      Ports: {},
    };
    // dockerd's initializeNetworking: a container on the host's network has the host's name.
    // dockerd's initializeNetworking: a container on the host's network has the host's name; so has one
    // in the host's UTS namespace.
    const hostUts = record.HostConfig.UTSMode === "host";
    if ((record.HostConfig.NetworkMode === "host" || hostUts) && record.Config.Hostname === "")
      record.Config.Hostname = hostname();
    // Others are named by their short id, in inspect too (dockerd's generateHostname); on another's
    // network (container:NAME) that one's name replaces it at each start.
    else if (record.Config.Hostname === "") record.Config.Hostname = id.slice(0, 12);
    store.add(record);
    let rootfs: PreparedRootfs | undefined;
    let attached = false;
    try {
      // In the tick that added the record: a volume it uses is never seen unused meanwhile.
      const mountPoints = attachVolumes(record.Config, record.HostConfig, this.deps.volumes, (ref) =>
        store.get(ref),
      );
      if (mountPoints.length > 0) record.MountPoints = mountPoints;
      // NetworkingConfig.EndpointsConfig: one is NetworkMode's network's, whatever it names (clients
      // before API 1.44); with more (1.44), NetworkMode's network is eth0 and the others are connected
      // after it, in the order given.
      const requested = Object.entries(request.endpoints);
      const others: [string, (typeof requested)[number][1]][] = [];
      let primaryEndpoint = requested.length === 1 ? requested[0]?.[1] : undefined;
      if (requested.length > 1 && !sharedWith(record.HostConfig.NetworkMode)) {
        const primary = await networks.resolve(record.HostConfig.NetworkMode, opts);
        for (const [ref, endpoint] of requested) {
          const network = await networks.resolve(ref, opts);
          if (network === primary) primaryEndpoint = endpoint;
          else others.push([network, endpoint]);
        }
      }
      // On another container's network (container:NAME): no network of its own; that one's namespace and
      // name files are joined at each start. An address asked for there is refused, as dockerd refuses
      // it on any network but a user one, not dropped.
      if (sharedWith(record.HostConfig.NetworkMode))
        for (const [, endpoint] of requested)
          checkEndpointIpam(record.HostConfig.NetworkMode, undefined, endpoint.IPAMConfig);
      const plan: NetworkPlan = sharedWith(record.HostConfig.NetworkMode)
        ? { host: false, hostsPath: "", resolvConfPath: "", hostnamePath: "", endpoints: {}, ports: {} }
        : await networks.attach(
            record,
            dir,
            opts,
            primaryEndpoint?.Aliases ?? [],
            primaryEndpoint?.IPAMConfig,
          );
      attached = Object.keys(plan.endpoints).length > 0;
      record.Networks = plan.endpoints;
      record.Ports = plan.ports;
      for (const [network, endpoint] of others) {
        checkConnectable(record, network);
        record.Networks[network] = await networks.connect(
          record,
          network,
          endpoint.Aliases ?? [],
          opts,
          endpoint.IPAMConfig,
        );
      }
      rootfs = await images.prepareRootfs(image, id, opts);
      await this.populateVolumes(record, opts);
      const userSpec = record.Config.User;
      const namedUser = userSpec !== "" && !/^\d+(:\d+)?$/.test(userSpec);
      const user = namedUser ? await images.user(image, userSpec, opts) : undefined;
      const { spec, path, args, env } = buildSpec({
        id,
        config: record.Config,
        hostConfig: record.HostConfig,
        image: image.config,
        rootfs,
        ...(record.MountPoints ? { volumes: record.MountPoints } : {}),
        ...(user ? { user } : {}),
        ...(this.deps.seccompProfile ? { defaultSeccomp: this.deps.seccompProfile } : {}),
        namespace: client.namespace,
        ...(this.deps.initBinary !== undefined ? { initBinary: this.deps.initBinary } : {}),
        network: plan,
        ...(isShareable(record) ? { shmPath: shmPathOf(dir) } : {}),
      });
      record.Path = path;
      record.Args = args;
      record.ProcessEnv = env;
      if (spec.process) record.ProcessUser = processUserOf(spec.process.user);
      await client.newContainer(id, spec, {
        ...opts,
        runtime: record.HostConfig.Runtime,
        labels: { [ENGINE_NAME_LABEL]: record.Name.slice(1) },
        ...(rootfs.kind === "snapshot"
          ? { snapshot: { snapshotter: rootfs.snapshotter, key: rootfs.key } }
          : {}),
        image: image.ref,
      } as Parameters<LibcontainerdClient["newContainer"]>[2]);
    } catch (err) {
      if (rootfs) await images.releaseRootfs(rootfs).catch(() => {});
      if (attached) await networks.detach(record).catch(() => {});
      store.remove(id);
      await releaseVolumes(record.MountPoints ?? [], this.deps.volumes, true).catch((releaseErr: unknown) =>
        this.deps.logger.warn({ err: releaseErr, id }, "could not remove the volumes of a failed create"),
      );
      // A 404 from create means "no such image" to the docker CLI, which then pulls it and tries again:
      // a network or user that is not there is the request's mistake (dockerd finds those at start).
      const { status, message } = toHttpError(err);
      throw status === 404 ? new EngineError(400, message, { cause: err }) : err;
    }
    store.save(record);
    this.emit(record, "create");
    return record;
  }

  /** POST /containers/{id}/start: 304 when it already runs. */
  async start(record: ContainerRecord, opts: CallOptions = {}): Promise<void> {
    await this.locked(record, async () => {
      const status = record.State.Status;
      if (status === "running" || status === "paused") throw notModified();
      if (status === "removing" || status === "dead")
        throw conflict(`container ${record.Id} is marked for removal and cannot be started`);
      const live = this.liveOf(record);
      clearTimeout(live.restartTimer);
      record.ManuallyStopped = false;
      this.resetRestartPolicy(record);
      await this.run(record, opts);
    }).catch((err: unknown) => this.removeAfterFailedStart(record, err));
  }

  /**
   * A start or restart asked for begins the restart policy anew, as dockerd's containerStart resets its
   * restart manager: on-failure:N may restart N times again, from the shortest delay.
   */
  private resetRestartPolicy(record: ContainerRecord): void {
    record.RestartCount = 0;
    this.backoff.delete(record.Id);
  }

  /** As dockerd's containerStart: a container with AutoRemove (`docker run --rm`) goes when its start fails. */
  private async removeAfterFailedStart(record: ContainerRecord, err: unknown): Promise<never> {
    if (record.HostConfig.AutoRemove && !this.live.get(record.Id)?.task) {
      await this.remove(record, { force: true, volumes: true }).catch((removeErr: unknown) =>
        this.deps.logger.warn({ err: removeErr, id: record.Id }, "could not auto-remove the container"),
      );
    }
    throw err;
  }

  private async container(record: ContainerRecord, opts: CallOptions): Promise<Container> {
    return this.deps.client.loadContainer(record.Id, opts);
  }

  /** Creates and starts a task, wired to the container's hub; its exit is handled in the background. */
  private async run(record: ContainerRecord, opts: CallOptions): Promise<void> {
    const live = this.liveOf(record);
    const container = await this.container(record, opts);
    // A task left from an earlier run (the engine died before deleting it) is removed first.
    await container
      .task(opts)
      .then((old) => old.forceDelete(opts))
      .catch((err: unknown) => {
        if (!isErrorCode(err, "not_found")) throw err;
      });
    const failed = (err: unknown): EngineError => {
      const { exitCode, error } = startError(err);
      // As dockerd: the exit code says why (127 not found, 126 not executable), the state stays as it was.
      record.State = {
        ...record.State,
        Status: record.State.StartedAt === ZERO_TIME ? "created" : "exited",
        Pid: 0,
        ExitCode: exitCode,
        Error: error.message,
      };
      this.deps.store.save(record);
      return error;
    };
    // A group GroupAdd names that the container's /etc/group lacks fails the start as dockerd's does: its
    // State.Error says why (and its ExitCode, 128, that it did not run).
    await this.resolveGroupsAtStart(record, container, opts).catch((err: unknown) => {
      throw failed(err);
    });
    if (isShareable(record)) await mountShm(this.shmPath(record), shmSizeOf(record), opts.signal);
    const joined = await this.joinSharedNamespaces(record, container, opts).catch(async (err: unknown) => {
      await this.unmountShm(record);
      throw err;
    });
    const volumeHooks = { volumes: this.deps.volumes, events: this.deps.events };
    const mountPoints = record.MountPoints ?? [];
    await mountContainerVolumes(record.Id, mountPoints, volumeHooks, opts.signal).catch(
      async (err: unknown) => {
        await this.forgetJoinedNamespaces(record);
        await this.unmountShm(record);
        throw failed(err);
      },
    );
    // As dockerd's endpoint join at each start: the host ports are taken now, not at create.
    record.Ports = await this.deps.networks.publishPorts(record, opts).catch(async (err: unknown) => {
      await this.forgetJoinedNamespaces(record);
      await unmountContainerVolumes(record.Id, mountPoints, volumeHooks);
      await this.unmountShm(record);
      throw failed(err);
    });
    const task = await container
      .newTask({
        ...opts,
        stdio: { stdin: record.Config.OpenStdin, stdout: true, stderr: true, terminal: record.Config.Tty },
      })
      .catch(async (err: unknown) => {
        await this.releasePorts(record);
        await this.forgetJoinedNamespaces(record);
        await unmountContainerVolumes(record.Id, mountPoints, volumeHooks);
        await this.unmountShm(record);
        throw failed(err);
      });
    live.hub.connect(task);
    const exited = task.wait();
    exited.catch(() => {});
    try {
      await this.checkJoined(joined, task, opts);
      // Limits changed by an update since create: containerd's spec still has the old ones.
      if (record.ResourcesUpdated)
        await task.updateResources({ linux: updatedResourcesOf(record.HostConfig) }, opts);
      await task.start(opts);
    } catch (err) {
      await task.forceDelete().catch(() => {});
      await live.hub.finish();
      await this.releasePorts(record);
      await this.forgetJoinedNamespaces(record);
      await unmountContainerVolumes(record.Id, mountPoints, volumeHooks);
      await this.unmountShm(record);
      throw failed(err);
    }
    live.task = task;
    const healthCommand = probeCommand(record.Config.Healthcheck);
    record.State = {
      Status: "running",
      Pid: task.pid,
      ExitCode: 0,
      Error: "",
      OOMKilled: false,
      StartedAt: now(),
      FinishedAt: ZERO_TIME,
      // A new run starts over, keeping the last results (daemon/health.go initHealthMonitor).
      ...(healthCommand
        ? { Health: { ...HealthMonitor.initialState(), Log: record.State.Health?.Log ?? [] } }
        : {}),
    };
    this.deps.store.save(record);
    this.emit(record, "start");
    this.startHealth(record, task);
    live.exited = this.afterExit(record, task, exited);
    await live.hub.markStarted();
  }

  /**
   * A container on another's network, PID or IPC namespace (`container:NAME`) joins that one's current
   * process's namespaces: its containerd spec is given their paths before the task is created (as dockerd
   * resolves them at each start), with the network donor's hostname and name files.
   */
  private async joinSharedNamespaces(
    record: ContainerRecord,
    container: Container,
    opts: CallOptions,
  ): Promise<JoinedNamespace[]> {
    if (Object.keys(sharedNamespaces(record.HostConfig)).length === 0) return [];
    const donors = new Map<string, Donor>();
    const { paths, network, shmPath } = resolveDonors(record, (ref) => {
      const donor = this.deps.store.find(ref);
      if (!donor) return undefined;
      const pid = this.live.get(donor.Id)?.task?.pid ?? 0;
      const ipc = donor.HostConfig.IpcMode;
      const donorShm = ipc === "shareable" ? this.shmPath(donor) : ipc === "host" ? "/dev/shm" : undefined;
      const found: Donor = { record: donor, pid, ...(donorShm ? { shmPath: donorShm } : {}) };
      donors.set(ref, found);
      return found;
    });
    const joined: JoinedNamespace[] = [];
    for (const [type, ref] of Object.entries(sharedNamespaces(record.HostConfig)) as [
      JoinableNamespace,
      string,
    ][]) {
      const donor = donors.get(ref);
      if (donor) joined.push({ type, donor: donor.record, pid: donor.pid });
    }
    const spec = (await container.info(opts)).spec;
    if (!spec) throw new EngineError(500, `container ${record.Id} has no spec in containerd`);
    const networkSpec = network
      ? (await this.container(network.record, opts).then((c) => c.info(opts))).spec
      : undefined;
    await container.updateSpec(withSharedNamespaces(spec, paths, networkSpec, shmPath), opts);
    if (network) {
      // dockerd's initializeNetworking: the container has its network donor's names.
      const hostname = network.record.Config.Hostname || network.record.Id.slice(0, 12);
      record.Config.Hostname = hostname;
      record.Config.Domainname = network.record.Config.Domainname;
      // An exec's environment is the process's: its HOSTNAME too.
      record.ProcessEnv = record.ProcessEnv?.map((entry) =>
        entry.startsWith("HOSTNAME=") ? `HOSTNAME=${hostname}` : entry,
      );
    }
    return joined;
  }

  /**
   * The task, created, is in each donor's namespaces: the donor still runs with the pid its path named
   * and the task's namespace is that process's. Its paths were resolved before the task was created (as
   * dockerd does); a donor that exited meanwhile (or whose exit was still being handled) may have left its
   * pid to an unrelated process, whose namespaces (the host's) runc would have joined.
   */
  private async checkJoined(
    joined: readonly JoinedNamespace[],
    task: Task,
    opts: CallOptions,
  ): Promise<void> {
    for (const { type, donor, pid } of joined) {
      const donorTask = this.live.get(donor.Id)?.task;
      const status = donorTask?.pid === pid ? await donorTask.status(opts).catch(() => "unknown") : "gone";
      const joinedIt =
        (status === "running" || status === "paused") && (await inNamespaceOf(task.pid, pid, type));
      if (!joinedIt)
        throw conflict(
          `cannot join ${type === "network" ? "network" : type.toUpperCase()} namespace of container ${donor.Id}: it stopped while this one started`,
        );
    }
  }

  /**
   * HostConfig.GroupAdd with names: resolved at each start in the container's own /etc/group, as
   * dockerd's getUser reads it from the container's rootfs (what the container, or docker cp, changed
   * since create counts; a name found nowhere fails the start, not the create), with a named user and
   * its groups from the same files. The containerd spec gets the process's user as create would have
   * made it from these files.
   */
  private async resolveGroupsAtStart(
    record: ContainerRecord,
    container: Container,
    opts: CallOptions,
  ): Promise<void> {
    const given: unknown = record.HostConfig.GroupAdd;
    // Strings, as checked at create (hostRunOptions).
    const groupAdd = Array.isArray(given) ? given.filter((group) => typeof group === "string") : [];
    if (groupAdd.every((group) => /^\d+$/.test(group))) return;
    const files = await this.withRootfsMounted(record, opts, async (root) => ({
      passwd: await readInRoot(root, "/etc/passwd"),
      group: await readInRoot(root, "/etc/group"),
    })).catch((err: unknown) => {
      throw new EngineError(500, `could not read the container's accounts: ${(err as Error).message}`, {
        cause: err,
      });
    });
    let extra: number[];
    let named: { uid: number; gid: number; additionalGids: number[] } | undefined;
    try {
      extra = additionalGroups(groupAdd, files.group);
      const userSpec = record.Config.User;
      if (userSpec !== "" && !/^\d+(:\d+)?$/.test(userSpec)) named = accountsUser(userSpec, files);
    } catch (err) {
      // dockerd: a spec it cannot make is the engine's error at start (errdefs.System).
      throw new EngineError(500, (err as Error).message, { cause: err });
    }
    const spec = (await container.info(opts)).spec;
    if (!spec?.process) throw new EngineError(500, `container ${record.Id} has no spec in containerd`);
    const user = spec.process.user;
    spec.process.user = withPrimaryGroup({
      ...user,
      ...(named ? { uid: named.uid, gid: named.gid } : {}),
      additionalGids: [...(named?.additionalGids ?? []), ...extra],
    });
    await container.updateSpec(spec, opts);
    record.ProcessUser = processUserOf(spec.process.user);
  }

  /**
   * A joiner's containerd spec without the namespace paths of a run that is over (withoutJoinedPaths):
   * two calls to containerd, for containers that join others only. A failure is logged: the next start
   * sets the paths anew all the same.
   */
  private async forgetJoinedNamespaces(record: ContainerRecord, opts: CallOptions = {}): Promise<void> {
    if (Object.keys(sharedNamespaces(record.HostConfig)).length === 0) return;
    try {
      const container = await this.container(record, opts);
      const spec = (await container.info(opts)).spec;
      const cleared = spec ? withoutJoinedPaths(spec, record.HostConfig) : undefined;
      if (cleared) await container.updateSpec(cleared, opts);
    } catch (err) {
      // Not found: the container is being removed, its spec with it.
      if (!isErrorCode(err, "not_found"))
        this.deps.logger.warn({ err, id: record.Id }, "could not clear the namespace paths of its last run");
    }
  }

  private shmPath(record: ContainerRecord): string {
    return shmPathOf(this.deps.store.containerDir(record.Id));
  }

  /** A shareable container's /dev/shm tmpfs goes with its run (dockerd's UnmountIpcMounts). */
  private async unmountShm(record: ContainerRecord): Promise<void> {
    if (isShareable(record)) await unmountShm(this.shmPath(record));
  }

  /** Follows a running task that the engine did not start (adopted after a restart). */
  private follow(record: ContainerRecord, task: Task): void {
    const live = this.liveOf(record);
    live.hub.connect(task);
    live.task = task;
    for (const mountPoint of record.MountPoints ?? [])
      void this.deps.volumes
        .mount(mountPoint.Name, record.Id)
        .catch((err: unknown) =>
          this.deps.logger.warn({ err, id: record.Id }, "could not adopt a volume mount"),
        );
    const exited = task.wait();
    live.exited = this.afterExit(record, task, exited);
    this.startHealth(record, task);
    void live.hub.markStarted();
  }

  /** Starts the healthcheck of a run, when the container has one (daemon/health.go initHealthMonitor). */
  private startHealth(record: ContainerRecord, task: Task): void {
    const live = this.liveOf(record);
    live.health?.stop();
    live.health = undefined;
    const command = probeCommand(record.Config.Healthcheck);
    if (!command || !record.Config.Healthcheck) return;
    record.State.Health ??= HealthMonitor.initialState();
    const monitor = new HealthMonitor(
      record.Config.Healthcheck,
      command,
      Date.parse(record.State.StartedAt),
      record.State.Health,
      {
        probe: this.probe(record, task),
        active: () => record.State.Status === "running",
        recorded: (state, changed) => {
          record.State.Health = state;
          this.deps.store.save(record);
          if (changed) this.emit(record, `health_status: ${state.Status}`);
        },
      },
    );
    live.health = monitor;
    monitor.start();
  }

  /** A healthcheck's probe: the command as an exec in the container, as its process's user, env and dir. */
  private probe(record: ContainerRecord, task: Task): Probe {
    return async (command, signal) => {
      const process = await task.exec(
        `health-${randomBytes(12).toString("hex")}`,
        {
          args: command,
          user: record.ProcessUser ?? resolveUser(record.Config.User, undefined),
          cwd: record.Config.WorkingDir || "/",
          terminal: false,
          ...(record.ProcessEnv ? { env: record.ProcessEnv } : {}),
        },
        { signal, stdio: { stdout: true, stderr: true } },
      );
      let output = "";
      const outputs = [process.stdout, process.stderr].map(async (stream) => {
        if (!stream) return;
        for await (const chunk of stream) {
          if (output.length < MAX_PROBE_OUTPUT) output = (output + String(chunk)).slice(0, MAX_PROBE_OUTPUT);
        }
      });
      const kill = (): void => {
        process.kill("SIGKILL").catch(() => {});
      };
      signal.addEventListener("abort", kill, { once: true });
      try {
        const status = await process.wait();
        await Promise.race([Promise.allSettled(outputs), sleep(1_000)]);
        return { exitCode: status.exitCode, output };
      } finally {
        signal.removeEventListener("abort", kill);
        await process.delete().catch(() => {});
      }
    };
  }

  private async afterExit(record: ContainerRecord, task: Task, exited: Promise<ExitStatus>): Promise<void> {
    const live = this.liveOf(record);
    let status: ExitStatus;
    try {
      status = await exited;
    } catch (err) {
      if (this.closing) return;
      this.deps.logger.warn({ err, id: record.Id }, "lost track of a container's task");
      status = { exitCode: 255, exitedAt: new Date() };
    }
    if (this.closing) return;
    // A container whose monitor stops is unhealthy (container/health.go CloseMonitorChannel: "for
    // compatibility reasons"): an exited one is not listed by `ps --filter health=healthy`.
    const monitored = live.health !== undefined;
    live.health?.stop();
    live.health = undefined;
    const health =
      monitored && record.State.Health ? { ...record.State.Health, Status: "unhealthy" as const } : undefined;
    await live.hub.finish();
    try {
      await task.delete();
    } catch (err) {
      if (!isErrorCode(err, "not_found"))
        this.deps.logger.warn({ err, id: record.Id }, "could not delete the task");
    }
    live.task = undefined;
    // Before the exit is recorded: a start (which waits for that) sets the paths of its own run.
    await this.forgetJoinedNamespaces(record);
    await unmountContainerVolumes(record.Id, record.MountPoints ?? [], {
      volumes: this.deps.volumes,
      events: this.deps.events,
    });
    await this.unmountShm(record);
    // As dockerd's release of the sandbox's endpoints at exit: the ports are free for others until the
    // next start (a restart policy's too) takes them again.
    await this.releasePorts(record);
    const ranMs = Date.now() - Date.parse(record.State.StartedAt);
    record.State = {
      ...record.State,
      Status: "exited",
      Pid: 0,
      ExitCode: status.exitCode,
      OOMKilled: status.oomKilled ?? false,
      FinishedAt: status.exitedAt.toISOString(),
      ...(health ? { Health: health } : {}),
    };
    this.deps.store.save(record);
    this.emit(record, "die", { exitCode: String(status.exitCode) });
    const result: WaitResult = { StatusCode: status.exitCode, Error: null };
    for (const waiter of live.exitWaiters.splice(0)) waiter(result);
    if (live.removing) return;
    if (this.shouldRestart(record, status.exitCode)) this.scheduleRestart(record, ranMs);
    else if (record.HostConfig.AutoRemove && !live.restarting) {
      // Not awaited: a stop waits for this exit to be recorded while it holds the lock remove() takes.
      void this.remove(record, { force: true, volumes: true }).catch((err: unknown) =>
        this.deps.logger.warn({ err, id: record.Id }, "could not auto-remove the container"),
      );
    }
  }

  /** The task's published ports given back (a failure is logged: the record keeps them for a later try). */
  private async releasePorts(record: ContainerRecord): Promise<void> {
    await this.deps.networks
      .unpublishPorts(record)
      .catch((err: unknown) =>
        this.deps.logger.warn({ err, id: record.Id }, "could not release the container's published ports"),
      );
    record.Ports = {};
  }

  private shouldRestart(record: ContainerRecord, exitCode: number): boolean {
    if (record.ManuallyStopped || this.closing) return false;
    const policy = record.HostConfig.RestartPolicy;
    switch (policy.Name) {
      case "always":
      case "unless-stopped":
        return true;
      case "on-failure":
        return (
          exitCode !== 0 && (policy.MaximumRetryCount === 0 || record.RestartCount < policy.MaximumRetryCount)
        );
      default:
        return false;
    }
  }

  private scheduleRestart(record: ContainerRecord, ranMs: number): void {
    const live = this.liveOf(record);
    const previous = ranMs >= BACKOFF_RESET_RUN_MS ? 0 : (this.backoff.get(record.Id) ?? 0);
    const delay = previous === 0 ? BACKOFF_START_MS : Math.min(previous * 2, BACKOFF_MAX_MS);
    this.backoff.set(record.Id, delay);
    record.State.Status = "restarting";
    this.deps.store.save(record);
    live.restartTimer = setTimeout(() => {
      void this.locked(record, async () => {
        if (live.removing || record.State.Status !== "restarting" || this.closing) return;
        record.RestartCount += 1;
        try {
          await this.run(record, {});
        } catch (err) {
          this.deps.logger.warn({ err, id: record.Id }, "restarting the container failed");
          if (this.shouldRestart(record, record.State.ExitCode)) this.scheduleRestart(record, 0);
        }
      });
    }, delay);
  }

  /** The signal that stops the container: its StopSignal, else SIGTERM. */
  private stopSignal(record: ContainerRecord): string {
    return record.Config.StopSignal || "SIGTERM";
  }

  /** POST /containers/{id}/stop: the stop signal, then SIGKILL after `timeoutSec`. 304 when not running. */
  async stop(record: ContainerRecord, timeoutSec: number | undefined, opts: CallOptions = {}): Promise<void> {
    await this.locked(record, async () => {
      const live = this.liveOf(record);
      if (record.State.Status === "restarting") {
        clearTimeout(live.restartTimer);
        record.ManuallyStopped = true;
        record.State.Status = "exited";
        this.deps.store.save(record);
        return;
      }
      if (!live.task) throw notModified();
      record.ManuallyStopped = true;
      this.deps.store.save(record);
      await this.stopTask(record, live, timeoutSec ?? record.Config.StopTimeout ?? 10, opts);
      this.emit(record, "stop");
    });
  }

  private async stopTask(
    record: ContainerRecord,
    live: Live,
    timeoutSec: number,
    opts: CallOptions,
  ): Promise<void> {
    const task = live.task;
    const exited = live.exited;
    if (!task || !exited) return;
    if (record.State.Status === "paused") await task.resume(opts).catch(() => {});
    const signal = this.stopSignal(record);
    await task.kill(signal, opts).catch(ignoreGone);
    this.emit(record, "kill", { signal: signalNumber(signal) });
    const stopped = await Promise.race([
      exited.then(() => true),
      sleep(Math.max(0, timeoutSec) * 1000, false),
    ]);
    if (!stopped) {
      await task.kill("SIGKILL", opts).catch(ignoreGone);
      this.emit(record, "kill", { signal: "9" });
      await exited;
    }
  }

  async restart(
    record: ContainerRecord,
    timeoutSec: number | undefined,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.locked(record, async () => {
      const live = this.liveOf(record);
      clearTimeout(live.restartTimer);
      record.ManuallyStopped = true;
      live.restarting = true;
      try {
        if (live.task) {
          await this.stopTask(record, live, timeoutSec ?? record.Config.StopTimeout ?? 10, opts);
          // dockerd's containerRestart stops it as containerStop does, with its event.
          this.emit(record, "stop");
        }
      } finally {
        live.restarting = false;
      }
      record.ManuallyStopped = false;
      this.resetRestartPolicy(record);
      await this.run(record, opts);
      this.emit(record, "restart");
    }).catch((err: unknown) => this.removeAfterFailedStart(record, err));
  }

  /** POST /containers/{id}/kill. 409 when it is not running, as Docker answers. */
  async kill(record: ContainerRecord, signal: string, opts: CallOptions = {}): Promise<void> {
    const live = this.liveOf(record);
    const task = live.task;
    if (!task) throw conflict(`Container ${record.Id} is not running`);
    const stops =
      signal === "SIGKILL" || signal === "KILL" || signal === "9" || signal === this.stopSignal(record);
    if (stops) {
      record.ManuallyStopped = true;
      this.deps.store.save(record);
    }
    if (record.State.Status === "paused" && stops) await task.resume(opts).catch(() => {});
    await task.kill(signal, opts);
    this.emit(record, "kill", { signal: signalNumber(signal) });
  }

  async pause(record: ContainerRecord, opts: CallOptions = {}): Promise<void> {
    const task = this.liveOf(record).task;
    if (!task || record.State.Status !== "running")
      throw conflict(
        record.State.Status === "paused"
          ? `Container ${record.Id} is already paused`
          : `Container ${record.Id} is not running`,
      );
    await task.pause(opts);
    record.State.Status = "paused";
    this.deps.store.save(record);
    this.emit(record, "pause");
  }

  async unpause(record: ContainerRecord, opts: CallOptions = {}): Promise<void> {
    const task = this.liveOf(record).task;
    if (!task || record.State.Status !== "paused") throw conflict(`Container ${record.Id} is not paused`);
    await task.resume(opts);
    record.State.Status = "running";
    this.deps.store.save(record);
    this.emit(record, "unpause");
  }

  /**
   * The uid and gid for `user` in this container (exec's User): ids as given, names from the image's
   * accounts; empty means the container's own user.
   */
  async userFor(
    record: ContainerRecord,
    user: string,
    opts: CallOptions = {},
  ): Promise<{ uid: number; gid: number; additionalGids?: number[] }> {
    if (user === "") return record.ProcessUser ?? resolveUser(record.Config.User, undefined);
    if (user === "root" || /^\d+(:\d+)?$/.test(user)) return withPrimaryGroup(resolveUser(user, undefined));
    const image = await this.deps.images.resolve(record.Image, opts);
    return withPrimaryGroup(await this.deps.images.user(image, user, opts));
  }

  task(record: ContainerRecord): Task | undefined {
    return this.live.get(record.Id)?.task;
  }

  /** POST /containers/{id}/wait. Resolves per `condition`; the signal ends the wait. */
  wait(record: ContainerRecord, condition: WaitCondition, signal: AbortSignal): Promise<WaitResult> {
    const live = this.liveOf(record);
    const current = (): WaitResult => ({ StatusCode: record.State.ExitCode, Error: null });
    const running =
      record.State.Status === "running" ||
      record.State.Status === "paused" ||
      record.State.Status === "restarting";
    if (condition === "not-running" && !running) return Promise.resolve(current());
    if (condition === "removed" && live.removed) return Promise.resolve(current());
    return new Promise((resolve, reject) => {
      const list = condition === "removed" ? live.removedWaiters : live.exitWaiters;
      const waiter = (result: WaitResult): void => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      };
      const onAbort = (): void => {
        const index = list.indexOf(waiter);
        if (index >= 0) list.splice(index, 1);
        reject(new EngineError(499, "the client went away"));
      };
      list.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** DELETE /containers/{id}: 409 while it runs unless `force`; `volumes` (`-v`): its anonymous volumes too. */
  async remove(
    record: ContainerRecord,
    options: { force: boolean; volumes?: boolean },
    opts: CallOptions = {},
  ): Promise<void> {
    await this.locked(record, async () => {
      const live = this.liveOf(record);
      if (live.removed) return;
      clearTimeout(live.restartTimer);
      const running = live.task !== undefined;
      if (running && !options.force)
        throw conflict(
          `You cannot remove a ${record.State.Status === "paused" ? "paused" : "running"} container ${record.Id}. Stop the container before attempting removal or force remove`,
        );
      record.ManuallyStopped = true;
      // Set before the kill: the exit handler must not start an auto-remove of its own (it would wait on this lock).
      live.removing = true;
      if (running && live.task) {
        if (record.State.Status === "paused") await live.task.resume(opts).catch(() => {});
        await live.task.kill("SIGKILL", opts).catch(ignoreGone);
        // As dockerd's cleanupContainer, which kills through daemon.Kill and its event.
        this.emit(record, "kill", { signal: "9" });
        await live.exited;
      }
      record.State.Status = "removing";
      try {
        const container = await this.deps.client.loadContainer(record.Id, opts);
        await container
          .task(opts)
          .then((task) => task.forceDelete(opts))
          .catch((err: unknown) => {
            if (!isErrorCode(err, "not_found")) throw err;
          });
        await container.delete(opts);
      } catch (err) {
        if (!isErrorCode(err, "not_found")) {
          live.removing = false;
          record.State.Status = "dead";
          this.deps.store.save(record);
          throw err;
        }
      }
      await this.deps.networks
        .detach(record, opts)
        .catch((err: unknown) =>
          this.deps.logger.warn({ err, id: record.Id }, "could not detach the container's networks"),
        );
      live.hub.close();
      await this.unmountShm(record);
      this.deps.store.remove(record.Id);
      await releaseVolumes(record.MountPoints ?? [], this.deps.volumes, options.volumes === true).catch(
        (err: unknown) =>
          this.deps.logger.warn({ err, id: record.Id }, "could not remove the container's volumes"),
      );
      this.live.delete(record.Id);
      this.backoff.delete(record.Id);
      live.removed = true;
      this.emit(record, "destroy");
      const result: WaitResult = { StatusCode: record.State.ExitCode, Error: null };
      for (const waiter of live.removedWaiters.splice(0)) waiter(result);
      for (const waiter of live.exitWaiters.splice(0)) waiter(result);
    });
  }

  /**
   * POST /networks/{id}/connect, as dockerd's ConnectToNetwork: a created, running or stopped container
   * gets an interface on the network in its netns at once (here the netns lives from create to rm).
   * Connected already: a running container's is refused, another's kept as it is (dockerd keeps the
   * endpoint settings it has).
   */
  async connect(
    record: ContainerRecord,
    network: string,
    aliases: string[],
    opts: CallOptions = {},
    ipam?: EndpointIpamConfig,
  ): Promise<void> {
    await this.locked(record, async () => {
      checkNotRemoved(record);
      if (record.Networks[network]) {
        if (!isRunning(record)) return;
        throw new EngineError(
          403,
          `endpoint with name ${record.Name.slice(1)} already exists in network ${network}`,
        );
      }
      checkConnectable(record, network);
      record.Networks[network] = await this.deps.networks.connect(record, network, aliases, opts, ipam);
      this.deps.store.save(record);
      // Its first network again (all were disconnected): the ports are its, published now while it
      // runs (a stopped one's at its next start). A port taken meanwhile fails the connect, undone.
      if (isRunning(record)) {
        record.Ports = await this.deps.networks.publishPorts(record, opts).catch(async (err: unknown) => {
          await this.deps.networks.disconnect(record, network, opts);
          delete record.Networks[network];
          this.deps.store.save(record);
          throw err;
        });
        this.deps.store.save(record);
      }
    });
  }

  /**
   * POST /networks/{id}/disconnect, as dockerd's DisconnectFromNetwork: the container's interface on the
   * network goes (its address, names and, for the network that publishes them, its ports); the
   * container stays, with its netns, even on no network.
   */
  async disconnect(record: ContainerRecord, network: string, opts: CallOptions = {}): Promise<void> {
    await this.locked(record, async () => {
      checkNotRemoved(record);
      if (!record.Networks[network])
        throw new EngineError(403, `container ${record.Id} is not connected to network ${network}`);
      if (network === "host" && record.HostConfig.NetworkMode === "host")
        throw badRequest(
          "cannot disconnect container from host network - container was created in host network mode",
        );
      // none has nothing of its own to take away: its namespace is the task's.
      if (network !== "none" && (await this.deps.networks.disconnect(record, network, opts)))
        record.Ports = {};
      delete record.Networks[network];
      this.deps.store.save(record);
    });
  }

  /**
   * POST /containers/{id}/update: new limits and restart policy. A running task's cgroup is changed at
   * once; a stopped container's next task gets them before it starts (containerd keeps the spec of create).
   */
  async update(
    record: ContainerRecord,
    change: (current: HostConfig) => HostConfig,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.locked(record, async () => {
      // Under the lock: two updates at once (memory, then a restart policy) each keep the other's change.
      const hostConfig = change(record.HostConfig);
      const resources = updatedResourcesOf(hostConfig);
      const task = this.liveOf(record).task;
      if (task) await task.updateResources({ linux: resources }, opts);
      record.HostConfig = hostConfig;
      record.ResourcesUpdated = true;
      this.deps.store.save(record);
    });
    this.emit(record, "update");
  }

  async rename(record: ContainerRecord, name: string, opts: CallOptions = {}): Promise<void> {
    const old = record.Name;
    if (old === (name.startsWith("/") ? name : `/${name}`))
      throw badRequest("Renaming a container with the same name as its current name");
    this.deps.store.rename(record, name);
    // containerd's record carries the name too (ctr and ctrd show it).
    const container = await this.deps.client.loadContainer(record.Id, opts).catch(() => undefined);
    await container
      ?.setLabels({ [ENGINE_NAME_LABEL]: record.Name.slice(1) }, opts)
      .catch((err: unknown) =>
        this.deps.logger.warn({ err, id: record.Id }, "could not relabel the renamed container"),
      );
    this.emit(record, "rename", { oldName: old });
  }

  /**
   * GET /containers/{id}/top: `ps` on the host given the container's pids (`-q`, so that options that
   * select no process of their own, `-o pid,comm`, still list them), as dockerd's ContainerTop runs it.
   */
  async top(record: ContainerRecord, psArgs: string, opts: CallOptions = {}): Promise<TopResult> {
    // Refused before anything else, as dockerd's ContainerTop refuses it.
    const forged = forgedPidTitle(psArgs);
    if (forged !== undefined) throw new EngineError(500, forged);
    const task = this.liveOf(record).task;
    if (!task) throw conflict(`Container ${record.Id} is not running`);
    // The client's words (the docker CLI joins them with spaces); -ef without any.
    const words = psArgs.split(" ").filter((word) => word !== "");
    const args = words.length === 0 ? ["-ef"] : words;
    const noHeader = noHeaderOption(args);
    if (noHeader !== undefined) throw new EngineError(500, `option ${noHeader} is not allowed`);
    const pids = (await task.pids(opts)).map((info) => info.pid);
    const ps = (argv: string[]) =>
      execFileAsync("ps", argv, { signal: opts.signal, maxBuffer: 16 * 1024 * 1024 });
    let stdout: string;
    try {
      // Some options (`f`) cannot go with -q: then ps selects by them alone.
      ({ stdout } = await ps([...args, psPidsArg(pids)]).catch(() => ps(args)));
    } catch (err) {
      const stderr = (err as { stderr?: unknown }).stderr;
      const why = (typeof stderr === "string" && stderr.split("\n")[0]) || (err as Error).message;
      throw new EngineError(500, `ps: ${why}`);
    }
    let result: TopResult;
    try {
      result = parsePsOutput(stdout, new Set(pids));
    } catch (err) {
      throw new EngineError(500, (err as Error).message);
    }
    this.emit(record, "top");
    return result;
  }

  /** Where a stopped container's rootfs is mounted while its files are copied (never inside its own dir). */
  private mountPoint(record: ContainerRecord): string {
    return join(dirname(this.deps.store.dir), "mounts", record.Id);
  }

  /**
   * Runs `work` on the container's filesystem, as `docker cp` sees it: a running container's through its
   * process's root (its mounts included), a stopped one's snapshot mounted for the while, under the
   * container's lock so that it is neither started nor removed meanwhile. The root is open for the while:
   * a running one's pinned to the task's process, so that a PID reused after it exited (before the task
   * is deleted) cannot make it the host's.
   */
  async withFilesystem<T>(
    record: ContainerRecord,
    opts: CallOptions,
    work: (root: ContainerRoot) => Promise<T>,
  ): Promise<T> {
    const inRoot = async (handle: FileHandle, running: boolean): Promise<T> => {
      try {
        return await work({ fd: handle.fd, running });
      } finally {
        await handle.close();
      }
    };
    const task = this.live.get(record.Id)?.task;
    // Its process's root holds its /proc, which for a container in the host's PID namespace lists the
    // host's processes: a path swapped for a link to /proc/1/root while the copy runs would lead to the
    // host's files. dockerd copies from the rootfs instead, where /proc is an empty directory.
    const hostPid = () =>
      new EngineError(
        501,
        `copying files of a running container in the host's PID namespace is not supported by this engine: stop ${record.Name.slice(1)} first`,
      );
    if (task && task.pid > 0 && record.HostConfig.PidMode === "host") throw hostPid();
    const root = task && task.pid > 0 ? await openProcessRoot(record.Id, task.pid) : undefined;
    if (root) return inRoot(root, true);
    return this.locked(record, async () => {
      const running = this.live.get(record.Id)?.task;
      if (running && running.pid > 0) {
        if (record.HostConfig.PidMode === "host") throw hostPid();
        const root = await openProcessRoot(record.Id, running.pid);
        if (!root) throw conflict(`Container ${record.Id} is stopping: try again once it has stopped`);
        return inRoot(root, true);
      }
      if (record.State.Status === "removing" || record.State.Status === "dead")
        throw conflict(`container ${record.Id} is marked for removal`);
      return this.withRootfsMounted(record, opts, async (target) => {
        await mountVolumes(containerVolumes(record), target, opts.signal);
        return inRoot(await openRootfs(target), false);
      });
    });
  }

  /** Runs `work` on the container's snapshot mounted for the while (a stopped or new container's rootfs). */
  private async withRootfsMounted<T>(
    record: ContainerRecord,
    opts: CallOptions,
    work: (target: string) => Promise<T>,
  ): Promise<T> {
    const mounts = await this.deps.images.rootfsMounts(record.Id, opts);
    const target = this.mountPoint(record);
    mkdirSync(target, { recursive: true, mode: 0o700 });
    try {
      await mountAll(mounts, target, opts.signal);
      return await work(target);
    } finally {
      await unmountAll(target);
      try {
        rmdirSync(target);
      } catch (err) {
        this.deps.logger.warn({ err, id: record.Id }, "could not remove the rootfs mount point");
      }
    }
  }

  /** Copy-up at create: each new, empty volume gets what the image has at its destination (dockerd's populateVolumes). */
  private async populateVolumes(record: ContainerRecord, opts: CallOptions): Promise<void> {
    const pending = await volumesToPopulate(record.MountPoints ?? [], this.deps.volumes);
    if (pending.length === 0) return;
    await this.withRootfsMounted(record, opts, (target) =>
      populateVolumes(pending, target, this.deps.volumes.dir, opts.signal),
    );
  }

  /** GET /containers/{id}/changes (docker diff): the container's writable layer against its image. */
  async changes(record: ContainerRecord, opts: CallOptions = {}): Promise<FilesystemChange[] | null> {
    const mounts = await this.deps.images.rootfsMounts(record.Id, opts);
    const changes = await rootfsChanges(mounts);
    // dockerd answers null for a container without changes.
    return changes.length > 0 ? changes : null;
  }

  /** SizeRw: what the container wrote into its writable layer, in bytes (0 when its snapshot is gone). */
  async writableSize(record: ContainerRecord, opts: CallOptions = {}): Promise<number> {
    const mounts = await this.deps.images.rootfsMounts(record.Id, opts).catch(() => []);
    return writableSize(mounts);
  }

  /** Mount points an engine that died while copying files left: unmounted before anything else. */
  private async unmountLeftovers(): Promise<void> {
    const dir = join(dirname(this.deps.store.dir), "mounts");
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      await unmountAll(join(dir, name));
      try {
        rmdirSync(join(dir, name));
      } catch (err) {
        this.deps.logger.warn({ err, path: join(dir, name) }, "could not remove a leftover mount point");
      }
    }
  }

  /**
   * After the engine (re)starts: follow the containers that still run, record the exits missed
   * meanwhile, and apply restart policies as dockerd does at start-up.
   */
  async adopt(opts: CallOptions = {}): Promise<void> {
    const { store, client, logger } = this.deps;
    await this.unmountLeftovers();
    // Containers that join another's namespaces after that one (and a chain's in its order), as dockerd
    // orders its restarts at boot (GetDependentContainers): their donors must be running first.
    for (const record of startOrder(store.load())) {
      try {
        await this.adoptOne(record, client, opts);
      } catch (err) {
        logger.warn({ err, id: record.Id }, "could not adopt the container");
      }
    }
  }

  private async adoptOne(
    record: ContainerRecord,
    client: LibcontainerdClient,
    opts: CallOptions,
  ): Promise<void> {
    if (record.State.Status === "removing") {
      await this.remove(record, { force: true }, opts);
      return;
    }
    let container: Container;
    try {
      container = await client.loadContainer(record.Id, opts);
    } catch (err) {
      if (!isErrorCode(err, "not_found")) throw err;
      // containerd lost it (its data root was wiped): nothing can run it again.
      record.State = { ...record.State, Status: "dead", Pid: 0, Error: "the containerd container is gone" };
      this.deps.store.save(record);
      return;
    }
    let task: Task | undefined;
    try {
      task = await container.attachTask(
        { stdin: record.Config.OpenStdin, stdout: true, stderr: true, terminal: record.Config.Tty },
        opts,
      );
    } catch (err) {
      if (!isErrorCode(err, "not_found")) throw err;
    }
    const status = task ? await task.status(opts) : "stopped";
    if (task && (status === "running" || status === "paused" || status === "pausing")) {
      record.State.Status = status === "running" ? "running" : "paused";
      record.State.Pid = task.pid;
      this.deps.store.save(record);
      this.follow(record, task);
      return;
    }
    await this.unmountShm(record);
    let exitCode = record.State.ExitCode;
    let finishedAt = now();
    if (task) {
      const exit = await task.delete(opts).catch(() => undefined);
      if (exit) {
        exitCode = exit.exitCode;
        finishedAt = exit.exitedAt.toISOString();
      }
    }
    await this.forgetJoinedNamespaces(record);
    await this.releasePorts(record);
    const wasRunning = ["running", "paused", "restarting"].includes(record.State.Status);
    if (wasRunning) {
      record.State = {
        ...record.State,
        Status: "exited",
        Pid: 0,
        ExitCode: exitCode,
        FinishedAt: finishedAt,
      };
      this.deps.store.save(record);
      this.emit(record, "die", { exitCode: String(exitCode) });
    }
    const policy = record.HostConfig.RestartPolicy.Name;
    const restartAtBoot =
      (policy === "always" && wasRunning) ||
      (policy === "unless-stopped" && !record.ManuallyStopped && wasRunning) ||
      (policy === "on-failure" && wasRunning && this.shouldRestart(record, exitCode));
    if (restartAtBoot) {
      await this.locked(record, () => this.run(record, opts)).catch((err: unknown) => {
        // An engine killed while it started this container leaves containerd's create in flight, its
        // shim bundle still there ("failed to start shim: mkdir …: file exists") until that create
        // has undone itself: the policy retries with its backoff, as after any failed restart.
        if (!this.shouldRestart(record, record.State.ExitCode)) throw err;
        this.deps.logger.warn(
          { err, id: record.Id },
          "restarting the container at start-up failed; retrying",
        );
        this.scheduleRestart(record, 0);
      });
    } else if (wasRunning && record.HostConfig.AutoRemove)
      await this.remove(record, { force: true, volumes: true }, opts);
  }

  /** Stops following containers (they keep running); pending restarts are dropped. */
  close(): void {
    this.closing = true;
    for (const live of this.live.values()) {
      clearTimeout(live.restartTimer);
      live.health?.stop();
      for (const waiter of live.exitWaiters.splice(0))
        waiter({ StatusCode: -1, Error: { Message: "the engine is shutting down" } });
      live.hub.close();
    }
  }
}

/** A process's user as the record keeps it (exec's and health probes' default): its groups with it. */
function processUserOf(user: { uid: number; gid: number; additionalGids?: number[] }): {
  uid: number;
  gid: number;
  additionalGids?: number[];
} {
  const { uid, gid, additionalGids } = user;
  return additionalGids?.length ? { uid, gid, additionalGids: [...additionalGids] } : { uid, gid };
}

/**
 * A task that could not be created or started, as dockerd's translateContainerdStartErr words it: a
 * command not found or not executable is the caller's mistake (400, exit code 127 or 126; the docker
 * CLI exits with the same code), anything else the engine's (500, exit code 128).
 */
/**
 * containerd's words for why a process did not start, without the context libcontainerd puts before
 * them ("create task for container ID: ", "exec ID in container ID: start exec ID in container ID: "):
 * dockerd passes containerd's message on as it is.
 */
function runtimeMessage(message: string): string {
  const starts = ["failed to create shim task: ", "OCI runtime "]
    .map((words) => message.indexOf(words))
    .filter((at) => at >= 0);
  return starts.length > 0 ? message.slice(Math.min(...starts)) : message;
}

export function startError(err: unknown): { exitCode: number; error: EngineError } {
  const message = runtimeMessage(err instanceof Error ? err.message : String(err));
  const lower = message.toLowerCase();
  if (lower.includes("is a directory"))
    return { exitCode: 126, error: badRequest(`${message}: permission denied`) };
  if (lower.includes("permission denied")) return { exitCode: 126, error: badRequest(message) };
  if (
    lower.includes("executable file not found") ||
    lower.includes("no such file or directory") ||
    lower.includes("not a directory")
  )
    return { exitCode: 127, error: badRequest(message) };
  return { exitCode: 128, error: new EngineError(500, message, { cause: err }) };
}

function ignoreGone(err: unknown): void {
  if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGSTOP: 19,
  SIGCONT: 18,
  SIGWINCH: 28,
};

/** Docker's kill events carry the signal as a number. */
export function signalNumber(signal: string): string {
  if (/^\d+$/.test(signal)) return signal;
  const name = signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  return String(SIGNAL_NUMBERS[name] ?? signal);
}

/** The container's volumes as dockerd's MountPoints: -v binds, --mount binds and tmpfs, and its volumes. */
export function containerVolumes(record: Pick<ContainerRecord, "HostConfig" | "MountPoints">): Volume[] {
  const { HostConfig: hostConfig } = record;
  const binds = (hostConfig.Binds ?? [])
    .map((spec) => parseBind(spec))
    .filter((bind) => bind.type === "bind")
    .map((bind): Volume => ({ source: bind.source, destination: bind.destination, readonly: bind.readonly }));
  const mounts = (hostConfig.Mounts ?? [])
    .filter((mount) => mount.Type !== "volume")
    .map(
      (mount): Volume => ({
        ...(mount.Type === "bind" ? { source: mount.Source } : {}),
        destination: mount.Target,
        readonly: mount.ReadOnly,
      }),
    );
  const volumes = (record.MountPoints ?? []).map(
    (mountPoint): Volume => ({
      source: mountPoint.Source,
      destination: mountPoint.Destination,
      readonly: !mountPoint.RW,
    }),
  );
  return [...binds, ...mounts, ...volumes];
}

/** The container's log settings; a record from before they were checked keeps an unrotated log. */
function keptLogSettings(record: ContainerRecord): LogSettings {
  try {
    return logSettings(record.HostConfig.LogConfig);
  } catch {
    return { kept: true, maxFiles: 1 };
  }
}

/** A namespace a starting container joins: its donor and the donor's pid its path was resolved by. */
interface JoinedNamespace {
  type: JoinableNamespace;
  donor: ContainerRecord;
  pid: number;
}

/** IpcMode shareable: its /dev/shm is a tmpfs on the host, which others may join (dockerd's setupIPCDirs). */
function isShareable(record: ContainerRecord): boolean {
  return record.HostConfig.IpcMode === "shareable";
}

function shmSizeOf(record: ContainerRecord): number {
  const size = record.HostConfig.ShmSize;
  return typeof size === "number" && size > 0 ? size : 0;
}
