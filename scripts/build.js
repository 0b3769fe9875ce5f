#!/usr/bin/env node
// `npm run build`: dist/ from src/. tsc writes the type declarations (dist/**/*.d.ts); esbuild
// writes the code, as bundles: the package's entry points (dist/index.js and
// dist/libcontainerd/local/index.js, package.json "exports") and ctrd (dist/cli/main.js).
// Node 20 spends most of a short program's start resolving, reading and compiling modules one
// file at a time: unbundled, `import("libcontainerd")` loaded ~300 files and ctrd ps 310. Bundled,
// a few; code behind a dynamic import() (each ctrd command, the local backend, the managed
// containerd's supervisor, image pulls…) stays in chunks of its own, loaded when first used.
// ctrd is one CommonJS file with a V8 code cache beside it (see src/cli/code-cache.ts), started by
// a CommonJS bin (dist/cli/main.js).
// Dependencies are bundled too (their types still come from node_modules): protobuf-es and
// connect alone were ~120 files. koffi stays out (a native addon, loaded only by the Windows
// backend). Exits non-zero when a step fails; tsc's type errors do not stop the bundles (esbuild
// does not type-check), as tsc itself still emits.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { build } from "esbuild";

const repo = join(import.meta.dirname, "..");
const cliDir = join(repo, "dist/cli");

/**
 * `new URL("../…", import.meta.url)` names a file relative to the module, which a bundle moves:
 * the addon or binary is then silently not found (native/netns once fell back to unshare(1) so).
 * src/platform/package-dir.ts's packagePath() finds it from any of src/, dist/ and a chunk.
 */
function relativeAssetUrls(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const path = join(entry.parentPath, entry.name);
    const text = readFileSync(path, "utf8");
    if (/new URL\(\s*["'`]\.\.?\/[^)]*import\.meta\.url/.test(text)) found.push(relative(repo, path));
  }
  return found;
}
const relativeUrls = relativeAssetUrls(join(repo, "src"));
if (relativeUrls.length > 0) {
  process.stderr.write(
    `build: new URL("../…", import.meta.url) breaks in the bundle; use packagePath() in: ${relativeUrls.join(", ")}\n`,
  );
  process.exit(1);
}

// Chunk names carry a content hash: old chunks (and the .js files tsc once wrote) must not pile up.
rmSync(join(repo, "dist"), { recursive: true, force: true });

const tsc = spawnSync(
  join(repo, "node_modules/.bin/tsc"),
  ["-p", "tsconfig.build.json", "--emitDeclarationOnly"],
  { cwd: repo, stdio: "inherit" },
);

/** @type {import("esbuild").BuildOptions} */
const common = {
  absWorkingDir: repo,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20.19",
  external: ["koffi"],
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  // CommonJS dependencies (commander, pino) call require() for Node built-ins; an ESM bundle
  // has none of its own.
  banner: {
    js: 'import { createRequire as __ctrdCreateRequire } from "node:module"; const require = __ctrdCreateRequire(import.meta.url);',
  },
};

let bundled = true;
async function bundle(what, options) {
  try {
    await build({ ...common, ...options });
  } catch (err) {
    bundled = false;
    process.stderr.write(
      `build: bundling ${what} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
}

await bundle("the library", {
  entryPoints: { index: "src/index.ts", "libcontainerd/local/index": "src/libcontainerd/local/index.ts" },
  outdir: join(repo, "dist"),
  chunkNames: "chunks/[name]-[hash]",
});

// ctrd serve's worker for docker cp and export: a process of its own that chroots into a container's
// root once it has loaded all its code, so one file without chunks (src/engine/containers/rootfs-worker-main.ts).
await bundle("the rootfs worker", {
  entryPoints: { "engine/rootfs-worker": "src/engine/containers/rootfs-worker-main.ts" },
  outdir: join(repo, "dist"),
  splitting: false,
});

/**
 * A CommonJS file of ctrd's: `import.meta` is the file's own url, dirname and filename; strict, as the
 * ES modules it is made of (the directive must come before the banner's code to count); and without
 * whitespace or comments: Node reads less, and V8 scans less when it compiles a function on first use
 * (ctrd ps and run: ~8 ms CPU less; stack traces point into the source map, ctrd.cjs.map).
 */
const commonJs = {
  format: "cjs",
  splitting: false,
  define: {
    "import.meta.url": "__ctrdModuleUrl",
    "import.meta.dirname": "__dirname",
    "import.meta.filename": "__filename",
  },
  banner: { js: '"use strict";const __ctrdModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  minifyWhitespace: true,
};

/**
 * Node built-ins that ctrd.cjs loads when one of their functions is first called, not when a module
 * that imports them is evaluated: commander requires child_process at its start for executable
 * subcommands ctrd has none of, and ctrd's own modules name it for what a command may never do
 * (mkfifo(1) without the addon, runtime probes, CNI plugins); sonic-boom (pino's stderr) requires
 * assert for one check when it is closed. ~3 and ~2 ms CPU of every command's start. Each becomes a
 * module of getters, one per export of the built-in as this Node has them (a function that calls
 * the built-in's, for one that is a function itself).
 */
const LAZY_BUILTINS = ["child_process", "assert"];
const builtinRequire = createRequire(import.meta.url);
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`);
    build.onResolve({ filter }, (args) =>
      // The getters' own require is the built-in itself.
      args.namespace === "lazy-builtin"
        ? undefined
        : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" },
    );
    build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, ({ path }) => {
      const builtin = builtinRequire(`node:${path}`);
      const names = Object.keys(builtin).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name));
      const getters = names.map((name) => `  ${name}: { get: () => load().${name}, enumerable: true },`);
      const target =
        typeof builtin === "function" ? "function (...args) { return load().apply(this, args); }" : "{}";
      return {
        contents: [
          "let loaded;",
          `const load = () => (loaded ??= require("node:${path}"));`,
          `module.exports = Object.defineProperties(${target}, {\n${getters.join("\n")}\n});`,
        ].join("\n"),
        loader: "js",
      };
    });
  },
};

