import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/**
 * The built ctrd (dist/cli/ctrd.cjs, one CommonJS bundle) run with V8's code cache for it, so that a
 * command's start does not parse and compile its code again (Node 20 has no compile cache of its
 * own; 22 has module.enableCompileCache).
 *
 * The build saves a cache after ctrd's warm-up, which evaluates every module but runs no command:
 * the functions a command then calls (the lifecycle, the protobuf codec, the HTTP/2 session, the
 * command line's parsing) are compiled on every start, ~450 functions for `ctrd run`. So the cache
 * is saved again when a command that it does not cover yet ends well: then it holds the functions
 * that command ran too (as Node 22's compile cache does on exit). After one `run` and one `ps`
 * there is nothing more to save, and nothing is written again. A cache V8 rejects (another Node)
 * is replaced the same way, so the cache follows the Node that runs ctrd; runs with Node options of
 * their own (other V8 flags) use a file of their own (main.ts, codeCacheName).
 *
 * The file sits beside the bundle, as trusted as the bundle itself (not in a shared temp dir, where
 * another user could plant code for root to run); where that dir is read-only the cache stays as
 * it is. It is written to a temporary name and renamed into place, so that concurrent commands
 * only ever read a whole one. V8 checks its own version, its flags and the source's length, not the
 * source: the file starts with a header naming the bundle it was made for (the build's hash of
 * ctrd.cjs), and a cache of another bundle (a rebuild while an older ctrd was running) is not used.
 */
export class CodeCachedBundle {
  private constructor(
    readonly exports: unknown,
    private readonly script: Script,
    private readonly cacheFile: string,
    private readonly bundleId: string,
    /** The commands the cache in use covers; undefined if there was none V8 accepted. */
    private readonly covered: readonly string[] | undefined,
  ) {}

  /** Compiles the bundle with the cache (if there is one for it), evaluates it, and returns its exports. */
  static run(bundle: string, cacheFile: string, bundleId: string): CodeCachedBundle {
    const cache = readCache(cacheFile, bundleId);
    const script = new Script(Module.wrap(readFileSync(bundle, "utf8")), {
      filename: bundle,
      ...(cache ? { cachedData: cache.data } : {}),
    });
    const module = { exports: {} as unknown };
    const init = script.runInThisContext() as (
      exports: unknown,
      require: NodeJS.Require,
      module: { exports: unknown },
      filename: string,
      dirname: string,
    ) => void;
    init.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
    const covered = cache && !script.cachedDataRejected ? cache.commands : undefined;
    return new CodeCachedBundle(module.exports, script, cacheFile, bundleId, covered);
  }

  /**
   * Saves the cache when the process exits with status 0 after running `command`, unless the cache
   * it started with already covered that command.
   */
  saveOnExit(command: string): void {
    if (this.covered?.includes(command)) return;
    process.once("exit", (code) => {
      if (code === 0) this.save([...(this.covered ?? []), command]);
    });
  }

  /**
   * Writes the cache with everything compiled so far, as covering `commands`. A cache that cannot
   * be written is no failure: the next start compiles what it lacks.
   */
  save(commands: readonly string[]): boolean {
    const temporary = `${this.cacheFile}.${process.pid}.tmp`;
    try {
      const header = `${HEADER_MAGIC}\n${this.bundleId}\n${commands.join(",")}\n`;
      writeFileSync(temporary, Buffer.concat([Buffer.from(header), this.script.createCachedData()]));
      renameSync(temporary, this.cacheFile);
      return true;
    } catch {
      rmSync(temporary, { force: true });
      return false;
    }
  }
}

const HEADER_MAGIC = "ctrd-code-cache 1";

/** The cache file's V8 data and the commands it covers, if it is one for this bundle. */
function readCache(file: string, bundleId: string): { data: Buffer; commands: string[] } | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  // Three lines: the magic, the bundle's id, the commands; then V8's data.
  const ends: number[] = [];
  for (let at = 0; ends.length < 3; at++) {
    at = bytes.indexOf(0x0a, at);
    if (at < 0 || at > 4096) return undefined;
    ends.push(at);
  }
  const [magicEnd, idEnd, commandsEnd] = ends as [number, number, number];
  if (bytes.toString("latin1", 0, magicEnd) !== HEADER_MAGIC) return undefined;
  if (bytes.toString("latin1", magicEnd + 1, idEnd) !== bundleId) return undefined;
  const commands = bytes.toString("latin1", idEnd + 1, commandsEnd);
  return { data: bytes.subarray(commandsEnd + 1), commands: commands === "" ? [] : commands.split(",") };
}
