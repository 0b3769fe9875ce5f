import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { parseSignal } from "../../libcontainerd/signals.js";
import type { CallOptions } from "../../libcontainerd/types/client.js";
import { badRequest, EngineError, toHttpError } from "../errors.js";
import { parseEventTime } from "../events.js";
import { type Exchange, labelsMatch, queryBool, queryFilters, queryInt } from "../http.js";
import { pruneFilter } from "../prune.js";
import type { Router } from "../router.js";
import { frame, RAW_STREAM, STDERR, STDOUT } from "../stdcopy.js";
import { parseBind, parseCreateRequest, parseUpdate } from "./config.js";
import { encodePathStat, type PathStat } from "./filesystem.js";
import { formatTimeNs, logSettings, nowNs, readLogFile, splitLines } from "./log-file.js";
import { type ContainerManager, containerVolumes } from "./manager.js";
import { archiveFromRoot, extractIntoRoot, statInRoot } from "./rootfs-worker.js";
import { sharedWith } from "./shared-namespaces.js";
import { type CpuSample, dockerStats, networkStats, systemCpuUsageNs } from "./stats.js";
import { type ContainerRecord, type ContainerStore, ZERO_TIME } from "./store.js";
import { inspectView, listView } from "./views.js";

export interface ContainerRoutesDeps {
  manager: ContainerManager;
  store: ContainerStore;
  /** Exec ids per container, for inspect's ExecIDs. */
  execIds(containerId: string): string[];
  /** An image's size (its layers), 0 when it is gone: SizeRootFs. */
  imageSize(id: string, opts: CallOptions): Promise<number>;
  /** The id of the image a reference (or id) names here, for the `ancestor` filter; undefined when none. */
  imageId(ref: string, opts: CallOptions): Promise<string | undefined>;
}

/** Writes output the way Docker frames it: raw with a TTY, 8-byte-header frames without. */
export function outputWriter(
  output: Writable,
  tty: boolean,
): (stream: "stdout" | "stderr", chunk: Buffer) => void {
  return (stream, chunk) => {
    if (output.destroyed || output.writableEnded) return;
    output.write(tty ? chunk : frame(stream === "stdout" ? STDOUT : STDERR, chunk));
  };
}

/** The filters GET /containers/json takes (daemon/list.go acceptedPsFilterTags); others are refused. */
const PS_FILTERS = new Set([
  "ancestor",
  "before",
  "exited",
  "id",
  "isolation",
  "label",
  "name",
  "status",
  "health",
  "since",
  "volume",
  "network",
  "is-task",
  "publish",
  "expose",
]);
const STATES = new Set(["created", "restarting", "running", "removing", "paused", "exited", "dead"]);

/** `name` and `id` values are regular expressions, as filters.Args.Match reads them. */
function matchesPattern(pattern: string, subject: string): boolean {
  try {
    return new RegExp(pattern).test(subject);
  } catch {
    return subject.includes(pattern);
  }
}

