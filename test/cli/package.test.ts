// What users import is the bundle scripts/build.js writes (dist/index.js, package.json "exports"),
// not src/: it must offer the same API, and the same classes behave the same through it.
import { join } from "node:path";
import { beforeAll, expect, test } from "vitest";
import * as source from "../../src/index.js";
import { ensureBuilt } from "./helpers.js";

const repo = join(import.meta.dirname, "../..");

beforeAll(ensureBuilt, 300_000);

test("dist/index.js exports what src/index.ts exports", async () => {
  const built = (await import(join(repo, "dist/index.js"))) as typeof source;
  expect(Object.keys(built).sort()).toEqual(Object.keys(source).sort());
  const kinds = (api: object) => Object.entries(api).map(([name, value]) => `${name}: ${typeof value}`);
  expect(kinds(built).sort()).toEqual(kinds(source).sort());
  // Its own copies of the classes, consistent among themselves.
  expect(built.parseReference("busybox:1")).toEqual(source.parseReference("busybox:1"));
  const err = built.errorFor("not_found", "gone");
  expect(err).toBeInstanceOf(built.NotFoundError);
  expect(err).toBeInstanceOf(built.LibcontainerdError);
  expect(built.isErrorCode(err, "not_found")).toBe(true);
});

test("dist/libcontainerd/local/index.js exports what src/libcontainerd/local/index.ts exports", async () => {
  const local = await import("../../src/libcontainerd/local/index.js");
  const built = (await import(join(repo, "dist/libcontainerd/local/index.js"))) as typeof local;
  expect(Object.keys(built).sort()).toEqual(Object.keys(local).sort());
});
