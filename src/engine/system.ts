import { readFileSync } from "node:fs";
import { availableParallelism, freemem, hostname, release, totalmem, type } from "node:os";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import type { ContainerStore } from "./containers/store.js";
import { EngineError } from "./errors.js";
import { checkEventFilters, type EventBus, eventMatches, parseEventTime } from "./events.js";
import { queryFilters } from "./http.js";
import type { ImageSummary } from "./image-source.js";
import { imageView } from "./images.js";
import { API_VERSION, MIN_API_VERSION, type Router } from "./router.js";
import type { VolumeView } from "./volume-store.js";

export interface SystemDeps {
  client: LibcontainerdClient;
  store: ContainerStore;
  events: EventBus;
  /** ctrd's version, reported as the engine's. */
  version: string;
  /** The engine's state dir (DockerRootDir). */
  rootDir: string;
  /** The images there are, for /info and /system/df. */
  images(opts: CallOptions): Promise<ImageSummary[]>;
  /** The volumes with their usage (size, containers), for /system/df. */
  volumes(): Promise<VolumeView[]>;
  /** Every container's list row with its sizes (SizeRw, SizeRootFs), newest first, for /system/df. */
  containers(opts: CallOptions): Promise<Record<string, unknown>[]>;
  /** Runtimes the client knows, for /info. */
  runtimes: string[];
  defaultRuntime: string;
  /** The default seccomp profile's file, when there is one (/info's SecurityOptions). */
  seccompProfilePath?: string;
  /** A stable id for this engine (/info ID). */
  engineId: string;
}

const ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  s390x: "s390x",
  ppc64: "ppc64le",
};

function arch(): string {
  return ARCH[process.arch] ?? process.arch;
}

function operatingSystem(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    const match = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text);
    return match?.[1] ?? type();
  } catch {
    return type();
  }
}

