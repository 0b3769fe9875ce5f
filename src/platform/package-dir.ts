import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let found: string | undefined;

/**
 * The package's own directory (package.json, native/), found upwards from this module: it is
 * src/platform/ under tsx, dist/platform/ in the library build, and a chunk in dist/cli/ in the
 * bundled ctrd (scripts/build.js), so no fixed `../..` fits all three. dist/cli/ holds a
 * package.json of its own, nameless, that only makes ctrd's bin CommonJS: the package's is the
 * first one with a name.
 */
export function packageDir(): string {
  found ??= findPackageDir(dirname(fileURLToPath(import.meta.url)));
  return found;
}

function findPackageDir(start: string): string {
  for (let dir = start; dirname(dir) !== dir; dir = dirname(dir)) {
    if (isPackageRoot(dir)) return dir;
  }
  return join(start, "../..");
}

function isPackageRoot(dir: string): boolean {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  } catch {
    return false;
  }
  return (
    typeof manifest === "object" && manifest !== null && typeof Reflect.get(manifest, "name") === "string"
  );
}

/** A file of the package: `packagePath("native/fifo/build/fifo.node")`. */
export function packagePath(relative: string): string {
  return join(packageDir(), relative);
}