/** `80`, `80/udp`, `8000-8010/tcp` as a set of `port/proto` keys. */
function portSet(values: string[], key: string): Set<string> {
  const ports = new Set<string>();
  for (const value of values) {
    const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(value);
    if (!match) throw badRequest(`error while looking up for ${key} ${value}`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    for (let port = first; port <= last && port - first < 65536; port++)
      ports.add(`${port}/${match[3] ?? "tcp"}`);
  }
  return ports;
}

interface ListFilter {
  filters: Map<string, string[]>;
  /** Image ids the `ancestor` values name (undefined: no ancestor filter). */
  ancestors?: Set<string>;
  publish: Set<string>;
  expose: Set<string>;
}

function matchesFilters(record: ContainerRecord, list: ListFilter): boolean {
  const { filters } = list;
  const any = (name: string, test: (value: string) => boolean): boolean => {
    const values = filters.get(name);
    return !values || values.length === 0 || values.some(test);
  };
  const labels = record.Config.Labels;
  const started = record.State.StartedAt !== ZERO_TIME;
  const running = ["running", "paused", "restarting"].includes(record.State.Status);
  const ports = Object.entries(record.Ports).flatMap(([key, bindings]) =>
    bindings.map((binding) => ({ key, hostPort: `${binding.HostPort}/${key.split("/")[1] ?? "tcp"}` })),
  );
  return (
    any("id", (value) => matchesPattern(value, record.Id)) &&
    any(
      "name",
      (value) => matchesPattern(value, record.Name) || matchesPattern(value, record.Name.slice(1)),
    ) &&
    any("status", (value) => record.State.Status === value) &&
    any("exited", (value) => started && !running && String(record.State.ExitCode) === value) &&
    any("health", (value) => (record.State.Health?.Status ?? "none") === value) &&
    any("is-task", (value) => value === "false") &&
    any("network", (value) =>
      Object.entries(record.Networks).some(
        ([name, endpoint]) => name === value || endpoint.NetworkID.startsWith(value),
      ),
    ) &&
    any(
      "volume",
      (value) =>
        (record.HostConfig.Binds ?? []).some((bind) => {
          const { source, destination } = parseBind(bind);
          return source === value || destination === value;
        }) || (record.MountPoints ?? []).some((mount) => mount.Name === value || mount.Destination === value),
    ) &&
    (list.ancestors === undefined || list.ancestors.has(record.Image)) &&
    (list.publish.size === 0 || ports.some((port) => list.publish.has(port.hostPort))) &&
    (list.expose.size === 0 ||
      ports.some((port) => list.expose.has(port.key)) ||
      Object.keys(record.Config.ExposedPorts ?? {}).some((key) => list.expose.has(key))) &&
    labelsMatch(labels, filters.get("label") ?? [])
  );
}

/** GET /containers/json: who is listed and in what order, as daemon/list.go decides it. */
async function listContainers(
  exchange: Exchange,
  store: ContainerStore,
  imageId: ContainerRoutesDeps["imageId"],
): Promise<ContainerRecord[]> {
  const filters = queryFilters(exchange.query);
  for (const name of filters.keys()) if (!PS_FILTERS.has(name)) throw badRequest(`invalid filter '${name}'`);
  for (const status of filters.get("status") ?? [])
    if (!STATES.has(status)) throw badRequest(`Invalid filter 'status=${status}'`);
  for (const health of filters.get("health") ?? [])
    if (!["starting", "healthy", "unhealthy", "none"].includes(health))
      throw badRequest(`Unrecognised filter value for health: ${health}`);
  for (const code of filters.get("exited") ?? [])
    if (!/^-?\d+$/.test(code)) throw badRequest(`invalid filter 'exited=${code}'`);
  const limit = queryInt(exchange.query, "limit") ?? -1;
  // A status filter lists stopped containers too, and so does a limit (`docker ps -l`, `-n N`).
  const all = queryBool(exchange.query, "all") || filters.has("status") || limit > 0;
  const list: ListFilter = {
    filters,
    publish: portSet(filters.get("publish") ?? [], "publish"),
    expose: portSet(filters.get("expose") ?? [], "expose"),
  };
  const ancestors = filters.get("ancestor");
  if (ancestors && ancestors.length > 0) {
    list.ancestors = new Set();
    for (const ancestor of ancestors) {
      const id = await imageId(ancestor, { signal: exchange.signal });
      if (id !== undefined) list.ancestors.add(id);
    }
  }
  const newestFirst = store.all().sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
  const createdOf = (name: string): number | undefined => {
    const values = filters.get(name) ?? [];
    const last = values[values.length - 1];
    return last === undefined ? undefined : Date.parse(store.get(last).Created);
  };
  const before = createdOf("before");
  const since = createdOf("since");
  const records = newestFirst.filter(
    (record) =>
      (before === undefined || Date.parse(record.Created) < before) &&
      (since === undefined || Date.parse(record.Created) > since) &&
      (all || ["running", "paused", "restarting"].includes(record.State.Status)) &&
      matchesFilters(record, list),
  );
  return limit > 0 ? records.slice(0, limit) : records;
}

/** SizeRw and SizeRootFs; `imageSizes` keeps each image's size for the request (many share one). */
async function containerSizes(
  record: ContainerRecord,
  deps: Pick<ContainerRoutesDeps, "manager" | "imageSize">,
  opts: CallOptions,
  imageSizes = new Map<string, Promise<number>>(),
): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const rw = await deps.manager.writableSize(record, opts);
  let image = imageSizes.get(record.Image);
  if (!image) {
    image = deps.imageSize(record.Image, opts);
    imageSizes.set(record.Image, image);
  }
  return { SizeRw: rw, SizeRootFs: rw + (await image) };
}