export function systemRoutes(router: Router, deps: SystemDeps): void {
  // dockerd's ping headers: clients read the API version and the builder from them.
  const pingHeaders = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Docker-Experimental": "false",
    Ostype: "linux",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    Pragma: "no-cache",
  };
  const ping = (exchange: Parameters<Parameters<Router["add"]>[2]>[0]): void =>
    exchange.sendText(200, "OK", pingHeaders);
  // Plugins: none (the docker CLI lists them; an unknown endpoint read as "No such plugin").
  router.add("GET", "/plugins", (exchange) => exchange.send(200, []));
  // Swarm: this node is in none, as a dockerd that never joined one answers; it cannot make or join one.
  const notInSwarm = (): never => {
    throw new EngineError(
      503,
      'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    );
  };
  for (const path of ["/swarm", "/services", "/nodes", "/tasks", "/secrets", "/configs"])
    router.add("GET", path, notInSwarm);
  for (const path of ["/swarm/init", "/swarm/join"])
    router.add("POST", path, () => {
      throw new EngineError(501, "swarm mode is not supported by this engine");
    });
  router.add("GET", "/_ping", ping);
  router.add("HEAD", "/_ping", ping);

  router.add("GET", "/version", async (exchange) => {
    const containerd = await deps.client
      .version({ signal: exchange.signal })
      .catch(() => ({ version: "unknown", revision: "" }));
    const details = {
      ApiVersion: API_VERSION,
      Arch: arch(),
      BuildTime: "",
      Experimental: "false",
      GitCommit: "",
      GoVersion: `node${process.versions.node}`,
      KernelVersion: release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: "linux",
    };
    exchange.send(200, {
      Platform: { Name: "ctrd" },
      Components: [
        { Name: "Engine", Version: deps.version, Details: details },
        { Name: "containerd", Version: containerd.version, Details: { GitCommit: containerd.revision } },
      ],
      Version: deps.version,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: "",
      GoVersion: details.GoVersion,
      Os: "linux",
      Arch: arch(),
      KernelVersion: release(),
      BuildTime: "",
    });
  });

  router.add("GET", "/info", async (exchange) => {
    const records = deps.store.all();
    const count = (status: string[]): number =>
      records.filter((record) => status.includes(record.State.Status)).length;
    const containerd = await deps.client
      .version({ signal: exchange.signal })
      .catch(() => ({ version: "unknown", revision: "" }));
    exchange.send(200, {
      ID: deps.engineId,
      Containers: records.length,
      ContainersRunning: count(["running", "restarting"]),
      ContainersPaused: count(["paused"]),
      ContainersStopped: count(["created", "exited", "dead", "removing"]),
      Images: (await deps.images({ signal: exchange.signal })).length,
      Driver: "overlayfs",
      DriverStatus: [],
      Plugins: {
        Volume: ["local"],
        Network: ["bridge", "host", "null"],
        Authorization: null,
        Log: ["json-file"],
      },
      MemoryLimit: true,
      SwapLimit: false,
      KernelMemory: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      BridgeNfIptables: false,
      BridgeNfIp6tables: false,
      Debug: false,
      NFd: 0,
      OomKillDisable: false,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: "json-file",
      CgroupDriver: "cgroupfs",
      CgroupVersion: "1",
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: operatingSystem(),
      OSVersion: "",
      OSType: "linux",
      Architecture: arch(),
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: {
        AllowNondistributableArtifactsCIDRs: [],
        AllowNondistributableArtifactsHostnames: [],
        InsecureRegistryCIDRs: ["127.0.0.0/8"],
        IndexConfigs: {},
        Mirrors: [],
      },
      NCPU: availableParallelism(),
      MemTotal: totalmem(),
      MemFree: freemem(),
      GenericResources: null,
      DockerRootDir: deps.rootDir,
      HttpProxy: "",
      HttpsProxy: "",
      NoProxy: "",
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: deps.version,
      Runtimes: Object.fromEntries(deps.runtimes.map((name) => [name, { path: name }])),
      DefaultRuntime: deps.defaultRuntime,
      Swarm: {
        NodeID: "",
        NodeAddr: "",
        LocalNodeState: "inactive",
        ControlAvailable: false,
        Error: "",
        RemoteManagers: null,
      },
      LiveRestoreEnabled: true,
      Isolation: "",
      InitBinary: "docker-init",
      ContainerdCommit: { ID: containerd.revision, Expected: containerd.revision },
      RuncCommit: { ID: "", Expected: "" },
      InitCommit: { ID: "", Expected: "" },
      // dockerd's form; "builtin" is its compiled-in profile, ours is the distribution's file.
      SecurityOptions: deps.seccompProfilePath ? [`name=seccomp,profile=${deps.seccompProfilePath}`] : [],
      Warnings: [],
    });
  });

  router.add("GET", "/events", (exchange) => {
    const sinceNs = parseEventTime(exchange.query.get("since"), "since");
    const untilNs = parseEventTime(exchange.query.get("until"), "until");
    const filters = checkEventFilters(queryFilters(exchange.query));
    const out = exchange.stream("application/json");
    const wanted = (timeNano: number): boolean =>
      (sinceNs === undefined || timeNano >= sinceNs) && (untilNs === undefined || timeNano <= untilNs);
    const { past, unsubscribe } = deps.events.subscribe((event) => {
      if (untilNs !== undefined && event.timeNano > untilNs) {
        finish();
        return;
      }
      if (eventMatches(event, filters)) out.write(`${JSON.stringify(event)}\n`);
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      unsubscribe();
      clearTimeout(timer);
      if (!out.writableEnded) out.end();
    };
    exchange.signal.addEventListener("abort", finish, { once: true });
    // Only remembered events are replayed, and only when `since` asks for them.
    if (sinceNs !== undefined)
      for (const event of past)
        if (wanted(event.timeNano) && eventMatches(event, filters)) out.write(`${JSON.stringify(event)}\n`);
    if (untilNs !== undefined) {
      const remainingMs = untilNs / 1e6 - Date.now();
      if (remainingMs <= 0) finish();
      else timer = setTimeout(finish, remainingMs);
    }
  });

  router.add("GET", "/system/df", async (exchange) => {
    const images = await deps.images({ signal: exchange.signal });
    exchange.send(200, {
      LayersSize: images.reduce((sum, image) => sum + image.size, 0),
      Images: images.map((image) => imageView(image, deps.store, 0)),
      // As `docker ps -as` lists them (dockerd's SystemDiskUsage): -v shows their command, age and status.
      Containers: await deps.containers({ signal: exchange.signal }),
      Volumes: await deps.volumes(),
      BuildCache: [],
    });
  });

  // The build cache dockerd prunes here is BuildKit's; the classic builder's cache is images (image
  // prune takes those). None to prune, as a dockerd that never ran BuildKit answers: `docker builder
  // prune` and `docker system prune` (which calls this last) then succeed.
  router.add("POST", "/build/prune", (exchange) => {
    exchange.send(200, { CachesDeleted: null, SpaceReclaimed: 0 });
  });
}
