import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, expect, test } from "vitest";
import { EventBus } from "../../src/engine/events.js";
import { VolumeStore } from "../../src/engine/volume-store.js";

// A volume with mount options (here a bind of a host directory) is never deleted through its mount: a
// removal unmounts it first, also when the engine restarted and only the mount table knows it is mounted.
// The table escapes spaces in paths (\040): a data root with a space must still be seen mounted.
let dir: string;
let host: string;
let volumes: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lcd-volume-mounts-"));
  host = join(dir, "host data");
  volumes = join(dir, "data root", "volumes");
  mkdirSync(host);
  writeFileSync(join(host, "precious"), "the host's\n");
});

afterEach(() => {
  // Whatever a failing run left mounted under the temp dir (wherever a removal renamed it): unmounted
  // before the temp dir goes, never deleted through.
  const escaped = dir.replace(/ /g, "\\040");
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n").reverse()) {
    const target = line.split(" ")[4];
    if (target?.startsWith(escaped))
      execFileSync("umount", [target.replace(/\\040/g, " ")], { stdio: "ignore" });
  }
  rmSync(dir, { recursive: true, force: true });
});

const newStore = (): VolumeStore =>
  new VolumeStore(volumes, pino({ level: "silent" }), new EventBus(), () => []);

test("removing a bind volume still mounted after an engine restart unmounts it and keeps the host's files", async () => {
  const before = newStore();
  before.create("bound", { options: { type: "none", o: "bind", device: host } });
  await before.mount("bound", "a-container");
  expect(readFileSync(join(volumes, "bound", "_data", "precious"), "utf8")).toBe("the host's\n");
  // The engine restarts while the container's exit is missed: the volume stays mounted.
  const after = newStore();
  await after.load();
  await after.remove("bound");
  expect(readFileSync(join(host, "precious"), "utf8")).toBe("the host's\n");
  expect(existsSync(join(volumes, "bound"))).toBe(false);
  // Unmounted, not left mounted under a removal's hidden dir (which the next start would rm -rf).
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(volumes.replace(/ /g, "\\040"));
  expect(readdirSync(volumes)).toEqual([]);
});

test("a volume binding a host tree with mounts in it (o=rbind) is unmounted and removed, the host's tree kept", async () => {
  const submount = join(host, "sub");
  mkdirSync(submount);
  execFileSync("mount", ["-t", "tmpfs", "lcd-test", submount]);
  try {
    writeFileSync(join(submount, "inner"), "the host's too\n");
    const store = newStore();
    store.create("bound", { options: { type: "none", o: "rbind", device: host } });
    await store.mount("bound", "a-container");
    expect(readFileSync(join(volumes, "bound", "_data", "sub", "inner"), "utf8")).toBe("the host's too\n");
    await store.unmount("bound", "a-container");
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(volumes.replace(/ /g, "\\040"));
    await store.remove("bound");
    expect(readdirSync(volumes)).toEqual([]);
    expect(readFileSync(join(host, "precious"), "utf8")).toBe("the host's\n");
    expect(readFileSync(join(submount, "inner"), "utf8")).toBe("the host's too\n");
  } finally {
    execFileSync("umount", [submount]);
  }
});