/** List rows with what each container wrote and its image's size: `docker ps -s`, and /system/df's. */
export async function listViewsWithSizes(
  records: readonly ContainerRecord[],
  deps: Pick<ContainerRoutesDeps, "manager" | "imageSize">,
  opts: CallOptions,
): Promise<Record<string, unknown>[]> {
  const now = Date.now();
  const imageSizes = new Map<string, Promise<number>>();
  const views: Record<string, unknown>[] = [];
  for (const record of records)
    views.push({ ...listView(record, now), ...(await containerSizes(record, deps, opts, imageSizes)) });
  return views;
}

/**
 * The containers whose image name no longer names their image (untagged, or moved to another image by
 * a pull, build or tag since): the list shows their image's id instead, as dockerd's transformContainer.
 */
async function shownImages(
  records: readonly ContainerRecord[],
  imageId: ContainerRoutesDeps["imageId"],
  opts: CallOptions,
): Promise<Map<string, string>> {
  const resolved = new Map<string, Promise<string | undefined>>();
  const shown = new Map<string, string>();
  for (const record of records) {
    const ref = record.Config.Image;
    if (ref === record.Image) continue;
    let id = resolved.get(ref);
    if (!id) {
      id = imageId(ref, opts);
      resolved.set(ref, id);
    }
    if ((await id) !== record.Image) shown.set(record.Id, record.Image);
  }
  return shown;
}

