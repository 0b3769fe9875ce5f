/**
 * Network namespaces as files: `unshare --net=FILE` creates a namespace and bind-mounts it on FILE,
 * which keeps it alive with no process in it (as `ip netns add` does, without its global dir).
 * runc joins it through the spec's namespace path; unmounting the file ends it.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { InternalError } from "../libcontainerd/types/errors.js";

const run = promisify(execFile);

export async function createNetns(path: string, signal?: AbortSignal): Promise<void> {
  await writeFile(path, "", { flag: "wx", mode: 0o444 });
  try {
    await run("unshare", [`--net=${path}`, "true"], signal ? { signal } : {});
  } catch (err) {
    await rm(path, { force: true });
    throw new InternalError(`creating the network namespace ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

const NSFS_MAGIC = 0x6e736673;

/** A netns file that holds a namespace (not an empty file left by a crash before the mount). */
export function isNetns(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

export function isMounted(path: string): boolean {
  const escaped = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === escaped);
}

/** Idempotent: unmounts the namespace (if mounted) and removes the file (if there). */
export async function removeNetns(path: string): Promise<void> {
  if (!existsSync(path)) return;
  // umount first and read the mount table only when it fails: with many containers it is long.
  for (let attempt = 0; ; attempt++) {
    try {
      await run("umount", [path]);
    } catch (err) {
      if (!isMounted(path)) break;
      if (attempt >= 3) {
        throw new InternalError(`unmounting the network namespace ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
  await rm(path, { force: true });
}
