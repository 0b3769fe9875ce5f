// What users import is the bundle scripts/build.js writes (dist/index.js, package.json "exports"),
// not src/: it must offer the same API, and the same classes behave the same through it.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
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

/** What `npm pack` puts in the tarball (npm's own file list, without running prepack's build). */
function packedFiles(): Set<string> {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: repo,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  const [pack] = JSON.parse(out) as [{ files: { path: string }[] }];
  return new Set(pack.files.map((file) => file.path));
}

interface Manifest {
  exports: Record<string, Record<string, string>>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as Manifest;

test("the tarball holds every file package.json names, and the native parts packagePath() looks for", () => {
  const packed = packedFiles();
  const named = [
    ...Object.values(manifest.exports).flatMap((conditions) => Object.values(conditions)),
    ...Object.values(manifest.bin),
    // native/fifo, native/network (optional: mkfifo(1), unshare(1) without them) and the log driver.
    "native/fifo/build/fifo.node",
    "native/network/build/network.node",
    "native/ctrd-logger/build/ctrd-logger",
    // Their sources, to build them where the binaries do not fit (make -C native/…).
    "native/fifo/Makefile",
    "native/network/Makefile",
    "native/ctrd-logger/Makefile",
    // ctrd: its bundle and the code cache the bin runs it with.
    "dist/cli/ctrd.cjs",
    "dist/cli/ctrd.code-cache",
  ].map((path) => path.replace(/^\.\//, ""));
  expect(named.filter((path) => !packed.has(path))).toEqual([]);
  // Only what a user runs: not the repo's set-up (apt-get, npm ci) nor the build's stamp.
  const devOnly = [...packed].filter((path) => path.startsWith("scripts/") || path === "dist/.build-stamp");
  expect(devOnly).toEqual([]);
});

/** Packages (not Node built-ins, not our own files) that `files` import, found by `pattern`. */
function packagesImported(files: string[], pattern: RegExp): string[] {
  const found = new Set<string>();
  for (const file of files) {
    for (const [, specifier = ""] of readFileSync(file, "utf8").matchAll(pattern)) {
      const name = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*/i.exec(specifier)?.[0];
      if (!name || specifier.startsWith("node:") || builtinModules.includes(name)) continue;
      found.add(name);
    }
  }
  return [...found].sort();
}

test("dependencies are what an install needs: what the bundles leave out and what the types name", () => {
  const dist = readdirSync(join(repo, "dist"), { recursive: true, encoding: "utf8" }).map((path) =>
    join(repo, "dist", path),
  );
  const specifier = String.raw`["']((?:@[\w.-]+\/)?[\w.-]+(?:\/[\w./-]*)?)["']`;
  const code = packagesImported(
    dist.filter((path) => /\.c?js$/.test(path)),
    new RegExp(String.raw`(?:\bfrom\s*|\bimport\(\s*|\brequire\(\s*)${specifier}`, "g"),
  );
  const types = packagesImported(
    dist.filter((path) => path.endsWith(".d.ts")),
    new RegExp(String.raw`(?:\bfrom\s*|\bimport\(\s*)${specifier}`, "g"),
  );
  // Everything else is inside the bundles (scripts/build.js); koffi is a native addon.
  expect(code).toEqual(["koffi"]);
  expect(Object.keys(manifest.dependencies).sort()).toEqual([...new Set([...code, ...types])].sort());
});
