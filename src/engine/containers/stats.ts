import { readFile } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import type { Stats } from "../../libcontainerd/types/stats.js";

/** api/types.NetworkStats: one interface's counters. */
export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/**
 * The interfaces of the network namespace the process `pid` is in, from its /proc/PID/net/dev, as
 * dockerd reports them in `networks` (the loopback left out); undefined when there are none to report.
 */
export async function networkStats(pid: number): Promise<Record<string, NetworkStats> | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/net/dev`, "utf8");
  } catch {
    return undefined;
  }
  const networks: Record<string, NetworkStats> = {};
  for (const line of text.split("\n").slice(2)) {
    const separator = line.indexOf(":");
    if (separator < 0) continue;
    const name = line.slice(0, separator).trim();
    if (name === "lo") continue;
    const fields = line
      .slice(separator + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    networks[name] = {
      rx_bytes: fields[0] ?? 0,
      rx_packets: fields[1] ?? 0,
      rx_errors: fields[2] ?? 0,
      rx_dropped: fields[3] ?? 0,
      tx_bytes: fields[8] ?? 0,
      tx_packets: fields[9] ?? 0,
      tx_errors: fields[10] ?? 0,
      tx_dropped: fields[11] ?? 0,
    };
  }
  return Object.keys(networks).length > 0 ? networks : undefined;
}

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
  return !Number.isFinite(limit) || limit <= 0 || limit > machine ? machine : limit;
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
  networks?: Record<string, NetworkStats>,
): { body: Record<string, unknown>; cpu: CpuSample; read: string } {
  const read = stats.read.toISOString();
  const raw = stats.raw;
  const perCpu = raw.kind === "cgroup-v1" ? raw.cpu.perCpu : undefined;
  const cpu: CpuSample = {
    cpu_usage: {
      total_usage: stats.cpu.usageNs,
      ...(perCpu ? { percpu_usage: perCpu } : {}),
      usage_in_kernelmode: stats.cpu.systemNs,
      usage_in_usermode: stats.cpu.userNs,
    },
    system_cpu_usage: systemNs,
    online_cpus: perCpu?.filter((value) => value > 0).length || 0 || availableParallelism(),
    throttling_data: {
      periods: 0,
      throttled_periods: raw.kind === "cgroup-v1" ? raw.cpu.throttledPeriods : 0,
      throttled_time: stats.cpu.throttledNs,
    },
  };
  // The CLI subtracts the inactive page cache from usage: v1 reads total_inactive_file, v2 inactive_file.
  const memoryDetail: Record<string, number> =
    raw.kind === "cgroup-v1"
      ? { cache: raw.memory.cache, rss: raw.memory.rss, total_inactive_file: raw.memory.inactiveFile }
      : raw.kind === "cgroup-v2"
        ? { anon: raw.memory.anon, file: raw.memory.file, inactive_file: raw.memory.inactiveFile }
        : {};
  const memory: Record<string, unknown> = {
    usage: stats.memory.usage,
    ...(raw.kind === "cgroup-v1" ? { max_usage: raw.memory.maxUsage, failcnt: raw.memory.failcnt } : {}),
    limit: memoryLimit(stats.memory.limit),
    stats: memoryDetail,
  };
  const pids = stats.pids
    ? {
        current: stats.pids.current,
        ...(Number.isFinite(stats.pids.limit) && stats.pids.limit > 0 ? { limit: stats.pids.limit } : {}),
      }
    : {};
  const blkio = {
    io_service_bytes_recursive: [
      { major: 0, minor: 0, op: "read", value: stats.io.readBytes },
      { major: 0, minor: 0, op: "write", value: stats.io.writeBytes },
    ],
    io_serviced_recursive: [
      { major: 0, minor: 0, op: "read", value: stats.io.readOps },
      { major: 0, minor: 0, op: "write", value: stats.io.writeOps },
    ],
  };
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
    ...(networks ? { networks } : {}),
    name: identity.name,
    id: identity.id,
  };
  return { body, cpu, read };
}
