// The cgroup parents the library has runc create (`/<namespace>` of `/<namespace>/<id>`), on the
// host's real cgroupfs: kept a moment for the next container, then removed; removed at once when
// the client closes or the process exits. Here the test plays runc (it makes and removes the
// container's own cgroup in every hierarchy); only the parent's linger runs on fake timers.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import {
  CGROUP_PARENT_LINGER_MS,
  CreatedCgroupParents,
} from "../../src/libcontainerd/remote/cgroup-parents.js";

const CGROUP_ROOT = "/sys/fs/cgroup";
const hierarchies = existsSync(join(CGROUP_ROOT, "cgroup.controllers"))
  ? [CGROUP_ROOT]
  : readdirSync(CGROUP_ROOT, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(CGROUP_ROOT, entry.name));

let parent: string;
let counter = 0;
beforeEach(() => {
  counter += 1;
  parent = `/lcd-cgparent-${process.pid}-${counter}`;
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
  for (const root of hierarchies) {
    for (const dir of ["c1", "c2", "a/c1", "b/c2", "a", "b", ""].map((sub) => join(root, parent, sub)))
      if (existsSync(dir)) rmdirSync(dir);
  }
});

/** What runc does with a container's cgroup: makes it (and its parents) in every hierarchy, or removes its own. */
const runc = {
  create: (cgroupsPath: string) => {
    for (const root of hierarchies) mkdirSync(join(root, cgroupsPath), { recursive: true });
  },
  remove: (cgroupsPath: string) => {
    for (const root of hierarchies) rmdirSync(join(root, cgroupsPath));
  },
};
const inHierarchies = (path: string) => hierarchies.filter((root) => existsSync(join(root, path))).length;

test("an empty parent is kept for the next container, and removed after its linger in every hierarchy", () => {
  const exitListeners = process.listenerCount("exit");
  const parents = new CreatedCgroupParents();
  expect(parents.claim(`${parent}/c1`)).toBe(parent);
  runc.create(`${parent}/c1`);
  runc.remove(`${parent}/c1`);
  parents.release(`${parent}/c1`, parent);
  expect(inHierarchies(parent)).toBe(hierarchies.length);
  // One exit handler while a parent waits; none once nothing does.
  expect(process.listenerCount("exit")).toBe(exitListeners + 1);

  // The next container comes before the linger ends: the parent stays while it lives.
  expect(parents.claim(`${parent}/c2`)).toBe(parent);
  vi.advanceTimersByTime(CGROUP_PARENT_LINGER_MS * 3);
  expect(inHierarchies(parent)).toBe(hierarchies.length);
  runc.create(`${parent}/c2`);
  runc.remove(`${parent}/c2`);
  parents.release(`${parent}/c2`, parent);

  vi.advanceTimersByTime(CGROUP_PARENT_LINGER_MS - 1);
  expect(inHierarchies(parent)).toBe(hierarchies.length);
  vi.advanceTimersByTime(1);
  expect(inHierarchies(parent)).toBe(0);
  expect(process.listenerCount("exit")).toBe(exitListeners);

  // Known, it is claimed again without looking, and runc makes it anew.
  expect(parents.claim(`${parent}/c1`)).toBe(parent);
  parents.release(`${parent}/c1`, parent);
  vi.advanceTimersByTime(CGROUP_PARENT_LINGER_MS);
  expect(inHierarchies(parent)).toBe(0);
});

test("containers in different groups under one new parent: every dir runc made for them goes", () => {
  const parents = new CreatedCgroupParents();
  expect(parents.claim(`${parent}/a/c1`)).toBe(parent);
  expect(parents.claim(`${parent}/b/c2`)).toBe(parent);
  runc.create(`${parent}/a/c1`);
  runc.create(`${parent}/b/c2`);
  runc.remove(`${parent}/a/c1`);
  parents.release(`${parent}/a/c1`, parent);
  runc.remove(`${parent}/b/c2`);
  // The last container's path names /b, not /a: /a is removed all the same, so the parent can go.
  parents.release(`${parent}/b/c2`, parent);
  vi.advanceTimersByTime(CGROUP_PARENT_LINGER_MS);
  expect(inHierarchies(`${parent}/a`)).toBe(0);
  expect(inHierarchies(parent)).toBe(0);
});

