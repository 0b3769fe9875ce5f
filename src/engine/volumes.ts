import { isObject } from "./containers/config.js";
import { badRequest } from "./errors.js";
import type { EventBus } from "./events.js";
import { labelsMatch, queryBool, queryFilters } from "./http.js";
import type { Router } from "./router.js";
import { versionAtLeast } from "./router.js";
import { ANONYMOUS_LABEL, hasOptions, type VolumeRecord, type VolumeStore } from "./volume-store.js";

/** strconv.ParseBool, as filters.Args.GetBoolOrDefault reads `dangling` and `all`. */
function parseBool(value: string, filter: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw badRequest(`invalid filter '${filter}=${value}'`);
}

/** The one boolean a filter may hold (none: undefined). */
function boolFilter(filters: Map<string, string[]>, name: string): boolean | undefined {
  const values = filters.get(name) ?? [];
  if (values.length > 1)
    throw badRequest(`invalid filter '${name}=${JSON.stringify(values)}': only one value is expected`);
  return values[0] === undefined ? undefined : parseBool(values[0], name);
}

/** `name` values are regular expressions, as filters.Args.Match reads them. */
function nameMatches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern).test(name);
  } catch {
    return name.includes(pattern);
  }
}

function stringMap(value: unknown, what: string): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value) || !Object.values(value).every((item) => typeof item === "string"))
    throw badRequest(`invalid ${what}: want a map of strings`);
  return value as Record<string, string>;
}

/**
 * The volume endpoints over the local volume store, as dockerd's volume router and service answer them:
 * list (filters name, label, dangling, driver), create (idempotent for a name), inspect, remove (409 in
 * use), prune (unused ones; before API 1.42 named ones too, from then anonymous ones unless all=true).
 */
export function volumeRoutes(router: Router, volumes: VolumeStore, events: EventBus): void {
  router.add("GET", "/volumes", (exchange) => {
    const filters = queryFilters(exchange.query);
    for (const name of filters.keys())
      if (!["dangling", "driver", "label", "name"].includes(name))
        throw badRequest(`invalid filter '${name}'`);
    const dangling = boolFilter(filters, "dangling");
    const names = filters.get("name") ?? [];
    const drivers = filters.get("driver") ?? [];
    const labels = filters.get("label") ?? [];
    const listed = volumes
      .all()
      .filter(
        (volume) =>
          (names.length === 0 || names.some((pattern) => nameMatches(pattern, volume.Name))) &&
          (drivers.length === 0 || drivers.includes(volume.Driver)) &&
          labelsMatch(volume.Labels ?? {}, labels) &&
          (dangling === undefined || (volumes.users(volume.Name).length === 0) === dangling),
      )
      .map((volume) => volumes.view(volume));
    exchange.send(200, { Volumes: listed, Warnings: null });
  });

  router.add("POST", "/volumes/create", async (exchange) => {
    const body = await exchange.json();
    if (!isObject(body)) throw badRequest("the request body must be a JSON object");
    const name = body.Name ?? "";
    const driver = body.Driver ?? "";
    if (typeof name !== "string" || typeof driver !== "string") throw badRequest("invalid Name or Driver");
    const { volume } = volumes.create(name, {
      driver,
      labels: stringMap(body.Labels, "Labels"),
      options: stringMap(body.DriverOpts, "DriverOpts"),
    });
    exchange.send(201, volumes.view(volume));
  });

  router.add("POST", "/volumes/prune", async (exchange) => {
    const filters = queryFilters(exchange.query);
    for (const name of filters.keys())
      if (!["label", "label!", "all"].includes(name)) throw badRequest(`invalid filter '${name}'`);
    // API 1.42 made prune take anonymous volumes only; older clients meant every unused one.
    const all = boolFilter(filters, "all") ?? !versionAtLeast(exchange.apiVersion, "1.42");
    const labels = filters.get("label") ?? [];
    const notLabels = filters.get("label!") ?? [];
    const pruned = (volume: VolumeRecord): boolean => {
      const own = volume.Labels ?? {};
      return (
        // Volumes with options hold nothing here to reclaim (dockerd leaves them out too).
        !hasOptions(volume) &&
        (all || Object.hasOwn(own, ANONYMOUS_LABEL)) &&
        labelsMatch(own, labels) &&
        !(notLabels.length > 0 && labelsMatch(own, notLabels)) &&
        volumes.users(volume.Name).length === 0
      );
    };
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const volume of volumes.all().filter(pruned)) {
      const size = await volumes.size(volume.Name);
      // In use meanwhile (a container made while sizes were counted): left, as dockerd's store refuses it.
      if (volumes.users(volume.Name).length > 0 || !volumes.find(volume.Name)) continue;
      await volumes.remove(volume.Name, {}, { signal: exchange.signal });
      deleted.push(volume.Name);
      reclaimed += Math.max(size, 0);
    }
    events.publish("volume", "prune", "", { reclaimed: String(reclaimed) });
    exchange.send(200, { VolumesDeleted: deleted, SpaceReclaimed: reclaimed });
  });

  router.add("GET", "/volumes/{name}", (exchange) => {
    exchange.send(200, volumes.view(volumes.get(exchange.params.name ?? "")));
  });

  router.add("DELETE", "/volumes/{name}", async (exchange) => {
    await volumes.remove(
      exchange.params.name ?? "",
      { force: queryBool(exchange.query, "force") },
      { signal: exchange.signal },
    );
    exchange.send(204, null);
  });
}
