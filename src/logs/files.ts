import { constants } from "node:fs";
import { mkdir, open, readdir, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { FailedPreconditionError } from "../libcontainerd/types/errors.js";

/** The logger's state file beside the log: "<pid> <flushes>" (see native/ctrd-logger/logger.c). */
export const stateFileOf = (path: string) => `${path}.logger`;

export interface LogFile {
  path: string;
  /** 0 for the current file, N for `<path>.N` (older as N grows). */
  generation: number;
  ino: number;
}

/** The log's files, oldest first: `<path>.N` … `<path>.1`, `<path>`. */
export async function listLogFiles(path: string): Promise<LogFile[]> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const files: LogFile[] = [];
  for (const name of names) {
    const suffix = name.startsWith(`${base}.`) ? name.slice(base.length + 1) : undefined;
    const generation = name === base ? 0 : suffix && /^\d+$/.test(suffix) ? Number(suffix) : undefined;
    if (generation === undefined) continue;
    const file = join(dirname(path), name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) files.push({ path: file, generation, ino: info.ino });
  }
  return files.sort((a, b) => b.generation - a.generation);
}

/**
 * Creates the log's directory and file before the shim starts the logger, so a path that cannot
 * be written fails here, typed, and not silently in the logger.
 */
export async function prepareLogFile(path: string, what: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o750 });
    const handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    await handle.close();
  } catch (err) {
    throw new FailedPreconditionError(`${what}: cannot create the log ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Removes the log, its rotated files and the logger's state file; then its directory, if empty. */
export async function removeLogFiles(path: string): Promise<void> {
  const files = await listLogFiles(path);
  await Promise.all(
    [...files.map((file) => file.path), stateFileOf(path), `${stateFileOf(path)}.tmp`].map((file) =>
      rm(file, { force: true }),
    ),
  );
  await rmdir(dirname(path)).catch(() => {}); // shared with other files, or gone: left as it is
}