export function containerRoutes(router: Router, deps: ContainerRoutesDeps): void {
  const { manager, store } = deps;
  const find = (exchange: Exchange): ContainerRecord => store.get(exchange.params.id ?? "");

  router.add("GET", "/containers/json", async (exchange) => {
    const records = await listContainers(exchange, store, deps.imageId);
    const now = Date.now();
    // `docker ps -s`: what each wrote, and with its image's size.
    const views = queryBool(exchange.query, "size")
      ? await listViewsWithSizes(records, deps, { signal: exchange.signal })
      : records.map((record) => listView(record, now));
    const shown = await shownImages(records, deps.imageId, { signal: exchange.signal });
    for (const [index, record] of records.entries()) {
      const view = views[index];
      if (view) view.Image = shown.get(record.Id) ?? view.Image;
    }
    exchange.send(200, views);
  });

  router.add("POST", "/containers/create", async (exchange) => {
    const request = parseCreateRequest(await exchange.json());
    const record = await manager.create(request, exchange.query.get("name") || null, {
      signal: exchange.signal,
    });
    const discarded =
      record.HostConfig.NetworkMode === "host" &&
      (Object.keys(record.HostConfig.PortBindings).length > 0 || record.HostConfig.PublishAllPorts);
    exchange.send(201, {
      Id: record.Id,
      Warnings: discarded ? ["Published ports are discarded when using host network mode"] : [],
    });
  });

  router.add("GET", "/containers/{id}/json", async (exchange) => {
    const record = find(exchange);
    // On another container's network its name files are that one's (dockerd's initializeNetworkingPaths).
    const donor = sharedWith(record.HostConfig.NetworkMode);
    const namesOf = (donor !== undefined ? store.find(donor) : undefined) ?? record;
    const view = inspectView(record, store.containerDir(namesOf.Id), deps.execIds(record.Id));
    exchange.send(
      200,
      queryBool(exchange.query, "size")
        ? { ...view, ...(await containerSizes(record, deps, { signal: exchange.signal })) }
        : view,
    );
  });

  router.add("POST", "/containers/{id}/start", async (exchange) => {
    await manager.start(find(exchange), { signal: exchange.signal });
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/stop", async (exchange) => {
    await manager.stop(find(exchange), queryInt(exchange.query, "t"));
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/restart", async (exchange) => {
    await manager.restart(find(exchange), queryInt(exchange.query, "t"));
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/kill", async (exchange) => {
    const signal = exchange.query.get("signal") || "SIGKILL";
    // Checked first, in moby's words (signal.ParseSignal: a name, or a number that is not 0).
    try {
      parseSignal(signal);
    } catch {
      throw badRequest(`Invalid signal: ${signal}`);
    }
    // dockerd names the container as it was asked for in every refusal (postContainersKill).
    try {
      await manager.kill(find(exchange), signal, { signal: exchange.signal });
    } catch (err) {
      const { status, message } = toHttpError(err);
      throw new EngineError(status, `Cannot kill container: ${exchange.params.id ?? ""}: ${message}`, {
        cause: err,
      });
    }
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/pause", async (exchange) => {
    await manager.pause(find(exchange), { signal: exchange.signal });
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/unpause", async (exchange) => {
    await manager.unpause(find(exchange), { signal: exchange.signal });
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/wait", async (exchange) => {
    const record = find(exchange);
    const condition = exchange.query.get("condition") || "not-running";
    if (condition !== "not-running" && condition !== "next-exit" && condition !== "removed")
      throw badRequest(`invalid condition: "${condition}"`);
    const result = manager.wait(record, condition, exchange.signal);
    // Headers at once, as dockerd sends them: the client knows the wait is registered.
    const out = exchange.stream("application/json");
    const body = await result.catch((err: unknown) => ({
      StatusCode: -1,
      Error: { Message: (err as Error).message },
    }));
    out.end(`${JSON.stringify(body)}\n`);
  });

  router.add("DELETE", "/containers/{id}", async (exchange) => {
    await manager.remove(
      find(exchange),
      { force: queryBool(exchange.query, "force"), volumes: queryBool(exchange.query, "v") },
      { signal: exchange.signal },
    );
    exchange.send(204, null);
  });

  router.add("POST", "/containers/{id}/update", async (exchange) => {
    const record = find(exchange);
    const body = await exchange.json();
    await manager.update(record, (current) => parseUpdate(body, current), { signal: exchange.signal });
    exchange.send(200, { Warnings: [] });
  });

  router.add("POST", "/containers/{id}/rename", async (exchange) => {
    const name = exchange.query.get("name");
    if (!name) throw badRequest("name is required to rename a container");
    await manager.rename(find(exchange), name, { signal: exchange.signal });
    exchange.send(204, null);
  });

  router.add("GET", "/containers/{id}/top", async (exchange) => {
    const result = await manager.top(find(exchange), exchange.query.get("ps_args") ?? "", {
      signal: exchange.signal,
    });
    exchange.send(200, result);
  });

  router.add("POST", "/containers/{id}/resize", async (exchange) => {
    const record = find(exchange);
    const height = queryInt(exchange.query, "h") ?? 0;
    const width = queryInt(exchange.query, "w") ?? 0;
    if (height < 0 || width < 0) throw badRequest("invalid terminal size");
    if (!manager.task(record)) throw new EngineError(409, `Container ${record.Id} is not running`);
    await manager.hub(record).resize(width, height);
    exchange.send(200, null);
  });

  router.add("POST", "/containers/{id}/attach", (exchange) => attach(exchange, find(exchange), manager));

  router.add("GET", "/containers/{id}/logs", (exchange) => logs(exchange, find(exchange), manager));

  router.add("GET", "/containers/{id}/stats", (exchange) => stats(exchange, find(exchange), manager));

  router.add("GET", "/containers/{id}/archive", (exchange) => getArchive(exchange, find(exchange), manager));

  router.add("PUT", "/containers/{id}/archive", (exchange) => putArchive(exchange, find(exchange), manager));

  router.add("GET", "/containers/{id}/changes", async (exchange) => {
    const record = find(exchange);
    exchange.send(200, await manager.changes(record, { signal: exchange.signal }));
  });

  router.add("GET", "/containers/{id}/export", async (exchange) => {
    const record = find(exchange);
    const { signal } = exchange;
    let out: Writable | undefined;
    await manager.withFilesystem(record, { signal }, (root) =>
      // A running container's root shows its mounts (/proc, binds); export is its rootfs alone, as dockerd's.
      archiveFromRoot(root, "/", record.Name.slice(1), { signal, oneFileSystem: root.running }, () => {
        out = exchange.stream("application/x-tar");
        return out;
      }),
    );
    out?.end();
  });

  router.add("POST", "/containers/prune", async (exchange) => {
    const { matches } = pruneFilter(exchange.query);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of store.all()) {
      if (
        record.State.Status !== "exited" &&
        record.State.Status !== "created" &&
        record.State.Status !== "dead"
      )
        continue;
      if (!matches(record.Config.Labels, Date.parse(record.Created))) continue;
      // As dockerd's ContainersPrune: what it wrote, measured before it goes.
      const written = await manager.writableSize(record, { signal: exchange.signal });
      await manager.remove(record, { force: false }, { signal: exchange.signal });
      deleted.push(record.Id);
      reclaimed += written;
    }
    exchange.send(200, { ContainersDeleted: deleted, SpaceReclaimed: reclaimed });
  });
}

