import { createRequire } from "node:module";
import { constants as os } from "node:os";
import { packagePath } from "./package-dir.js";

/**
 * A Node-API addon of ours, `file` under the package (native/…/build/*.node, built by
 * scripts/setup.sh), loaded on the first call of the function returned, then kept. Optional:
 * null where it is not built or does not load here (another architecture or libc), and the
 * caller falls back to processes. The environment variable `envVar` names another build, or
 * "none" for none.
 */
export function nativeAddon<Addon>(file: string, envVar: string): () => Addon | null {
  let addon: Addon | null | undefined;
  return () => {
    if (addon !== undefined) return addon;
    const path = process.env[envVar] ?? packagePath(file);
    try {
      addon = path === "none" ? null : (createRequire(import.meta.url)(path) as Addon);
    } catch {
      addon = null;
    }
    return addon;
  };
}

const errnoNames = new Map(Object.entries(os.errno).map(([name, value]) => [value, name]));

/** An errno an addon returned, by name: `EEXIST`, or `errno 1234` for one Node does not name. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}
