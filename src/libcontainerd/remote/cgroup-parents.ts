/**
 * runc creates the parents of a container's cgroupsPath (`/<namespace>` for `/<namespace>/<id>`)
 * and removes only the container's own cgroup. Parents that did not exist before the library made
 * a container are recorded on it (label `io.ctrd.cgroup.parent`) and removed after the last
 * container under them: rmdir refuses a cgroup that still has children, so a parent in use stays.
 * Only meaningful where containerd runs on this host (a unix socket).
 */
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join, posix } from "node:path";
import { isMainThread } from "node:worker_threads";

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

/** The parents of `cgroupsPath` up to and including `top`; none if `top` is not one of them. */
function parentsUpTo(cgroupsPath: string | undefined, top: string): string[] {
  const parents = parentsOf(cgroupsPath);
  const upTo = parents.indexOf(top);
  return upTo < 0 ? [] : parents.slice(0, upTo + 1);
}

/** Removes the now empty parents of `cgroupsPath`, up to and including `top`, in every hierarchy. */
export function removeCgroupParents(cgroupsPath: string | undefined, top: string): void {
  removeCgroupDirs(parentsUpTo(cgroupsPath, top));
}

/**
 * Removes `dirs` where they are empty, children before their parents, in every hierarchy. One still
 * in use (EBUSY) or not there stays as it is, and so does whatever is above it (rmdir refuses).
 */
function removeCgroupDirs(dirs: Iterable<string>): void {
  const deepestFirst = [...dirs].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const root of hierarchies()) {
    for (const dir of deepestFirst) {
      try {
        rmdirSync(join(root, dir));
      } catch {
        // In use, or not in this hierarchy.
      }
    }
  }
}

/**
 * How long an empty parent is kept for the next container. Removing it with every last container
 * costs an rmdir in each hierarchy (ten with cgroup v1) and runc a mkdir in each for the next one:
 * for containers run one after another, ~0.3 ms of the client's CPU and as much of runc's per
 * container, work containerd's own clients never do (they leave the parent). Short, because a
 * process killed by a signal it does not handle has no exit to remove it at.
 */
export const CGROUP_PARENT_LINGER_MS = 250;

/**
 * The parents the library had runc create, with how many containers are under each: a parent is
 * removed only when the last of them goes, not while another one is on its way to runc (which
 * would then fail to make its cgroup: "mkdir …: no such file or directory"). An empty parent is
 * kept CGROUP_PARENT_LINGER_MS for the next container, and removed then, when a client closes
 * (`removeEmpty`), or when the process exits, whichever comes first; in a worker thread, which can
 * be terminated without an exit of its own, at once. A parent stays known (at 0) after it was
 * removed: the next container under it has runc make it again, without looking in every hierarchy
 * first. The process's clients share one (`cgroupParents`): cgroupfs is the host's, and a client
 * that found a parent another one kept would otherwise take it for someone else's and never
 * remove it.
 */
export class CreatedCgroupParents {
  private readonly users = new Map<string, number>();
  /**
   * Under each parent, the dirs runc made for the containers: the parent and the ones
   * between it and the containers' own cgroups (`/p/a` and `/p/b` for `/p/a/x` and `/p/b/y`).
   */
  private readonly dirs = new Map<string, Set<string>>();
  /** Empty parents to remove, each with the timer that removes it. */
  private readonly empty = new Map<string, NodeJS.Timeout>();

  /** The parent to record on a new container at `cgroupsPath` (see `missingCgroupParent`), counted. */
  claim(cgroupsPath: string | undefined): string | undefined {
    const parent = missingCgroupParent(cgroupsPath, this.users);
    if (parent) {
      this.users.set(parent, (this.users.get(parent) ?? 0) + 1);
      const dirs = this.dirs.get(parent) ?? new Set<string>();
      for (const dir of parentsUpTo(cgroupsPath, parent)) dirs.add(dir);
      this.dirs.set(parent, dirs);
      this.keep(parent);
    }
    return parent;
  }

  /**
   * A container recorded with `parent` is gone, or was never created: the parent's dirs go after
   * the last container under it (at once, for one another process made). A parent kept for a
   * container whose create then failed exists, so it is counted out the same way.
   */
  release(cgroupsPath: string | undefined, parent: string): void {
    const left = (this.users.get(parent) ?? 1) - 1;
    if (left > 0) {
      this.users.set(parent, left);
      return;
    }
    if (!this.users.has(parent)) {
      removeCgroupParents(cgroupsPath, parent);
      return;
    }
    this.users.set(parent, 0);
    this.keep(parent);
    if (!isMainThread) {
      this.removeDirs(parent);
      return;
    }
    const timer = setTimeout(() => this.remove(parent), CGROUP_PARENT_LINGER_MS);
    // The process need not stay for it: its exit removes what is left (removeWhenExiting).
    timer.unref();
    this.empty.set(parent, timer);
    removeWhenExiting(this);
  }

  /** Removes every empty parent now (a client closes). */
  removeEmpty(): void {
    for (const parent of [...this.empty.keys()]) this.remove(parent);
  }

  private remove(parent: string): void {
    if (!this.empty.has(parent)) return;
    this.keep(parent);
    this.removeDirs(parent);
  }

  private removeDirs(parent: string): void {
    removeCgroupDirs(this.dirs.get(parent) ?? [parent]);
    this.dirs.delete(parent);
  }

  /** `parent` is no longer to be removed (in use again, or removed). */
  private keep(parent: string): void {
    const timer = this.empty.get(parent);
    if (!timer) return;
    clearTimeout(timer);
    this.empty.delete(parent);
    if (this.empty.size === 0) noLongerAtExit(this);
  }
}

/**
 * The registries with empty parents still to remove, and one exit handler for all of them, there
 * only while there are some (loading this module adds nothing to the process).
 */
const removeAtExit = new Set<CreatedCgroupParents>();

function removeAllAtExit(): void {
  for (const parents of removeAtExit) parents.removeEmpty();
}

function removeWhenExiting(parents: CreatedCgroupParents): void {
  if (removeAtExit.size === 0) process.on("exit", removeAllAtExit);
  removeAtExit.add(parents);
}

function noLongerAtExit(parents: CreatedCgroupParents): void {
  if (removeAtExit.delete(parents) && removeAtExit.size === 0) process.off("exit", removeAllAtExit);
}

/** The parents this process's clients had runc create (see CreatedCgroupParents). */
export const cgroupParents = new CreatedCgroupParents();
