/** A subset of the OCI LinuxResources (runtime-spec config-linux.md), in its JSON field names. */
export interface LinuxResources {
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    kernel?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
  };
  pids?: { limit: number };
  blockIO?: { weight?: number; leafWeight?: number };
}

/** The OCI WindowsResources. */
export interface WindowsResources {
  memory?: { limit?: number };
  cpu?: { count?: number; shares?: number; maximum?: number };
  storage?: { iops?: number; bps?: number; sandboxSize?: number };
}

export type Resources = { linux: LinuxResources } | { windows: WindowsResources };

/**
 * Limits with `docker run`'s meaning (and its flag names in camelCase). Converted to the OCI
 * resources of either platform, and checked up front: a bad value is an InvalidArgumentError
 * naming the field, never a failure deep inside runc.
 */
export interface ResourceLimits {
  /** `--memory`: bytes, or a size such as `"64m"`, `"1.5g"`, `"512k"` (binary units, as docker). At least 6 MiB. */
  memory?: number | string;
  /**
   * `--memory-swap`: memory plus swap, in bytes or a size; `-1` for unlimited swap. Needs `memory`.
   * Unset with `memory` set: twice `memory` (docker's default), where the host accounts swap.
   */
  memorySwap?: number | string;
  /** `--memory-reservation`: a soft limit, bytes or a size. */
  memoryReservation?: number | string;
  /** `--cpus`: a number of CPUs, fractions allowed: 0.5 → a CFS quota of 50 ms per 100 ms period. */
  cpus?: number;
  /** `--cpuset-cpus`: which CPUs, e.g. `"0-2,4"`. */
  cpusetCpus?: string;
  /** `--cpuset-mems`: which memory nodes, e.g. `"0"`. */
  cpusetMems?: string;
  /** `--cpu-shares`: relative CPU weight, 2–262144 (1024 is the default share). */
  cpuShares?: number;
  /** `--pids-limit`: the most processes at once; 0 or -1 for no limit. */
  pids?: number;
  /** `--blkio-weight`: relative block IO weight, 10–1000. */
  blkioWeight?: number;
}

/** What `updateResources` takes: docker-style limits, or the raw OCI resources of one platform. */
export type ResourceUpdate = ResourceLimits | Resources;