test("removeEmpty (the client closing) removes an empty parent at once, not one still in use", () => {
  const parents = new CreatedCgroupParents();
  const other = `${parent}-in-use`;
  expect(parents.claim(`${parent}/c1`)).toBe(parent);
  expect(parents.claim(`${other}/c1`)).toBe(other);
  runc.create(`${parent}/c1`);
  runc.create(`${other}/c1`);
  try {
    runc.remove(`${parent}/c1`);
    const exitListeners = process.listenerCount("exit");
    parents.release(`${parent}/c1`, parent);
    expect(process.listenerCount("exit")).toBe(exitListeners + 1);
    parents.removeEmpty();
    expect(inHierarchies(parent)).toBe(0);
    expect(process.listenerCount("exit")).toBe(exitListeners);
    expect(inHierarchies(other)).toBe(hierarchies.length);
  } finally {
    runc.remove(`${other}/c1`);
    for (const root of hierarchies) rmdirSync(join(root, other));
  }
});

test("a parent kept for a container whose create then failed is still removed", () => {
  const parents = new CreatedCgroupParents();
  parents.claim(`${parent}/c1`);
  runc.create(`${parent}/c1`);
  runc.remove(`${parent}/c1`);
  parents.release(`${parent}/c1`, parent);
  // The next create claims the kept parent, then fails before runc runs.
  parents.claim(`${parent}/c2`);
  parents.release(`${parent}/c2`, parent);
  vi.advanceTimersByTime(CGROUP_PARENT_LINGER_MS);
  expect(inHierarchies(parent)).toBe(0);
});

test("a parent made by another client (recorded on a container it left) is removed at once", () => {
  const parents = new CreatedCgroupParents();
  runc.create(`${parent}/c1`);
  runc.remove(`${parent}/c1`);
  parents.release(`${parent}/c1`, parent);
  expect(inHierarchies(parent)).toBe(0);
});

test("the process exiting removes the parents still kept, without waiting for the linger", () => {
  // A process that has its last container's parent kept and ends at once: the linger's timer does
  // not hold it, and its exit removes the parent.
  const script = `
    import { mkdirSync, readdirSync, rmdirSync, existsSync } from "node:fs";
    import { join } from "node:path";
    import { CreatedCgroupParents } from "./src/libcontainerd/remote/cgroup-parents.ts";
    const hierarchies = ${JSON.stringify(hierarchies)};
    const parents = new CreatedCgroupParents();
    const path = ${JSON.stringify(`${parent}/c1`)};
    if (parents.claim(path) !== ${JSON.stringify(parent)}) process.exit(3);
    for (const root of hierarchies) mkdirSync(join(root, path), { recursive: true });
    for (const root of hierarchies) rmdirSync(join(root, path));
    parents.release(path, ${JSON.stringify(parent)});
    // With nothing else to do the process ends at once: the parent is still there when it does
    // (no timer held it), and its exit is what removes it.
    process.on("beforeExit", () => {
      if (!hierarchies.every((root) => existsSync(join(root, ${JSON.stringify(parent)})))) process.exit(4);
    });
  `;
  const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: join(import.meta.dirname, "../.."),
    encoding: "utf8",
  });
  expect(child.stderr).toBe("");
  expect(child.status).toBe(0);
  expect(inHierarchies(parent)).toBe(0);
});

test("in a worker thread (which can be terminated with no exit of its own) an empty parent goes at once", () => {
  // A child process, so that the worker's tsx and the cgroups it makes are its own.
  const module = join(import.meta.dirname, "../../src/libcontainerd/remote/cgroup-parents.ts");
  const worker = `
    const { register } = await import("tsx/esm/api");
    register();
    const { mkdirSync, rmdirSync, existsSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { CreatedCgroupParents } = await import(${JSON.stringify(module)});
    const hierarchies = ${JSON.stringify(hierarchies)};
    const parents = new CreatedCgroupParents();
    const path = ${JSON.stringify(`${parent}/c1`)};
    parents.claim(path);
    for (const root of hierarchies) mkdirSync(join(root, path), { recursive: true });
    for (const root of hierarchies) rmdirSync(join(root, path));
    parents.release(path, ${JSON.stringify(parent)});
    if (hierarchies.some((root) => existsSync(join(root, ${JSON.stringify(parent)})))) process.exit(4);
  `;
  const script = `
    import { Worker } from "node:worker_threads";
    new Worker(${JSON.stringify(worker)}, { eval: true }).on("exit", (code) => process.exit(code));
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: join(import.meta.dirname, "../.."),
    encoding: "utf8",
  });
  expect(child.stderr).toBe("");
  expect(child.status).toBe(0);
  expect(inHierarchies(parent)).toBe(0);
});
