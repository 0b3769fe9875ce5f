import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import v8 from "node:v8";
import vm from "node:vm";
import { runCommand } from "./measure.js";

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  containerd: string;
  ctr: string;
  runc: string;
  crun: string;
  cgroups: string;
}

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const result = await runCommand(command, args);
    return (result.stdout || result.stderr).split("\n")[0]?.trim() ?? "";
  } catch {
    return "not installed";
  }
}

function osName(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

function cgroupMode(): string {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8");
  if (/ \/sys\/fs\/cgroup cgroup2 /.test(mounts.replace(/ - /g, " "))) return "cgroup v2 (unified)";
  return mounts.includes("/sys/fs/cgroup/unified")
    ? "cgroup v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)"
    : "cgroup v1";
}

export async function machineFacts(containerdVersion: string, ctrVersion: string): Promise<MachineFacts> {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os: osName(),
    node: process.version,
    containerd: containerdVersion,
    ctr: ctrVersion,
    runc: await firstLine("runc", ["--version"]),
    crun: await firstLine("crun", ["--version"]),
    cgroups: cgroupMode(),
  };
}

let gc: (() => void) | undefined;

/** A full GC before reading memory, so the figure is what is retained, not what is garbage. */
export function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
  gc();
}
