#!/usr/bin/env node
// ctrd's entry point. `ctrd --version` is answered before the rest of ctrd is loaded; every other
// command line goes to program.ts, which loads only the commands it names. Built (scripts/build.js),
// program.ts and all it loads are one CommonJS bundle beside this file, ctrd.cjs, run with the V8
// code cache the build saved for it (ctrd.code-cache, see code-cache.ts); from the sources (tsx),
// program.ts itself.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type * as Program from "./program.js";
import { packageVersion } from "./version.js";

const argv = process.argv.slice(2);
const bundle = join(import.meta.dirname, "ctrd.cjs");
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  process.stdout.write(`${packageVersion()}\n`);
} else if (existsSync(bundle)) {
  const { runWithCodeCache, writeCodeCache } = await import("./code-cache.js");
  const ctrd = runWithCodeCache(bundle, join(import.meta.dirname, "ctrd.code-cache")) as typeof Program;
  // The build's warm-up: every module evaluated, then their compiled code saved (see build.js).
  const cacheOut = process.env.CTRD_WRITE_CODE_CACHE;
  if (cacheOut) {
    await ctrd.warmUp();
    writeCodeCache(cacheOut);
  } else {
    ctrd.runAndExit(argv);
  }
} else {
  const { runAndExit } = await import("./program.js");
  runAndExit(argv);
}
