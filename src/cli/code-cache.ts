import { readFileSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/**
 * Runs a CommonJS bundle (the built ctrd, dist/cli/ctrd.cjs) with V8's code cache for it: the
 * compiled code `npm run build` saved, so that a command's start does not parse and compile its
 * code again (Node 20 has no compile cache of its own; 22 has module.enableCompileCache). A cache
 * from another Node (V8 version, flags) is rejected by V8 and the bundle compiles as usual.
 * Returns the bundle's exports.
 */
export function runWithCodeCache(file: string, cacheFile: string): unknown {
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new Script(Module.wrap(readFileSync(file, "utf8")), {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  lastScript = script;
  const module = { exports: {} as unknown };
  const init = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  init.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}

let lastScript: Script | undefined;

/**
 * Writes the code cache of the bundle runWithCodeCache ran, with everything compiled so far: the
 * build runs ctrd's warm-up (every module evaluated) and then this.
 */
export function writeCodeCache(cacheFile: string): void {
  if (!lastScript) throw new Error("no bundle has run");
  writeFileSync(cacheFile, lastScript.createCachedData());
}
