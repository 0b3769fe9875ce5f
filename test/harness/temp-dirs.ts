import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processesUnder } from "./containerd.js";

/** A temp dir whose every process (containerd, shims, runc, containers) is killed on cleanup. */
export interface ScratchDir {
  readonly dir: string;
  /** SIGKILLs every process whose command line names the dir, unmounts what is mounted under it, removes it. */
  cleanup(): Promise<void>;
}

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export async function killProcessesUnder(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const left = processesUnder(dir);
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
  return {
    dir,
    async cleanup() {
      await killProcessesUnder(dir);
      for (const mountPoint of mountsUnder(dir)) spawnSync("umount", ["-l", mountPoint], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
