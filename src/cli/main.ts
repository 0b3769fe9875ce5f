#!/usr/bin/env node
// ctrd's entry point. `ctrd --version` is answered before the rest of ctrd is loaded; every other
// command line goes to program.ts, which loads only the commands it names. Built (scripts/build.js),
// this file is CommonJS (Node's ES module loader costs a command's start ~8 ms more), and program.ts
// with all it loads is one CommonJS bundle beside it, ctrd.cjs, run with V8's code cache for it
// (ctrd.code-cache, see code-cache.ts); from the sources (tsx), program.ts itself.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CodeCachedBundle } from "./code-cache.js";
import type * as Program from "./program.js";
import { packageVersion } from "./version.js";

/** The build's hash of ctrd.cjs (scripts/build.js defines it); undeclared when run from the sources. */
declare const CTRD_BUNDLE_ID: string;

const argv = process.argv.slice(2);
const bundle = join(import.meta.dirname, "ctrd.cjs");
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  process.stdout.write(`${packageVersion()}\n`);
} else if (typeof CTRD_BUNDLE_ID === "string" && existsSync(bundle)) {
  runBundle(CTRD_BUNDLE_ID);
} else {
  import("./program.js").then(
    ({ runAndExit }) => runAndExit(argv),
    (err: unknown) => {
      process.stderr.write(`ctrd: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(125);
    },
  );
}

function runBundle(bundleId: string): void {
  const cached = CodeCachedBundle.run(bundle, join(import.meta.dirname, codeCacheName()), bundleId);
  const ctrd = cached.exports as typeof Program;
  if (process.env.CTRD_WRITE_CODE_CACHE) {
    // The build's warm-up: every module evaluated, then their compiled code saved (see build.js).
    ctrd.warmUp().then(
      () => process.exit(cached.save([]) ? 0 : 1),
      (err: unknown) => {
        process.stderr.write(`ctrd: warm-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
    return;
  }
  const command = ctrd.commandNamed(argv);
  if (command !== undefined) cached.saveOnExit(command);
  ctrd.runAndExit(argv);
}

/**
 * V8 rejects a code cache made under other flags (NODE_OPTIONS="--max-old-space-size=…", node
 * --stack-size …): each set of Node options has a cache of its own, or commands run alternately
 * with and without them would each find the other's and write their own again.
 */
function codeCacheName(): string {
  const options = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].join(" ").trim();
  if (options === "") return "ctrd.code-cache";
  // FNV-1a: a name, not a secret; node:crypto would cost the start more than the hash is worth.
  let hash = 0x811c9dc5;
  for (let i = 0; i < options.length; i++) hash = Math.imul(hash ^ options.charCodeAt(i), 0x01000193) >>> 0;
  return `ctrd-${hash.toString(16).padStart(8, "0")}.code-cache`;
}
