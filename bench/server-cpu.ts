// The CPU a client makes the other side of the socket spend: containerd's own (the sum of its
// threads' /proc/<pid>/task/*/schedstat, in ns, unlike stat's 10 ms ticks), and that of the shims and
// runc it starts (a cgroup of ours, cpuacct on v1 or the unified one on v2, that holds containerd
// and so whatever it spawns, minus containerd's own). runc moves a container's processes into the
// container's cgroup, so the container's own work is not counted.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ServerCpuMs {
  containerdMs: number;
  shimsMs: number;
}

function threadsCpuNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

export class ServerCpu {
  private readonly path: string;
  private readonly v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");

  /** Moves containerd (`pid`) into a cgroup of its own; its shims, started later, follow it. */
  constructor(private readonly pid: number) {
    const name = `lcd-bench-cpu-${process.pid}`;
    this.path = this.v2 ? join("/sys/fs/cgroup", name) : join("/sys/fs/cgroup/cpuacct", name);
    mkdirSync(this.path);
    writeFileSync(join(this.path, "cgroup.procs"), String(pid));
  }

  private allNs(): number {
    if (!this.v2) return Number(readFileSync(join(this.path, "cpuacct.usage"), "utf8"));
    const usec = /^usage_usec (\d+)/m.exec(readFileSync(join(this.path, "cpu.stat"), "utf8"))?.[1];
    return Number(usec) * 1000;
  }

  /** Runs `fn` and says what containerd and its children spent meanwhile, divided by `per`. */
  async measure<T>(fn: () => Promise<T>, per = 1): Promise<{ value: T } & ServerCpuMs> {
    const containerd0 = threadsCpuNs(this.pid);
    const all0 = this.allNs();
    const value = await fn();
    const containerdNs = threadsCpuNs(this.pid) - containerd0;
    const allNs = this.allNs() - all0;
    return { value, containerdMs: containerdNs / 1e6 / per, shimsMs: (allNs - containerdNs) / 1e6 / per };
  }

  /** Removes the cgroup once containerd and its shims are gone (it must be empty by then). */
  async remove(): Promise<void> {
    for (let i = 0; i < 50 && existsSync(this.path); i++) {
      try {
        rmdirSync(this.path);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
