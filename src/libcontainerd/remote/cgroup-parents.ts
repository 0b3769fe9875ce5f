/**
 * runc creates the parents of a container's cgroupsPath (`/<namespace>` for `/<namespace>/<id>`)
 * and removes only the container's own cgroup. Parents that did not exist before the library made
 * a container are recorded on it (label `io.ctrd.cgroup.parent`) and removed with the last
 * container under them: rmdir refuses a cgroup that still has children, so a parent in use stays.
 * Only meaningful where containerd runs on this host (a unix socket).
 */
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join, posix } from "node:path";

export const CGROUP_PARENT_LABEL = "io.ctrd.cgroup.parent";
const CGROUP_ROOT = "/sys/fs/cgroup";

let mounted: string[] | undefined;

/**
 * The hierarchies to look in: the unified one, or every cgroup v1 controller mount. Looked up once:
 * they are mounted at boot, and every container create and delete asks.
 */
function hierarchies(): string[] {
  if (mounted) return mounted;
  if (existsSync(join(CGROUP_ROOT, "cgroup.controllers"))) mounted = [CGROUP_ROOT];
  else {
    try {
      mounted = readdirSync(CGROUP_ROOT, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => join(CGROUP_ROOT, entry.name));
    } catch {
      return [];
    }
  }
  return mounted;
}

/** A cgroupfs path whose parents runc would create (not systemd's `slice:prefix:name`). */
function parentsOf(cgroupsPath: string | undefined): string[] {
  if (!cgroupsPath?.startsWith("/") || cgroupsPath.includes(":")) return [];
  const parents: string[] = [];
  for (let dir = posix.dirname(posix.normalize(cgroupsPath)); dir !== "/"; dir = posix.dirname(dir))
    parents.push(dir);
  return parents;
}

/**
 * The top-most parent of `cgroupsPath` that runc will create because it exists in no hierarchy
 * yet, or that `created` says was created that way for an earlier container (concurrent containers
 * under a new parent: only the first sees it missing, and any of them may be the last to go).
 */
export function missingCgroupParent(
  cgroupsPath: string | undefined,
  created: { has(parent: string): boolean },
): string | undefined {
  const parents = parentsOf(cgroupsPath);
  const known = parents.findLast((parent) => created.has(parent));
  if (known) return known;
  const roots = hierarchies();
  if (roots.length === 0) return undefined;
  let top: string | undefined;
  for (const parent of parents) {
    if (roots.every((root) => !existsSync(join(root, parent)))) top = parent;
    else break;
  }
  return top;
}

/** Removes the now empty parents of `cgroupsPath`, up to and including `top`, in every hierarchy. */
export function removeCgroupParents(cgroupsPath: string | undefined, top: string): void {
  const parents = parentsOf(cgroupsPath);
  const upTo = parents.indexOf(top);
  if (upTo < 0) return;
  for (const root of hierarchies()) {
    for (const parent of parents.slice(0, upTo + 1)) {
      try {
        rmdirSync(join(root, parent));
      } catch {
        // Still in use (EBUSY), or not there in this hierarchy: leave it, and its ancestors.
        if (existsSync(join(root, parent))) break;
      }
    }
  }
}

/**
 * The parents this client had runc create, with how many of its containers are under each: a
 * parent is removed only when the last of them goes, not while another one is on its way to runc
 * (which would then fail to make its cgroup: "mkdir …: no such file or directory"). A parent stays
 * known (at 0) after it was removed: the next container under it has runc make it again, without
 * looking in every hierarchy first.
 */
export class CreatedCgroupParents {
  private readonly users = new Map<string, number>();

  /** The parent to record on a new container at `cgroupsPath` (see `missingCgroupParent`), counted. */
  claim(cgroupsPath: string | undefined): string | undefined {
    const parent = missingCgroupParent(cgroupsPath, this.users);
    if (parent) this.users.set(parent, (this.users.get(parent) ?? 0) + 1);
    return parent;
  }

  /**
   * A container recorded with `parent` is gone (`remove`), or was never created: the parent's dirs
   * go with the last container of this client under it (or at once, for one another client made).
   */
  release(cgroupsPath: string | undefined, parent: string, remove: boolean): void {
    const left = (this.users.get(parent) ?? 1) - 1;
    if (left > 0) {
      this.users.set(parent, left);
      return;
    }
    if (this.users.has(parent)) this.users.set(parent, 0);
    if (remove) removeCgroupParents(cgroupsPath, parent);
  }
}
