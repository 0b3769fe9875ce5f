import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Finds an executable on PATH (plus the sbin dirs Debian puts runc in). */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/**
 * The tests need real binaries. A missing one is a broken install (scripts/setup.sh puts them
 * there), so it fails the test instead of skipping it.
 */
export function requireBinary(name: string): string {
  const found = which(name);
  if (!found) {
    throw new Error(
      `${name} is not installed; run scripts/setup.sh (it installs containerd, runc, crun, busybox-static)`,
    );
  }
  return found;
}
