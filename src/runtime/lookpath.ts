import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";

/** Finds a runtime binary: absolute paths are checked as they are, bare names searched on PATH. */
export type LookPath = (command: string) => Promise<string | undefined>;

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Like Go's exec.LookPath, which dockerd's preflight check uses. The shim inherits containerd's
 * PATH, not ours; this process's PATH is the best guess available to a client.
 */
export function createLookPath(searchPath: string = process.env.PATH ?? ""): LookPath {
  return async (command) => {
    if (command.includes("/")) {
      return isAbsolute(command) && (await isExecutableFile(command)) ? command : undefined;
    }
    for (const dir of searchPath.split(delimiter)) {
      if (!dir) continue;
      const candidate = join(dir, command);
      if (await isExecutableFile(candidate)) return candidate;
    }
    return undefined;
  };
}