/** HEAD and GET /containers/{id}/archive: the path's stat in a header, and for GET a tar of it. */
async function getArchive(
  exchange: Exchange,
  record: ContainerRecord,
  manager: ContainerManager,
): Promise<void> {
  const path = exchange.query.get("path");
  if (!path) throw badRequest("path is required");
  const name = record.Name.slice(1);
  const { signal } = exchange;
  const headersOf = (stat: PathStat) => ({ "X-Docker-Container-Path-Stat": encodePathStat(stat) });
  // The response ends once a stopped container's rootfs is unmounted again: the client may start it next.
  const end = await manager.withFilesystem(record, { signal }, async (root) => {
    if (exchange.method === "HEAD") {
      const stat = await statInRoot(root, path, name, signal);
      return () => exchange.sendText(200, "", headersOf(stat));
    }
    let out: Writable | undefined;
    await archiveFromRoot(root, path, name, { signal }, (stat) => {
      out = exchange.stream("application/x-tar", headersOf(stat));
      return out;
    });
    return () => out?.end();
  });
  end();
}

/** PUT /containers/{id}/archive: a tar extracted into a directory of the container. */
async function putArchive(
  exchange: Exchange,
  record: ContainerRecord,
  manager: ContainerManager,
): Promise<void> {
  const path = exchange.query.get("path");
  if (!path) throw badRequest("path is required");
  const noOverwriteDirNonDir = queryBool(exchange.query, "noOverwriteDirNonDir");
  const { signal } = exchange;
  const owner = queryBool(exchange.query, "copyUIDGID")
    ? await manager.userFor(record, "", { signal })
    : undefined;
  await manager.withFilesystem(record, { signal }, (root) =>
    extractIntoRoot(
      root,
      {
        path,
        container: record.Name.slice(1),
        noOverwriteDirNonDir,
        ...(owner ? { owner } : {}),
        readonlyRootfs: record.HostConfig.ReadonlyRootfs === true,
        volumes: containerVolumes(record),
      },
      exchange.body(),
      signal,
    ),
  );
  // Once a stopped container's rootfs is unmounted again: the client may start it next.
  exchange.sendText(200, "");
}

