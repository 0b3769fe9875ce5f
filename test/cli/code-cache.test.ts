// The built ctrd runs with V8's code cache for its bundle (src/cli/code-cache.ts), saved again by
// the first successful run of a command the cache does not cover yet. Each test runs a copy of
// dist/cli in a temp dir: other test files run the shared build at the same time.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, expect, test } from "vitest";
import { CTRD, ensureBuilt } from "./helpers.js";

const built = join(CTRD, "..");
let dir = "";
let main = "";
let cacheFile = "";

beforeAll(ensureBuilt, 300_000);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ctrd-code-cache-"));
  mkdirSync(join(dir, "cli"));
  for (const file of ["main.js", "ctrd.cjs", "package.json"])
    copyFileSync(join(built, file), join(dir, "cli", file));
  copyFileSync(join(built, "../../package.json"), join(dir, "package.json"));
  main = join(dir, "cli/main.js");
  cacheFile = join(dir, "cli/ctrd.code-cache");
  // The cache as the build saves it (the shared build's has been saved again by other tests' commands).
  const warmUp = spawnSync(process.execPath, [main], {
    env: { ...process.env, NODE_OPTIONS: "", CTRD_WRITE_CODE_CACHE: "1" },
  });
  expect(warmUp.status).toBe(0);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A plain `ctrd` (no Node options: those have a cache of their own, see the last test). */
function run(...args: string[]): number | null {
  return runWith({}, ...args);
}

function runWith(env: Record<string, string>, ...args: string[]): number | null {
  return spawnSync(process.execPath, [main, ...args], {
    stdio: "ignore",
    env: { ...process.env, NODE_OPTIONS: "", ...env },
  }).status;
}

/** The cache file's header: the magic line, the bundle's id, the commands it covers. */
function header(): { magic: string; bundleId: string; commands: string[] } {
  const [magic = "", bundleId = "", commands = ""] = readFileSync(cacheFile, "latin1").split("\n", 3);
  return { magic, bundleId, commands: commands === "" ? [] : commands.split(",") };
}

test("the build's cache covers no command; a command that ends well is added, and then it stays as it is", () => {
  const fromBuild = header();
  expect(fromBuild.magic).toBe("ctrd-code-cache 1");
  expect(fromBuild.bundleId).toMatch(/^[0-9a-f]{32}$/);
  expect(fromBuild.commands).toEqual([]);
  const size = statSync(cacheFile).size;

  expect(run("ps", "--help")).toBe(0);
  expect(header()).toEqual({ ...fromBuild, commands: ["ps"] });
  // It now holds what `ps` compiled besides what the build's warm-up did.
  expect(statSync(cacheFile).size).toBeGreaterThan(size);

  // Covered, and accepted by V8: not written again.
  const written = statSync(cacheFile);
  expect(run("ps", "--help")).toBe(0);
  expect(statSync(cacheFile).mtimeMs).toBe(written.mtimeMs);
  expect(statSync(cacheFile).ino).toBe(written.ino);

  expect(run("run", "--help")).toBe(0);
  expect(header().commands).toEqual(["ps", "run"]);
});

test("a command that fails leaves the cache as it is", () => {
  const before = readFileSync(cacheFile);
  expect(run("--containerd", join(dir, "no-such.sock"), "ps")).toBe(125);
  expect(readFileSync(cacheFile).equals(before)).toBe(true);
});

test("a cache made for another bundle is not used, and is replaced by one for this bundle", () => {
  const { bundleId } = header();
  const data = readFileSync(cacheFile);
  const otherId = bundleId.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  writeFileSync(cacheFile, Buffer.concat([Buffer.from(`ctrd-code-cache 1\n${otherId}\nps\n`), data]));
  expect(run("ps", "--help")).toBe(0);
  expect(header()).toEqual({ magic: "ctrd-code-cache 1", bundleId, commands: ["ps"] });
});

test("a cache that is no cache at all is replaced, and ctrd runs as without one", () => {
  writeFileSync(cacheFile, "ctrd-code-cache 1\n");
  expect(run("ps", "--help")).toBe(0);
  expect(header().commands).toEqual(["ps"]);
  rmSync(cacheFile);
  expect(run("ps", "--help")).toBe(0);
  expect(header().commands).toEqual(["ps"]);
});

test("runs with other Node options (V8 rejects a cache made under other flags) keep a cache of their own", () => {
  const flagged = { NODE_OPTIONS: "--max-old-space-size=512" };
  expect(run("ps", "--help")).toBe(0);
  expect(runWith(flagged, "ps", "--help")).toBe(0);
  const others = readdirSync(join(dir, "cli")).filter((name) => /^ctrd-[0-9a-f]{8}\.code-cache$/.test(name));
  expect(others).toHaveLength(1);
  const plain = statSync(cacheFile);
  const other = statSync(join(dir, "cli", others[0] ?? ""));
  // Alternating, neither is written again.
  expect(run("ps", "--help")).toBe(0);
  expect(runWith(flagged, "ps", "--help")).toBe(0);
  expect(statSync(cacheFile).ino).toBe(plain.ino);
  expect(statSync(join(dir, "cli", others[0] ?? "")).ino).toBe(other.ino);
  expect(header().commands).toEqual(["ps"]);
});
