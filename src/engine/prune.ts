import { goDurationNs } from "../state/human-duration.js";
import { badRequest } from "./errors.js";
import { parseEventTime } from "./events.js";
import { labelsMatch, queryFilters } from "./http.js";

/** `until`: a timestamp, or a Go duration before now (`24h`, `1h30m`), as timetypes.GetTimestamp reads it; in ns. */
function untilNs(value: string): number | undefined {
  const ago = goDurationNs(value);
  if (ago !== undefined) return Date.now() * 1e6 - ago;
  return parseEventTime(value, "until");
}

/**
 * The filters every prune takes (`until`, `label`, `label!`; others are a 400, as dockerd's
 * pruneFilters validation): whether something with these labels, created at this time, goes.
 */
export function pruneFilter(
  query: URLSearchParams,
  extra: readonly string[] = [],
): { filters: Map<string, string[]>; matches(labels: Record<string, string>, createdMs: number): boolean } {
  const filters = queryFilters(query);
  for (const name of filters.keys())
    if (!["until", "label", "label!", ...extra].includes(name)) throw badRequest(`invalid filter '${name}'`);
  const untilValues = filters.get("until") ?? [];
  if (untilValues.length > 1) throw badRequest("more than one until filter specified");
  const until = untilValues[0] === undefined ? undefined : untilNs(untilValues[0]);
  const labels = filters.get("label") ?? [];
  const notLabels = filters.get("label!") ?? [];
  return {
    filters,
    matches: (own, createdMs) =>
      (until === undefined || createdMs * 1e6 <= until) &&
      labelsMatch(own, labels) &&
      !(notLabels.length > 0 && labelsMatch(own, notLabels)),
  };
}
