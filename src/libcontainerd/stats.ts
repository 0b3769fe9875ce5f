import type { BlkioEntry, RawStats, Stats } from "./types/stats.js";

function sumOps(entries: BlkioEntry[], op: string): number {
  let total = 0;
  for (const entry of entries) if (entry.op.toLowerCase() === op) total += entry.value;
  return total;
}

/** The backend's counters in the one shape every backend shares. */
export function normalizeStats(raw: RawStats): Stats {
  switch (raw.kind) {
    case "cgroup-v1":
      return {
        kind: raw.kind,
        read: raw.read,
        cpu: {
          usageNs: raw.cpu.usageTotal,
          userNs: raw.cpu.usageUser,
          systemNs: raw.cpu.usageKernel,
          throttledNs: raw.cpu.throttledTimeNs,
        },
        memory: { usage: raw.memory.usage, limit: raw.memory.limit, cache: raw.memory.cache },
        pids: { ...raw.pids },
        io: {
          readBytes: sumOps(raw.blkio.ioServiceBytes, "read"),
          writeBytes: sumOps(raw.blkio.ioServiceBytes, "write"),
          readOps: sumOps(raw.blkio.ioServiced, "read"),
          writeOps: sumOps(raw.blkio.ioServiced, "write"),
        },
        raw,
      };
    case "cgroup-v2":
      return {
        kind: raw.kind,
        read: raw.read,
        cpu: {
          usageNs: raw.cpu.usageUsec * 1000,
          userNs: raw.cpu.userUsec * 1000,
          systemNs: raw.cpu.systemUsec * 1000,
          throttledNs: raw.cpu.throttledUsec * 1000,
        },
        memory: { usage: raw.memory.usage, limit: raw.memory.limit, cache: raw.memory.file },
        pids: { ...raw.pids },
        io: {
          readBytes: raw.io.rbytes,
          writeBytes: raw.io.wbytes,
          readOps: raw.io.rios,
          writeOps: raw.io.wios,
        },
        raw,
      };
    case "hcs":
      return {
        kind: raw.kind,
        read: raw.read,
        cpu: {
          usageNs: raw.processor.totalRuntime100ns * 100,
          userNs: raw.processor.runtimeUser100ns * 100,
          systemNs: raw.processor.runtimeKernel100ns * 100,
          throttledNs: 0,
        },
        // HCS reports no limit with the statistics; the private working set is what docker shows.
        memory: { usage: raw.memory.usagePrivateWorkingSetBytes, limit: Infinity, cache: 0 },
        io: {
          readBytes: raw.storage.readSizeBytes,
          writeBytes: raw.storage.writeSizeBytes,
          readOps: raw.storage.readCountNormalized,
          writeOps: raw.storage.writeCountNormalized,
        },
        raw,
      };
  }
}

/**
 * CPU use between two samples of one container, in percent of one CPU (200 = two CPUs busy), as
 * `docker stats` shows it. Undefined when the samples are not in order, or the counter went back
 * (the container restarted between them).
 */
export function cpuPercent(previous: Stats, current: Stats): number | undefined {
  const elapsedNs = (current.read.getTime() - previous.read.getTime()) * 1e6;
  const usedNs = current.cpu.usageNs - previous.cpu.usageNs;
  if (!(elapsedNs > 0) || usedNs < 0) return undefined;
  return (usedNs / elapsedNs) * 100;
}
