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
