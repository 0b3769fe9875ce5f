/**
 * Network namespaces as files: a new namespace bind-mounted on FILE, which keeps it alive with no
 * process in it (as `ip netns add` does, without its global dir). runc joins it through the spec's
 * namespace path; unmounting the file ends it. native/network does both as system calls off the
 * event loop; where it is not built, `unshare --net=FILE` and `umount FILE` do, a process each.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { InternalError } from "../libcontainerd/types/errors.js";
import { errnoName, type NetworkAddon, networkAddon } from "./native.js";

const run = promisify(execFile);

function call(native: NetworkAddon, op: "createNetns" | "removeNetns", path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    native[op](path, (errno, step) => {
      if (errno === 0) resolve();
      else reject(new Error(`${step}: ${errnoName(errno)}`));
    });
  });
}

export async function createNetns(path: string, signal?: AbortSignal): Promise<void> {
  if (path.includes("\0")) throw new InternalError(`invalid network namespace path ${JSON.stringify(path)}`);
  await writeFile(path, "", { flag: "wx", mode: 0o444 });
  try {
    const native = networkAddon();
    if (native) await call(native, "createNetns", path);
    else await run("unshare", [`--net=${path}`, "true"], signal ? { signal } : {});
  } catch (err) {
    await removeNetns(path).catch(() => {});
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

/** Idempotent: unmounts the namespace (every mount stacked on the file) and removes the file. */
export async function removeNetns(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const native = networkAddon();
  if (native) {
    try {
      await call(native, "removeNetns", path);
      return;
    } catch (err) {
      throw new InternalError(`removing the network namespace ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  // umount until it fails, and read the mount table only then: with many containers it is long.
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
