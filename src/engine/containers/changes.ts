import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { posix } from "node:path";
import type { Mount } from "../../gen/github.com/containerd/containerd/api/types/mount_pb.js";

/** api/types/container.FilesystemChange's kinds. */
export const CHANGE_MODIFIED = 0;
export const CHANGE_ADDED = 1;
export const CHANGE_DELETED = 2;

export interface FilesystemChange {
  Path: string;
  Kind: number;
}

/**
 * What the runtime and the engine put into every container (dockerd keeps them in its init layer, so
 * `docker diff` never shows them): mount points and the name files.
 */
const INIT_PATHS = new Set([
  "/dev",
  "/dev/pts",
  "/dev/shm",
  "/dev/mqueue",
  "/dev/console",
  "/proc",
  "/sys",
  "/run",
  "/etc/hosts",
  "/etc/hostname",
  "/etc/resolv.conf",
  "/etc/mtab",
  "/.dockerenv",
  "/sbin/docker-init",
]);

function option(mount: Mount, name: string): string | undefined {
  const prefix = `${name}=`;
  return mount.options.find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}

async function existsIn(dirs: string[], path: string): Promise<boolean> {
  for (const dir of dirs) {
    try {
      await lstat(posix.join(dir, path));
      return true;
    } catch {}
  }
  return false;
}

/** The bytes of the files in the snapshot's writable dir (SizeRw, `docker ps -s`): what the container wrote. */
export async function writableSize(mounts: Mount[]): Promise<number> {
  const mount = mounts[0];
  const upper = mount?.type === "overlay" ? option(mount, "upperdir") : mount?.source;
  if (!upper) return 0;
  return directorySize(upper).catch(() => 0);
}

/**
 * The bytes of the regular files under `dir` (a hard-linked one once), as moby's directory.Size counts them;
 * what goes away meanwhile is not counted. A missing `dir` is an error.
 */
export async function directorySize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (path: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (err) {
      if (path === dir) throw err;
      return;
    }
    for (const entry of entries) {
      const child = posix.join(path, entry.name);
      if (entry.isDirectory()) {
        await walk(child);
        continue;
      }
      if (!entry.isFile()) continue;
      const stat = await lstat(child).catch(() => undefined);
      if (!stat) continue;
      const inode = `${stat.dev}:${stat.ino}`;
      if (stat.nlink > 1 && seen.has(inode)) continue;
      if (stat.nlink > 1) seen.add(inode);
      total += stat.size;
    }
  };
  await walk(dir);
  return total;
}

/**
 * GET /containers/{id}/changes: the container's writable layer against its image, from the snapshot's
 * overlay dirs (containerd's overlayfs snapshotter): what is in the upper dir was added or changed (changed
 * when a lower dir has it), a whiteout (a 0/0 character device) is a deletion. A directory is listed as
 * changed when something below it is. A bind snapshot (an image without layers) is all added.
 */
export async function rootfsChanges(mounts: Mount[]): Promise<FilesystemChange[]> {
  const mount = mounts[0];
  if (!mount) return [];
  const upper = mount.type === "overlay" ? option(mount, "upperdir") : mount.source;
  if (!upper) return [];
  const lowers = mount.type === "overlay" ? (option(mount, "lowerdir") ?? "").split(":").filter(Boolean) : [];
  const changes: FilesystemChange[] = [];
  const walk = async (path: string, inLower: boolean): Promise<boolean> => {
    let entries: Dirent[];
    try {
      entries = await readdir(posix.join(upper, path), { withFileTypes: true });
    } catch {
      return false;
    }
    let any = false;
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const child = posix.join(path, entry.name);
      const childInLower = inLower && (await existsIn(lowers, child));
      if (entry.isCharacterDevice()) {
        const stat = await lstat(posix.join(upper, child));
        if (stat.rdev === 0) {
          changes.push({ Path: child, Kind: CHANGE_DELETED });
          any = true;
          continue;
        }
      }
      if (INIT_PATHS.has(child) && !childInLower) continue;
      if (entry.isDirectory()) {
        const index = changes.length;
        const below = await walk(child, childInLower);
        if (!childInLower || below) {
          changes.splice(index, 0, { Path: child, Kind: childInLower ? CHANGE_MODIFIED : CHANGE_ADDED });
          any = true;
        }
        continue;
      }
      if (INIT_PATHS.has(child)) continue;
      changes.push({ Path: child, Kind: childInLower ? CHANGE_MODIFIED : CHANGE_ADDED });
      any = true;
    }
    return any;
  };
  await walk("/", true);
  return changes;
}
