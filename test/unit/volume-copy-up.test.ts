import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { type MountPoint, populateVolumes } from "../../src/engine/containers/volume-mounts.js";

// Copy-up writes into a volume's _data, which a running container sharing a named volume can change at
// any moment: between the engine's "is it empty" and the copy it can plant links there. The copy must
// never follow one onto the host (cp -a writes a regular file through an existing link at its name, and
// through a link standing for a directory it made).
let dir: string;
let root: string;
let data: string;
let host: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lcd-copy-up-"));
  root = join(dir, "rootfs");
  host = join(dir, "host");
  data = join(dir, "volumes", "vol", "_data");
  mkdirSync(join(root, "data", "etc"), { recursive: true });
  writeFileSync(join(root, "data", "etc", "passwd"), "from the image\n");
  writeFileSync(join(root, "data", "file"), "from the image\n");
  mkdirSync(host);
  writeFileSync(join(host, "passwd"), "host's\n");
  writeFileSync(join(host, "file"), "host's\n");
  mkdirSync(data, { recursive: true, mode: 0o755 });
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mountPoint = (): MountPoint => ({
  Type: "volume",
  Name: "vol",
  Source: data,
  Destination: "/data",
  Driver: "local",
  Mode: "z",
  RW: true,
  Propagation: "",
  Named: true,
  CopyData: true,
});

test("copy-up never writes through a link a container planted in the volume", async () => {
  symlinkSync(join(host, "file"), join(data, "file"));
  await populateVolumes([mountPoint()], root, join(dir, "volumes"));
  expect(readFileSync(join(host, "file"), "utf8")).toBe("host's\n");
  expect(readFileSync(join(host, "passwd"), "utf8")).toBe("host's\n");
  // What the container made in the meantime is its own: a link is replaced, never followed.
  expect(lstatSync(join(data, "file")).isFile()).toBe(true);
  expect(readFileSync(join(data, "etc", "passwd"), "utf8")).toBe("from the image\n");
  // Nothing left of the copy beside the volumes.
  expect(readdirSync(join(dir, "volumes"))).toEqual(["vol"]);
});

test("copy-up gives the volume the image directory's own mode", async () => {
  const { chmodSync } = await import("node:fs");
  chmodSync(join(root, "data"), 0o750);
  await populateVolumes([mountPoint()], root, join(dir, "volumes"));
  expect(statSync(data).mode & 0o7777).toBe(0o750);
  expect(readdirSync(data).sort()).toEqual(["etc", "file"]);
});
