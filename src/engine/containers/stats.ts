import { readFile } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import type { Stats } from "../../libcontainerd/types/stats.js";

/** USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture Docker runs on. */
const CLOCK_TICKS = 100;

/** The host's total CPU time in nanoseconds, as dockerd computes `system_cpu_usage` from /proc/stat. */
export async function systemCpuUsageNs(): Promise<number> {
  const stat = await readFile("/proc/stat", "utf8");
  const line = stat.split("\n").find((entry) => entry.startsWith("cpu "));
  if (!line) return 0;
  const ticks = line
    .trim()
    .split(/\s+/)
    .slice(1, 8)
    .reduce((sum, value) => sum + Number(value), 0);
  return (ticks * 1e9) / CLOCK_TICKS;
}

/** No limit (or one above the machine's memory) reads as the machine's memory, as dockerd reports it. */
function memoryLimit(limit: number): number {
  const machine = totalmem();
  return limit <= 0 || limit > machine ? machine : limit;
}

export interface CpuSample {
  cpu_usage: {
    total_usage: number;
    percpu_usage?: number[];
    usage_in_kernelmode: number;
    usage_in_usermode: number;
  };
  system_cpu_usage: number;
  online_cpus: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export const EMPTY_CPU: CpuSample = {
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  system_cpu_usage: 0,
  online_cpus: 0,
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
};

/**
 * The library's decoded cgroup counters in api/types.StatsJSON's shape: what `docker stats`
 * reads to compute CPU % (cpu and system deltas against `precpu_stats`) and memory use.
 */
export function dockerStats(
  stats: Stats,
  systemNs: number,
  previous: { read: string; cpu: CpuSample } | undefined,
  identity: { id: string; name: string },
): { body: Record<string, unknown>; cpu: CpuSample; read: string } {
  const read = stats.read.toISOString();
  const online = availableParallelism();
  let cpu: CpuSample;
  let memory: Record<string, unknown>;
  let pids: Record<string, number>;
  let blkio: Record<string, unknown>;
  switch (stats.kind) {
    case "cgroup-v1":
      cpu = {
        cpu_usage: {
          total_usage: stats.cpu.usageTotal,
          percpu_usage: stats.cpu.perCpu,
          usage_in_kernelmode: stats.cpu.usageKernel,
          usage_in_usermode: stats.cpu.usageUser,
        },
        system_cpu_usage: systemNs,
        online_cpus: stats.cpu.perCpu.filter((value) => value > 0).length || online,
        throttling_data: { periods: 0, throttled_periods: stats.cpu.throttledPeriods, throttled_time: 0 },
      };
      memory = {
        usage: stats.memory.usage,
        max_usage: stats.memory.maxUsage,
        failcnt: stats.memory.failcnt,
        limit: memoryLimit(stats.memory.limit),
        stats: { cache: stats.memory.cache, rss: stats.memory.rss, total_inactive_file: 0 },
      };
      pids = { current: stats.pids.current, ...(stats.pids.limit > 0 ? { limit: stats.pids.limit } : {}) };
      blkio = {
        io_service_bytes_recursive: stats.blkio.ioServiceBytes.map((entry) => ({
          major: entry.major,
          minor: entry.minor,
          op: entry.op,
          value: entry.value,
        })),
        io_serviced_recursive: stats.blkio.ioServiced.map((entry) => ({
          major: entry.major,
          minor: entry.minor,
          op: entry.op,
          value: entry.value,
        })),
        io_queue_recursive: null,
        io_service_time_recursive: null,
        io_wait_time_recursive: null,
        io_merged_recursive: null,
        io_time_recursive: null,
        sectors_recursive: null,
      };
      break;
    case "cgroup-v2":
      cpu = {
        cpu_usage: {
          total_usage: stats.cpu.usageUsec * 1000,
          usage_in_kernelmode: stats.cpu.systemUsec * 1000,
          usage_in_usermode: stats.cpu.userUsec * 1000,
        },
        system_cpu_usage: systemNs,
        online_cpus: online,
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: stats.cpu.throttledUsec * 1000 },
      };
      memory = {
        usage: stats.memory.usage,
        limit: memoryLimit(stats.memory.limit),
        stats: { anon: stats.memory.anon, file: stats.memory.file, inactive_file: 0 },
      };
      pids = { current: stats.pids.current, ...(stats.pids.limit > 0 ? { limit: stats.pids.limit } : {}) };
      blkio = {
        io_service_bytes_recursive: [
          { major: 0, minor: 0, op: "read", value: stats.io.rbytes },
          { major: 0, minor: 0, op: "write", value: stats.io.wbytes },
        ],
      };
      break;
    case "hcs":
      cpu = {
        cpu_usage: {
          total_usage: stats.processor.totalRuntime100ns * 100,
          usage_in_kernelmode: stats.processor.runtimeKernel100ns * 100,
          usage_in_usermode: stats.processor.runtimeUser100ns * 100,
        },
        system_cpu_usage: systemNs,
        online_cpus: online,
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      };
      memory = { usage: stats.memory.usageCommitBytes, limit: 0, stats: {} };
      pids = { current: 0 };
      blkio = {};
      break;
  }
  const body = {
    read,
    preread: previous?.read ?? "0001-01-01T00:00:00Z",
    pids_stats: pids,
    blkio_stats: blkio,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: previous?.cpu ?? EMPTY_CPU,
    memory_stats: memory,
    name: identity.name,
    id: identity.id,
  };
  return { body, cpu, read };
}
