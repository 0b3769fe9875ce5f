/** Counters decoded from the backend's metrics. Byte and nanosecond units; absent when not reported. */
export interface CgroupV1Stats {
  kind: "cgroup-v1";
  read: Date;
  memory: { usage: number; limit: number; maxUsage: number; cache: number; rss: number; failcnt: number };
  cpu: {
    usageTotal: number;
    usageKernel: number;
    usageUser: number;
    perCpu: number[];
    throttledPeriods: number;
  };
  pids: { current: number; limit: number };
  blkio: { ioServiceBytes: BlkioEntry[]; ioServiced: BlkioEntry[] };
}

export interface CgroupV2Stats {
  kind: "cgroup-v2";
  read: Date;
  memory: { usage: number; limit: number; anon: number; file: number; swapUsage: number };
  cpu: { usageUsec: number; userUsec: number; systemUsec: number; throttledUsec: number };
  pids: { current: number; limit: number };
  io: { rbytes: number; wbytes: number; rios: number; wios: number };
}

export interface BlkioEntry {
  op: string;
  device: string;
  major: number;
  minor: number;
  value: number;
}

/** HCS Statistics (schema v1 property `Statistics`). Times are in 100 ns units, as HCS reports them. */
export interface HcsStats {
  kind: "hcs";
  read: Date;
  containerStartTime?: Date;
  uptime100ns: number;
  memory: { usageCommitBytes: number; usageCommitPeakBytes: number; usagePrivateWorkingSetBytes: number };
  processor: { totalRuntime100ns: number; runtimeUser100ns: number; runtimeKernel100ns: number };
  storage: {
    readCountNormalized: number;
    readSizeBytes: number;
    writeCountNormalized: number;
    writeSizeBytes: number;
  };
}

export type Stats = CgroupV1Stats | CgroupV2Stats | HcsStats;
