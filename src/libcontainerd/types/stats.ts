/** cgroup v1 counters as containerd reports them (bytes, nanoseconds). */
export interface CgroupV1Stats {
  kind: "cgroup-v1";
  read: Date;
  memory: {
    usage: number;
    limit: number;
    maxUsage: number;
    cache: number;
    rss: number;
    failcnt: number;
    /** memory.stat's total_inactive_file: page cache the kernel reclaims first (docker stats leaves it out). */
    inactiveFile: number;
    /** memory.oom_control's oom_kill: processes the kernel killed for want of memory. */
    oomKills: number;
  };
  cpu: {
    usageTotal: number;
    usageKernel: number;
    usageUser: number;
    perCpu: number[];
    throttledPeriods: number;
    throttledTimeNs: number;
  };
  pids: { current: number; limit: number };
  blkio: { ioServiceBytes: BlkioEntry[]; ioServiced: BlkioEntry[] };
}

export interface CgroupV2Stats {
  kind: "cgroup-v2";
  read: Date;
  memory: {
    usage: number;
    limit: number;
    anon: number;
    file: number;
    swapUsage: number;
    /** memory.stat's inactive_file: page cache the kernel reclaims first (docker stats leaves it out). */
    inactiveFile: number;
    /** memory.events' oom_kill. */
    oomKills: number;
  };
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

/** The backend's own counters, decoded: `kind` says which. */
export type RawStats = CgroupV1Stats | CgroupV2Stats | HcsStats;

/**
 * One shape for every backend (cgroup v1, cgroup v2, HCS): cumulative counters in nanoseconds and
 * bytes, as `docker stats` reads them. `raw` keeps everything the backend reported.
 * `cpuPercent(previous, current)` turns two samples into a CPU figure.
 */
export interface Stats {
  kind: RawStats["kind"];
  /** When the backend took the sample. */
  read: Date;
  cpu: {
    /** CPU time used since the container started, all CPUs together. */
    usageNs: number;
    userNs: number;
    systemNs: number;
    /** Time the CFS quota (`cpus`) held the container back; 0 where not reported. */
    throttledNs: number;
  };
  memory: {
    /** Bytes in use, page cache included (as the cgroup counts them). */
    usage: number;
    /** The limit in bytes; Infinity when there is none. */
    limit: number;
    /** Page cache (v1 `cache`, v2 `file`); 0 where not reported. */
    cache: number;
  };
  /** Processes now and their limit (Infinity: none); undefined where the backend does not count them (HCS). */
  pids?: { current: number; limit: number };
  io: { readBytes: number; writeBytes: number; readOps: number; writeOps: number };
  raw: RawStats;
}
