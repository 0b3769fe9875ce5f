import type { Any } from "@bufbuild/protobuf/wkt";
import type { BlkIOEntry } from "../../gen/github.com/containerd/cgroups/stats/v1/metrics_pb.js";
import { MetricsSchema as V1MetricsSchema } from "../../gen/github.com/containerd/cgroups/stats/v1/metrics_pb.js";
import { MetricsSchema as V2MetricsSchema } from "../../gen/github.com/containerd/cgroups/v2/stats/metrics_pb.js";
import { codecOf } from "../grpc/codec.js";
import { normalizeStats } from "../stats.js";
import { NotImplementedError } from "../types/errors.js";
import type { BlkioEntry, CgroupV1Stats, CgroupV2Stats, RawStats, Stats } from "../types/stats.js";

const CGROUP_V1 = "io.containerd.cgroups.v1.Metrics";
const CGROUP_V2 = "io.containerd.cgroups.v2.Metrics";

/** cgroup counters are uint64; past 2^53 they lose precision, which no practical counter reaches. */
const n = (value: bigint | undefined): number => Number(value ?? 0n);

/** "No limit" in cgroup v1 is the largest page-aligned int64; report it as Infinity. */
const limit = (value: bigint | undefined): number =>
  value === undefined || value >= 0x7fff_ffff_ffff_f000n ? Infinity : Number(value);

const typeName = (typeUrl: string) => typeUrl.slice(typeUrl.lastIndexOf("/") + 1);

/** Decodes the Metrics Any that Tasks.Metrics returns for a runc task. */
export function decodeMetrics(data: Any, read: Date): Stats {
  return normalizeStats(decodeRawMetrics(data, read));
}

export function decodeRawMetrics(data: Any, read: Date): RawStats {
  switch (typeName(data.typeUrl)) {
    case CGROUP_V1:
      return decodeV1(data.value, read);
    case CGROUP_V2:
      return decodeV2(data.value, read);
    default:
      throw new NotImplementedError(
        `stats: metrics of type ${JSON.stringify(data.typeUrl)} are not supported`,
      );
  }
}

function blkio(entries: BlkIOEntry[] | undefined): BlkioEntry[] {
  return (entries ?? []).map((e) => ({
    op: e.op,
    device: e.device,
    major: n(e.major),
    minor: n(e.minor),
    value: n(e.value),
  }));
}

function decodeV1(bytes: Uint8Array, read: Date): CgroupV1Stats {
  const m = codecOf(V1MetricsSchema).decode(bytes);
  const usage = m.memory?.usage;
  return {
    kind: "cgroup-v1",
    read,
    memory: {
      usage: n(usage?.usage),
      limit: limit(usage?.limit),
      maxUsage: n(usage?.max),
      cache: n(m.memory?.cache),
      rss: n(m.memory?.rss),
      failcnt: n(usage?.failcnt),
      inactiveFile: n(m.memory?.totalInactiveFile),
      oomKills: n(m.memoryOomControl?.oomKill),
    },
    cpu: {
      usageTotal: n(m.cpu?.usage?.total),
      usageKernel: n(m.cpu?.usage?.kernel),
      usageUser: n(m.cpu?.usage?.user),
      perCpu: (m.cpu?.usage?.perCpu ?? []).map(n),
      throttledPeriods: n(m.cpu?.throttling?.throttledPeriods),
      throttledTimeNs: n(m.cpu?.throttling?.throttledTime),
    },
    pids: { current: n(m.pids?.current), limit: m.pids?.limit ? n(m.pids.limit) : Infinity },
    blkio: {
      ioServiceBytes: blkio(m.blkio?.ioServiceBytesRecursive),
      ioServiced: blkio(m.blkio?.ioServicedRecursive),
    },
  };
}

function decodeV2(bytes: Uint8Array, read: Date): CgroupV2Stats {
  const m = codecOf(V2MetricsSchema).decode(bytes);
  const io = { rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
  for (const entry of m.io?.usage ?? []) {
    io.rbytes += n(entry.rbytes);
    io.wbytes += n(entry.wbytes);
    io.rios += n(entry.rios);
    io.wios += n(entry.wios);
  }
  return {
    kind: "cgroup-v2",
    read,
    memory: {
      usage: n(m.memory?.usage),
      limit: limit(m.memory?.usageLimit),
      anon: n(m.memory?.anon),
      file: n(m.memory?.file),
      swapUsage: n(m.memory?.swapUsage),
      inactiveFile: n(m.memory?.inactiveFile),
      oomKills: n(m.memoryEvents?.oomKill),
    },
    cpu: {
      usageUsec: n(m.cpu?.usageUsec),
      userUsec: n(m.cpu?.userUsec),
      systemUsec: n(m.cpu?.systemUsec),
      throttledUsec: n(m.cpu?.throttledUsec),
    },
    pids: { current: n(m.pids?.current), limit: m.pids?.limit ? n(m.pids.limit) : Infinity },
    io,
  };
}
