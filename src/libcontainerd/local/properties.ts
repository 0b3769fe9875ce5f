/** Decoding of HcsGetComputeSystemProperties documents (schema1.ContainerProperties / hcsschema.Properties). */
import type { HcsStats } from "../types/stats.js";

export interface HcsStatisticsJson {
  Timestamp?: string;
  ContainerStartTime?: string;
  Uptime100ns?: number;
  Memory?: {
    MemoryUsageCommitBytes?: number;
    MemoryUsageCommitPeakBytes?: number;
    MemoryUsagePrivateWorkingSetBytes?: number;
  };
  Processor?: { TotalRuntime100ns?: number; RuntimeUser100ns?: number; RuntimeKernel100ns?: number };
  Storage?: {
    ReadCountNormalized?: number;
    ReadSizeBytes?: number;
    WriteCountNormalized?: number;
    WriteSizeBytes?: number;
  };
}

export interface HcsProcessListItem {
  ProcessId?: number;
  ImageName?: string;
  CreateTimestamp?: string;
  UserTime100ns?: number;
  KernelTime100ns?: number;
  MemoryCommitBytes?: number;
  MemoryWorkingSetPrivateBytes?: number;
  MemoryWorkingSetSharedBytes?: number;
}

export interface HcsSystemProperties {
  Id?: string;
  Name?: string;
  SystemType?: string;
  RuntimeOsType?: string;
  Owner?: string;
  State?: string;
  Stopped?: boolean;
  ExitType?: string;
  Statistics?: HcsStatisticsJson;
  ProcessList?: HcsProcessListItem[];
}

function date(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const parsed = new Date(value);
  // Go's zero time ("0001-01-01T00:00:00Z") means "not set".
  return Number.isNaN(parsed.getTime()) || parsed.getUTCFullYear() <= 1 ? undefined : parsed;
}

export function hcsStats(statistics: HcsStatisticsJson | undefined, now = new Date()): HcsStats {
  const s = statistics ?? {};
  return {
    kind: "hcs",
    read: date(s.Timestamp) ?? now,
    containerStartTime: date(s.ContainerStartTime),
    uptime100ns: s.Uptime100ns ?? 0,
    memory: {
      usageCommitBytes: s.Memory?.MemoryUsageCommitBytes ?? 0,
      usageCommitPeakBytes: s.Memory?.MemoryUsageCommitPeakBytes ?? 0,
      usagePrivateWorkingSetBytes: s.Memory?.MemoryUsagePrivateWorkingSetBytes ?? 0,
    },
    processor: {
      totalRuntime100ns: s.Processor?.TotalRuntime100ns ?? 0,
      runtimeUser100ns: s.Processor?.RuntimeUser100ns ?? 0,
      runtimeKernel100ns: s.Processor?.RuntimeKernel100ns ?? 0,
    },
    storage: {
      readCountNormalized: s.Storage?.ReadCountNormalized ?? 0,
      readSizeBytes: s.Storage?.ReadSizeBytes ?? 0,
      writeCountNormalized: s.Storage?.WriteCountNormalized ?? 0,
      writeSizeBytes: s.Storage?.WriteSizeBytes ?? 0,
    },
  };
}