function attach(exchange: Exchange, record: ContainerRecord, manager: ContainerManager): void {
  const { query } = exchange;
  const wantStdin = queryBool(query, "stdin");
  const wantStdout = queryBool(query, "stdout");
  const wantStderr = queryBool(query, "stderr");
  const stream = queryBool(query, "stream");
  const replay = queryBool(query, "logs");
  const tty = record.Config.Tty;
  const detachKeys = parseDetachKeys(query.get("detachKeys") ?? "");
  const hijacked = exchange.hijack(RAW_STREAM);
  const write = outputWriter(hijacked.output, tty);
  const wanted = (name: "stdout" | "stderr"): boolean => (name === "stdout" ? wantStdout : wantStderr);
  if (replay) {
    for (const entry of readLogFile(record.LogPath, { stdout: wantStdout, stderr: wantStderr }))
      write(entry.stream, entry.log);
  }
  // The hub, not the status, says whether output will still come: the status trails the exit a moment.
  // A stopped container's next run is streamed, as dockerd's attach does (`docker start -a` attaches first).
  const status = record.State.Status;
  const willRun = status === "created" || status === "exited" || manager.hub(record).running;
  if (!stream || !willRun) {
    hijacked.end();
    return;
  }
  const hub = manager.hub(record);
  const unsubscribe = hub.subscribe({
    output: (name, chunk) => {
      if (wanted(name)) write(name, chunk);
    },
    end: () => hijacked.end(),
  });
  exchange.signal.addEventListener("abort", unsubscribe, { once: true });
  manager.emit(record, "attach");
  if (wantStdin && record.Config.OpenStdin) {
    // Only a terminal has detach keys (container/stream/attach.go copyEscapable): piped stdin is data,
    // and any two bytes of it may be ctrl-p ctrl-q.
    const detach = tty ? new DetachKeys(detachKeys) : undefined;
    hijacked.input.on("data", (chunk: Buffer) => {
      const { pass, detached } = detach ? detach.scan(chunk) : { pass: chunk, detached: false };
      if (pass.length > 0 && !hub.writeStdin(pass)) {
        // Backpressure, as dockerd's copy has: nothing the client sends is dropped.
        hijacked.input.pause();
        void hub.stdinWritable().then(() => hijacked.input.resume());
      }
      if (detached) {
        // As dockerd: the client lets go, the container runs on.
        unsubscribe();
        hijacked.input.removeAllListeners("end");
        hijacked.end();
      }
    });
    hijacked.input.once("end", () => {
      if (record.Config.StdinOnce) void hub.closeStdin();
    });
  } else {
    hijacked.input.resume();
  }
}

function sinceOf(value: string | null, name: string): bigint | undefined {
  const ns = parseEventTime(value, name);
  return ns === undefined || ns === 0 ? undefined : BigInt(ns);
}

function logs(exchange: Exchange, record: ContainerRecord, manager: ContainerManager): void {
  const { query } = exchange;
  const stdout = queryBool(query, "stdout");
  const stderr = queryBool(query, "stderr");
  if (!stdout && !stderr) throw badRequest("Bad parameters: you must choose at least one stream");
  // dockerd's ErrReadLogsNotSupported: the none driver keeps nothing to read.
  if (!logSettings(record.HostConfig.LogConfig).kept)
    throw new EngineError(501, "configured logging driver does not support reading");
  const follow = queryBool(query, "follow");
  const timestamps = queryBool(query, "timestamps");
  const tailText = query.get("tail") ?? "all";
  const tail = tailText === "all" || tailText === "" ? undefined : Number(tailText);
  if (tail !== undefined && !Number.isInteger(tail)) throw badRequest(`invalid tail value: ${tailText}`);
  const sinceNs = sinceOf(query.get("since"), "since");
  const untilNs = sinceOf(query.get("until"), "until");
  const tty = record.Config.Tty;
  const out = exchange.stream(RAW_STREAM);
  const write = outputWriter(out, tty);
  const emit = (name: "stdout" | "stderr", chunk: Buffer, timeNs: bigint): void => {
    write(name, timestamps ? Buffer.concat([Buffer.from(`${formatTimeNs(timeNs)} `), chunk]) : chunk);
  };
  for (const entry of readLogFile(record.LogPath, {
    stdout,
    stderr,
    ...(sinceNs !== undefined ? { sinceNs } : {}),
    ...(untilNs !== undefined ? { untilNs } : {}),
    ...(tail !== undefined ? { tail } : {}),
  }))
    emit(entry.stream, entry.log, entry.timeNs);
  if (!follow || !manager.hub(record).running || untilNs !== undefined) {
    out.end();
    return;
  }
  const unsubscribe = manager.hub(record).subscribe({
    output: (name, chunk) => {
      if (!(name === "stdout" ? stdout : stderr)) return;
      if (!timestamps) {
        write(name, chunk);
        return;
      }
      // A timestamp a line, as the log file has them (and dockerd's json-file driver).
      const timeNs = nowNs();
      for (const line of splitLines(chunk)) emit(name, line, timeNs);
    },
    end: () => out.end(),
  });
  exchange.signal.addEventListener("abort", unsubscribe, { once: true });
}

