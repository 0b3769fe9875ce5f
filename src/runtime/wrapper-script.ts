import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ensureOwnSubdirAsync, fsError } from "../fs/private-dir.js";

/**
 * POSIX sh single quoting: inside '…' nothing is special, so the only character to handle is the
 * quote itself ('\''). Newlines, `$()`, backticks, globs and empty strings all survive verbatim.
 */
export function quoteShellArgument(argument: string): string {
  return `'${argument.replaceAll("'", `'\\''`)}'`;
}

/**
 * A runtime with `runtimeArgs` cannot be handed to the runc shim as is (it only takes a binary
 * name), so it gets a script that prepends the arguments. `exec` keeps the pid the shim started,
 * so signals and exit statuses reach the real runtime unchanged.
 */
export function wrapperScriptContent(runtimePath: string, runtimeArgs: readonly string[]): string {
  const words = [runtimePath, ...runtimeArgs].map(quoteShellArgument).join(" ");
  return `#!/bin/sh\nexec ${words} "$@"\n`;
}

/**
 * `<label>.<sha256 of the content>`: a changed configuration gets a new file and the old one stays
 * for the containers still running with it, so a reload never breaks a running container. The
 * label is the runtime name reduced to characters that are safe in any file name.
 */
export function wrapperScriptFileName(runtimeName: string, content: string): string {
  const label = runtimeName.replace(/[^a-z0-9._-]/g, "_").slice(0, 64);
  const digest = createHash("sha256").update(content).digest("hex");
  return `${label}.${digest}`;
}

async function hasContent(path: string, content: string): Promise<boolean> {
  try {
    return (await readFile(path, "utf8")) === content;
  } catch {
    return false;
  }
}

/**
 * Writes the script unless an identical one is already there. Written to a temp file in the same
 * directory and renamed over, so a shim never executes a half-written script.
 */
export async function ensureWrapperScript(path: string, directory: string, content: string): Promise<void> {
  // A shim runs this script as root: its dir must be a real dir of ours, not a symlink to another's.
  try {
    await mkdir(dirname(directory), { recursive: true, mode: 0o711 });
  } catch (err) {
    throw fsError("cannot create", dirname(directory), err);
  }
  await ensureOwnSubdirAsync(directory, 0o700);
  if (await hasContent(path, content)) return;
  const temp = join(directory, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    const handle = await open(temp, "wx", 0o700);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The umask may have narrowed the mode given to open().
    await chmod(temp, 0o700);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw fsError("cannot write the runtime wrapper script", path, err);
  }
}
