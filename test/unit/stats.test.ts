import { expect, test } from "vitest";
import { cpuPercent, normalizeStats } from "../../src/libcontainerd/stats.js";
import type { CgroupV1Stats, CgroupV2Stats, HcsStats } from "../../src/libcontainerd/types/stats.js";

const read = new Date("2026-01-01T00:00:01Z");

const v1: CgroupV1Stats = {
  kind: "cgroup-v1",
  read,
  memory: {
    usage: 1000,
    limit: 2000,
    maxUsage: 1500,
    cache: 300,
    rss: 700,
    failcnt: 0,
    inactiveFile: 200,
    oomKills: 0,
  },
  cpu: {
    usageTotal: 5e9,
    usageKernel: 1e9,
    usageUser: 4e9,
    perCpu: [5e9],
    throttledPeriods: 3,
    throttledTimeNs: 7e6,
  },
  pids: { current: 4, limit: 64 },
  blkio: {
    ioServiceBytes: [
      { op: "Read", device: "", major: 8, minor: 0, value: 10 },
      { op: "Write", device: "", major: 8, minor: 0, value: 20 },
      { op: "Read", device: "", major: 8, minor: 16, value: 1 },
      { op: "Total", device: "", major: 8, minor: 0, value: 30 },
    ],
    ioServiced: [{ op: "Write", device: "", major: 8, minor: 0, value: 2 }],
  },
};
const v2: CgroupV2Stats = {
  kind: "cgroup-v2",
  read,
  memory: {
    usage: 1000,
    limit: Infinity,
    anon: 600,
    file: 400,
    swapUsage: 0,
    inactiveFile: 300,
    oomKills: 1,
  },
  cpu: { usageUsec: 5e6, userUsec: 4e6, systemUsec: 1e6, throttledUsec: 7e3 },
  pids: { current: 4, limit: Infinity },
  io: { rbytes: 11, wbytes: 20, rios: 0, wios: 2 },
};
const hcs: HcsStats = {
  kind: "hcs",
  read,
  uptime100ns: 0,
  memory: { usageCommitBytes: 3000, usageCommitPeakBytes: 4000, usagePrivateWorkingSetBytes: 1000 },
  processor: { totalRuntime100ns: 5e7, runtimeUser100ns: 4e7, runtimeKernel100ns: 1e7 },
  storage: { readCountNormalized: 0, readSizeBytes: 11, writeCountNormalized: 2, writeSizeBytes: 20 },
};

test("cgroup v1, cgroup v2 and HCS counters come out in one shape, in ns and bytes", () => {
  const cpu = { usageNs: 5e9, userNs: 4e9, systemNs: 1e9 };
  const io = { readBytes: 11, writeBytes: 20, readOps: 0, writeOps: 2 };
  expect(normalizeStats(v1)).toMatchObject({
    cpu: { ...cpu, throttledNs: 7e6 },
    memory: { usage: 1000, limit: 2000, cache: 300 },
    pids: { current: 4, limit: 64 },
    io,
    raw: v1,
  });
  expect(normalizeStats(v2)).toMatchObject({
    cpu: { ...cpu, throttledNs: 7e6 },
    memory: { usage: 1000, limit: Infinity, cache: 400 },
    io,
    raw: v2,
  });
  const h = normalizeStats(hcs);
  expect(h).toMatchObject({
    kind: "hcs",
    cpu: { ...cpu, throttledNs: 0 },
    memory: { usage: 1000, limit: Infinity },
    io,
  });
  expect(h.pids).toBeUndefined();
});

test("cpuPercent: CPU time over wall time, 100 per busy CPU; undefined across a restart", () => {
  const first = normalizeStats(v1);
  const later = normalizeStats({
    ...v1,
    read: new Date(read.getTime() + 500),
    cpu: { ...v1.cpu, usageTotal: 5e9 + 7.5e8 },
  });
  expect(cpuPercent(first, later)).toBeCloseTo(150);
  expect(cpuPercent(later, first)).toBeUndefined();
  const restarted = normalizeStats({
    ...v1,
    read: new Date(read.getTime() + 1000),
    cpu: { ...v1.cpu, usageTotal: 1e6 },
  });
  expect(cpuPercent(first, restarted)).toBeUndefined();
});