// ctrd itself, one CommonJS file: Node 20 can run CommonJS with a V8 code cache (vm.Script's
// cachedData), not ES modules.
const ctrdBundle = join(cliDir, "ctrd.cjs");
await bundle("ctrd", {
  ...commonJs,
  entryPoints: ["src/cli/program.ts"],
  outfile: ctrdBundle,
  plugins: [lazyBuiltins],
});

// V8 keeps a source with one character beyond ASCII as a two-byte string: twice the memory, and
// slower to read and scan. esbuild escapes such characters in strings, not in regular expressions.
if (bundled) {
  const bytes = readFileSync(ctrdBundle);
  const at = bytes.findIndex((byte) => byte > 0x7f);
  if (at >= 0) {
    const around = bytes.toString("utf8", Math.max(0, at - 60), at + 20);
    process.stderr.write(`build: ctrd.cjs is not ASCII (use \\u escapes): ${around}\n`);
    bundled = false;
  }
}

// ctrd's bin: answers --version itself, and runs ctrd.cjs with its code cache for everything else
// (program.js is only its fallback when run from the sources). CommonJS too: dist/cli/package.json
// says so, as the bin must keep its name; Node's ES module loader costs every command ~8 ms. It
// knows the bundle by its hash, which the code cache's header names (see src/cli/code-cache.ts).
if (bundled) {
  const bundleId = createHash("sha256").update(readFileSync(ctrdBundle)).digest("hex").slice(0, 32);
  writeFileSync(join(cliDir, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);
  await bundle("ctrd's entry", {
    ...commonJs,
    define: { ...commonJs.define, CTRD_BUNDLE_ID: JSON.stringify(bundleId) },
    entryPoints: ["src/cli/main.ts"],
    outfile: join(cliDir, "main.js"),
    external: ["koffi", "./program.js"],
  });
}

// V8's code cache of ctrd.cjs, taken after ctrd's warm-up has evaluated every module it may load
// (see src/cli/code-cache.ts): saves a command's start from parsing and compiling them again.
if (bundled) {
  chmodSync(join(cliDir, "main.js"), 0o755);
  const warm = spawnSync(process.execPath, [join(cliDir, "main.js")], {
    // Without NODE_OPTIONS: the cache of a plain `ctrd` (see codeCacheName in src/cli/main.ts).
    env: { ...process.env, NODE_OPTIONS: "", CTRD_WRITE_CODE_CACHE: "1" },
    stdio: "inherit",
  });
  if (warm.status !== 0) {
    bundled = false;
    process.stderr.write("build: saving ctrd's code cache failed\n");
  }
}

process.exit(tsc.status === 0 && bundled ? 0 : 1);
