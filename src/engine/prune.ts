import { badRequest } from "./errors.js";
import { parseEventTime } from "./events.js";
import { labelsMatch, queryFilters } from "./http.js";

const DURATION_UNITS_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** `until`: a timestamp, or a Go duration before now (`24h`, `1h30m`), as timetypes.GetTimestamp reads it; in ns. */
function untilNs(value: string): number | undefined {
  if (/^(\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h))+$/.test(value)) {
    let ns = 0;
    for (const [, amount = "0", unit = "s"] of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g))
      ns += Number(amount) * (DURATION_UNITS_NS[unit] ?? 0);
    return Date.now() * 1e6 - ns;
  }
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
