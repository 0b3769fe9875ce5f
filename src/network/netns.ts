/**
 * Network namespaces as files: a new namespace bind-mounted on FILE, which keeps it alive with no
 * process in it (as `ip netns add` does, without its global dir). runc joins it through the spec's
 * namespace path; unmounting the file ends it. native/netns does both as system calls off the event
 * loop; where it is not built, `unshare --net=FILE` and `umount FILE` do, a process each.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { constants as os } from "node:os";
import { promisify } from "node:util";
import { InternalError } from "../libcontainerd/types/errors.js";
import { packagePath } from "../platform/package-dir.js";

const run = promisify(execFile);

type Done = (errno: number, step: string) => void;
/** native/netns (see netns.c): each call reports through `done` with an errno (0: success) and the failed step. */
interface NetnsAddon {
  create(path: string, done: Done): void;
  remove(path: string, done: Done): void;
}

let addon: NetnsAddon | null | undefined;

/** Where scripts/setup.sh builds it; `CTRD_NETNS_ADDON` names another build, or "none" for the commands. */
function netnsAddon(): NetnsAddon | null {
  if (addon !== undefined) return addon;
  const path = process.env.CTRD_NETNS_ADDON ?? packagePath("native/netns/build/netns.node");
  try {
    addon = path === "none" ? null : (createRequire(import.meta.url)(path) as NetnsAddon);
  } catch {
    addon = null;
  }
  return addon;
}

const errnoNames = new Map(Object.entries(os.errno).map(([name, value]) => [value, name]));

function call(native: NetnsAddon, op: "create" | "remove", path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    native[op](path, (errno, step) => {
      if (errno === 0) resolve();
      else reject(new Error(`${step}: ${errnoNames.get(errno) ?? `errno ${errno}`}`));
    });
  });
}

export async function createNetns(path: string, signal?: AbortSignal): Promise<void> {
  if (path.includes("\0")) throw new InternalError(`invalid network namespace path ${JSON.stringify(path)}`);
  await writeFile(path, "", { flag: "wx", mode: 0o444 });
  try {
    const native = netnsAddon();
    if (native) await call(native, "create", path);
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
  const native = netnsAddon();
  if (native) {
    try {
      await call(native, "remove", path);
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