const STATS_INTERVAL_MS = 1_000;

async function stats(exchange: Exchange, record: ContainerRecord, manager: ContainerManager): Promise<void> {
  const stream = queryBool(exchange.query, "stream", true);
  const oneShot = queryBool(exchange.query, "one-shot");
  const identity = { id: record.Id, name: record.Name };
  let previous: { read: string; cpu: CpuSample } | undefined;
  const sample = async (): Promise<Record<string, unknown> | undefined> => {
    const task = manager.task(record);
    if (!task) return undefined;
    // The host's interfaces are not the container's: dockerd reports none on the host network.
    const ownNetwork = record.HostConfig.NetworkMode !== "host";
    const [raw, systemNs, networks] = await Promise.all([
      task.stats({ signal: exchange.signal }),
      systemCpuUsageNs(),
      ownNetwork ? networkStats(task.pid) : undefined,
    ]);
    const result = dockerStats(raw, systemNs, previous, identity, networks);
    previous = { read: result.read, cpu: result.cpu };
    return result.body;
  };
  const stopped = (): Record<string, unknown> => ({
    read: "0001-01-01T00:00:00Z",
    preread: "0001-01-01T00:00:00Z",
    pids_stats: {},
    blkio_stats: {},
    num_procs: 0,
    storage_stats: {},
    cpu_stats: { cpu_usage: { total_usage: 0 }, throttling_data: {} },
    precpu_stats: { cpu_usage: { total_usage: 0 }, throttling_data: {} },
    memory_stats: {},
    name: record.Name,
    id: record.Id,
  });
  if (!stream) {
    let body = await sample().catch(() => undefined);
    // As dockerd: a second sample a moment later, so precpu_stats is filled and CPU % means something.
    if (body && !oneShot) {
      await sleep(STATS_INTERVAL_MS, undefined, { signal: exchange.signal }).catch(() => {});
      body = (await sample().catch(() => undefined)) ?? body;
    }
    exchange.send(200, body ?? stopped());
    return;
  }
  const out = exchange.stream("application/json");
  while (!exchange.signal.aborted) {
    const body = await sample().catch(() => undefined);
    out.write(`${JSON.stringify(body ?? stopped())}\n`);
    if (!body) break;
    await sleep(STATS_INTERVAL_MS, undefined, { signal: exchange.signal }).catch(() => {});
  }
  out.end();
}

/** Docker's default detach sequence: ctrl-p, ctrl-q. */
const DEFAULT_DETACH_KEYS = [0x10, 0x11];

/** `ctrl-p,ctrl-q` / `a,ctrl-@` as the CLI passes `detachKeys` (pkg/term ToBytes); empty: the default. */
export function parseDetachKeys(spec: string): number[] {
  if (spec === "") return DEFAULT_DETACH_KEYS;
  return spec.split(",").map((key) => {
    const lower = key.trim().toLowerCase();
    if (lower.length === 1) return lower.charCodeAt(0);
    const ctrl = /^ctrl-([a-z@[\\\]^_])$/.exec(lower);
    if (!ctrl?.[1]) throw badRequest(`Invalid detach keys (${spec}) provided`);
    // ctrl-X is X's code with the top bits cleared: ctrl-a 1, ctrl-@ 0, ctrl-[ 27 … ctrl-_ 31.
    return ctrl[1].toUpperCase().charCodeAt(0) & 0x1f;
  });
}

/** Finds the detach sequence in attached input; bytes of a partial match are held until it resolves. */
export class DetachKeys {
  private matched = 0;

  constructor(private readonly keys: number[]) {}

  scan(chunk: Buffer): { pass: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { pass: Buffer.from(out), detached: true };
        continue;
      }
      out.push(...this.keys.slice(0, this.matched));
      this.matched = byte === this.keys[0] ? 1 : 0;
      if (this.matched === 0) out.push(byte);
    }
    return { pass: Buffer.from(out), detached: false };
  }
}
