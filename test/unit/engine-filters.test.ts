import { expect, test } from "vitest";
import { labelsMatch } from "../../src/engine/http.js";

test("label filters as filters.Args.MatchKVList: every key present, every key=value equal; the key ends at the first '='", () => {
  const labels = { app: "web", url: "a=b", empty: "" };
  expect(labelsMatch(labels, [])).toBe(true);
  expect(labelsMatch(labels, ["app"])).toBe(true);
  expect(labelsMatch(labels, ["app=web", "empty="])).toBe(true);
  expect(labelsMatch(labels, ["url=a=b"])).toBe(true);
  expect(labelsMatch(labels, ["url=a"])).toBe(false);
  expect(labelsMatch(labels, ["app=web", "missing"])).toBe(false);
  expect(labelsMatch(labels, ["missing="])).toBe(false);
  expect(labelsMatch(labels, ["toString"])).toBe(false);
});
