// `node --import tsx bench/profile.ts [N] [--limit L]`: where the CPU goes when N /bin/true
// lifecycles run at once, library vs parallel `ctr run`. On 2 vCPUs the concurrent figure is
// CPU-bound, so CPU-seconds per container (whole machine, this process, containerd) explain the
// throughput. `--limit L` adds a library run with at most L lifecycles in flight.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startContainerd } from "../test/harness/containerd.js";
import { withConcurrency } from "./measure.js";
import { BenchSubjects } from "./subjects.js";

const TICKS_PER_SECOND = 100;

function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return (fields.reduce((a, b) => a + b, 0) - idle) / TICKS_PER_SECOND;
}

function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  // utime, stime, cutime, cstime: fields 14–17 of stat(5), 11–14 after the command.
  return ((fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0)) / TICKS_PER_SECOND;
}

const count = Number(process.argv[2] ?? 50);
const limitIndex = process.argv.indexOf("--limit");
const limit = limitIndex > 0 ? Number(process.argv[limitIndex + 1]) : undefined;
type Side = "library" | "ctr" | "library, limited";
const sides: Side[] = limit ? ["library", "ctr", "library, limited"] : ["library", "ctr"];
const ctrd = await startContainerd({ prefix: "lcd-prof-" });
const subjects = new BenchSubjects(ctrd);
try {
  for (let i = 0; i < 3; i++) {
    await subjects.libraryLifecycle("runc-v2");
    await subjects.ctrLifecycle("runc-v2");
  }
  for (const side of [...sides, ...sides]) {
    const machineBefore = machineBusySeconds();
    const selfBefore = process.cpuUsage();
    const containerdBefore = processCpuSeconds(ctrd.pid);
    const start = performance.now();
    await withConcurrency(count, side === "library, limited" ? (limit ?? count) : count, () =>
      side === "ctr" ? subjects.ctrLifecycle("runc-v2") : subjects.libraryLifecycle("runc-v2"),
    );
    const wall = (performance.now() - start) / 1000;
    const self = process.cpuUsage(selfBefore);
    const perContainer = (seconds: number) => `${((seconds * 1000) / count).toFixed(1)} ms`;
    console.log(
      `${side.padEnd(16)} N=${count} wall ${wall.toFixed(2)} s; CPU per container: machine ${perContainer(
        machineBusySeconds() - machineBefore,
      )}, node ${perContainer((self.user + self.system) / 1e6)}, containerd ${perContainer(
        processCpuSeconds(ctrd.pid) - containerdBefore,
      )}`,
    );
  }
} finally {
  await subjects.client.close();
  await ctrd.stop();
}
