#!/usr/bin/env node
// `npm run build`: the library with tsc (dist/, with .d.ts), then ctrd bundled with esbuild
// (dist/cli/). Node 20 spends most of a short command's start resolving, reading and compiling
// modules one file at a time: ctrd unbundled loaded 310 files for `ctrd ps`. The bundle is a few
// files; each command's code stays in chunks of its own, loaded when the command line names it
// (src/cli/program.ts). koffi is left out (a native addon, loaded only by the Windows backend).
// Exits non-zero when either step fails; tsc's type errors do not stop the bundle (esbuild does
// not type-check), as tsc itself still emits.
import { spawnSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, rmSync } from "node:fs";
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

const tsc = spawnSync(join(repo, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], {
  cwd: repo,
  stdio: "inherit",
});

// Chunk names carry a content hash: old chunks must not pile up.
rmSync(cliDir, { recursive: true, force: true });
let bundled = true;
try {
  await build({
    absWorkingDir: repo,
    entryPoints: ["src/cli/main.ts"],
    outdir: cliDir,
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
  });
  chmodSync(join(cliDir, "main.js"), 0o755);
} catch (err) {
  bundled = false;
  process.stderr.write(`build: bundling ctrd failed: ${err instanceof Error ? err.message : String(err)}\n`);
}

process.exit(tsc.status === 0 && bundled ? 0 : 1);
