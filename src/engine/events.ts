import { badRequest } from "./errors.js";
import { labelsMatch } from "./http.js";

/** One event as the Engine API streams it (api/types/events.Message, with the pre-1.22 fields too). */
export interface EngineEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: "container" | "image" | "network" | "volume";
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  timeNano: number;
}

/** How many past events `since` can reach back to (dockerd keeps 256 as well). */
const HISTORY = 256;

type Listener = (event: EngineEvent) => void;

/** Publishes engine events to live subscribers and keeps a short history for `since`. */
export class EventBus {
  private readonly history: EngineEvent[] = [];
  private readonly listeners = new Set<Listener>();

  publish(
    type: EngineEvent["Type"],
    action: string,
    id: string,
    attributes: Record<string, string> = {},
  ): void {
    const nowNs = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: "local",
      time: Number(nowNs / 1_000_000_000n),
      timeNano: Number(nowNs),
    };
    if (type === "container") {
      event.status = action;
      event.id = id;
      if (attributes.image !== undefined) event.from = attributes.image;
    }
    this.history.push(event);
    if (this.history.length > HISTORY) this.history.shift();
    for (const listener of this.listeners) listener(event);
  }

  /** The remembered events in [since, until], then the live ones until `signal` aborts or until passes. */
  subscribe(listener: Listener): { past: EngineEvent[]; unsubscribe: () => void } {
    this.listeners.add(listener);
    return { past: [...this.history], unsubscribe: () => this.listeners.delete(listener) };
  }
}

/** `since`/`until` as the CLI sends them: unix seconds, optionally with a fraction (`1700000000.123456789`). */
export function parseEventTime(value: string | null, name: string): number | undefined {
  if (value === null || value === "") return undefined;
  const match = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value.trim());
  if (!match) {
    const date = Date.parse(value);
    if (Number.isNaN(date)) throw badRequest(`invalid ${name} ${JSON.stringify(value)}`);
    return date * 1_000_000;
  }
  const seconds = Number(match[1]);
  const fraction = Number((match[2] ?? "").padEnd(9, "0"));
  return seconds * 1_000_000_000 + fraction;
}

/** The filters GET /events takes (api/server/router/system's acceptedFilters) and its event types. */
const EVENT_FILTERS = new Set([
  "config",
  "container",
  "daemon",
  "event",
  "image",
  "label",
  "network",
  "node",
  "plugin",
  "scope",
  "secret",
  "service",
  "type",
  "volume",
]);
const EVENT_TYPES = new Set([
  "builder",
  "config",
  "container",
  "daemon",
  "image",
  "network",
  "node",
  "plugin",
  "secret",
  "service",
  "volume",
]);

/** The filters, or a 400 for one dockerd refuses (it used to be ignored: the stream then had every event). */
export function checkEventFilters(filters: Map<string, string[]>): Map<string, string[]> {
  for (const name of filters.keys())
    if (!EVENT_FILTERS.has(name)) throw badRequest(`invalid filter '${name}'`);
  for (const type of filters.get("type") ?? [])
    if (!EVENT_TYPES.has(type)) throw badRequest(`Invalid event type: ${type}`);
  return filters;
}

/** Docker's event filters: container, event, type, label (key or key=value), image, network, volume. */
export function eventMatches(event: EngineEvent, filters: Map<string, string[]>): boolean {
  const accepts = (name: string, candidates: (string | undefined)[]): boolean => {
    const wanted = filters.get(name);
    if (!wanted || wanted.length === 0) return true;
    return wanted.some((value) =>
      candidates.some((candidate) => candidate !== undefined && candidate === value),
    );
  };
  const attrs = event.Actor.Attributes;
  if (!accepts("type", [event.Type])) return false;
  if (!accepts("event", [event.Action, event.Action.split(":")[0]])) return false;
  if (filters.has("container")) {
    if (event.Type !== "container") return false;
    const id = event.Actor.ID;
    const wanted = filters.get("container") ?? [];
    if (!wanted.some((value) => value === attrs.name || (value.length > 0 && id.startsWith(value))))
      return false;
  }
  if (
    filters.has("image") &&
    !accepts("image", [attrs.image, event.Type === "image" ? event.Actor.ID : undefined])
  )
    return false;
  if (filters.has("volume") && !accepts("volume", [event.Type === "volume" ? event.Actor.ID : undefined]))
    return false;
  if (
    filters.has("network") &&
    !accepts("network", [event.Type === "network" ? event.Actor.ID : undefined, attrs.name])
  )
    return false;
  return labelsMatch(attrs, filters.get("label") ?? []);
}
