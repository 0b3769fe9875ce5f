import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * A temp dir, and a cgroup parent named after it, whose every process (containerd, shims, runc,
 * containers) is killed on cleanup.
 */
export interface ScratchDir {
  readonly dir: string;
  /**
   * Give containers `cgroupsPath: \`${cgroupParent}/${id}\``: a container's processes do not name the
   * temp dir on their command line, and outlive a SIGKILLed shim, so they are found by cgroup.
   */
  readonly cgroupParent: string;
  /** Kills what runs under the dir or the cgroup parent, unmounts, removes the dir and the cgroups. */
  cleanup(): Promise<void>;
}

/** Every process whose command line names `dir` (containerd, shims and runc started for it). */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(dir)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Processes in `cgroupParent` or below, in any hierarchy (v1 or v2). */
export function processesInCgroup(cgroupParent: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const lines = readFileSync(`/proc/${entry}/cgroup`, "utf8").split("\n");
      if (lines.some((line) => line.endsWith(`:${cgroupParent}`) || line.includes(`:${cgroupParent}/`))) {
        pids.push(Number(entry));
      }
    } catch {}
  }
  return pids;
}

function removeCgroups(cgroupParent: string): void {
  const roots = existsSync(join(CGROUP_ROOT, "cgroup.controllers"))
    ? [CGROUP_ROOT]
    : readdirSync(CGROUP_ROOT).map((controller) => join(CGROUP_ROOT, controller));
  const removeTree = (path: string): void => {
    try {
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        if (entry.isDirectory()) removeTree(join(path, entry.name));
      }
      rmdirSync(path);
    } catch {}
  };
  for (const root of roots) {
    const path = join(root, cgroupParent);
    if (existsSync(path)) removeTree(path);
  }
}

export async function killProcessesUnder(dir: string, cgroupParent?: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const left = [...processesUnder(dir), ...(cgroupParent ? processesInCgroup(cgroupParent) : [])];
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        // A SIGSTOP'd process still dies of SIGKILL; SIGCONT is for anything that only got TERM.
        process.kill(pid, "SIGKILL");
        process.kill(pid, "SIGCONT");
      } catch {}
    }
    await sleep(100);
  }
}

export function scratchDir(prefix: string): ScratchDir {
  // Short: unix socket paths (containerd's, the shims') must stay under 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cgroupParent = `/${basename(dir)}`;
  return {
    dir,
    cgroupParent,
    async cleanup() {
      await killProcessesUnder(dir, cgroupParent);
      for (const mountPoint of mountsUnder(dir)) spawnSync("umount", ["-l", mountPoint], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      removeCgroups(cgroupParent);
    },
  };
}
