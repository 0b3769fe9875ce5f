/**
 * Docker-style resource limits → OCI resources. The numbers mean what `docker run`'s flags mean
 * (moby daemon/daemon_unix.go and oci/resources), and every value is checked before anything is
 * created, so a mistake is an InvalidArgumentError naming the field instead of a runc failure.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { InvalidArgumentError } from "../errors.js";
import type {
  LinuxResources,
  ResourceLimits,
  Resources,
  ResourceUpdate,
  WindowsResources,
} from "../libcontainerd/types/resources.js";

/** The CFS period docker uses for `--cpus`: 100 ms. */
export const CPU_PERIOD_US = 100_000;
/** docker refuses less: "Minimum memory limit allowed is 6MB". */
const MIN_MEMORY = 6 * 1024 * 1024;
const MIN_CPU_SHARES = 2;
const MAX_CPU_SHARES = 262_144;

const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
const LIMIT_FIELDS = [
  "memory",
  "memorySwap",
  "memoryReservation",
  "cpus",
  "cpusetCpus",
  "cpusetMems",
  "cpuShares",
  "pids",
  "blkioWeight",
] as const satisfies readonly (keyof ResourceLimits)[];

/**
 * A size as docker's `RAMInBytes` reads it: a number of bytes, or digits with an optional binary
 * unit (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b`/`ib`): "64m" is 64 MiB.
 */
export function parseSize(value: number | string, field: string): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw invalid(field, `must be a whole number of bytes, not ${value}`);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(value);
  if (!match) throw invalid(field, `${JSON.stringify(value)} is not a size (such as 64m, 1.5g or 1048576)`);
  const [, digits = "", unit = ""] = match;
  return Math.floor(Number(digits) * (UNITS[unit.toLowerCase()] ?? 1));
}

function invalid(field: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`resources.${field}: ${why}`);
}

/** A cpuset list ("0-2,4"): syntax, ascending ranges, and (for CPUs) only CPUs this host has. */
export function checkCpuset(value: string, field: string, available?: number): void {
  if (typeof value !== "string" || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value))
    throw invalid(field, `${JSON.stringify(value)} is not a list such as "0-2,4"`);
  for (const part of value.split(",")) {
    const [low = 0, high = low] = part.split("-").map(Number);
    if (high < low) throw invalid(field, `range ${part} is backwards`);
    if (available !== undefined && high >= available)
      throw invalid(field, `CPU ${high} is not available: this host has CPUs 0-${available - 1}`);
  }
}

function integerIn(value: unknown, field: string, low: number, high: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value > high)
    throw invalid(field, `must be a whole number from ${low} to ${high}, not ${String(value)}`);
  return value;
}

/** Whether the host's cgroups account swap (cgroup v1 `memory.memsw.*`, or cgroup v2). */
function swapAccounted(): boolean {
  return (
    existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") ||
    existsSync("/sys/fs/cgroup/cgroup.controllers")
  );
}

/** Docker-style limits → OCI LinuxResources (only the fields that were given). */
export function linuxResources(limits: ResourceLimits): LinuxResources {
  checkKnownFields(limits);
  const out: LinuxResources = {};
  const memory = limits.memory === undefined ? undefined : parseSize(limits.memory, "memory");
  if (memory !== undefined) {
    if (memory < MIN_MEMORY) throw invalid("memory", `the minimum is 6m (6291456 bytes), not ${memory}`);
    out.memory = { limit: memory };
  }
  if (limits.memorySwap !== undefined) {
    const swap = parseSize(limits.memorySwap, "memorySwap");
    if (memory === undefined) throw invalid("memorySwap", "needs resources.memory as well (as docker's)");
    if (swap !== -1 && swap < memory)
      throw invalid("memorySwap", `is memory plus swap, so it must be at least memory (${memory}), or -1`);
    out.memory = { ...out.memory, swap };
  } else if (memory !== undefined && swapAccounted()) {
    out.memory = { ...out.memory, swap: memory * 2 };
  }
  if (limits.memoryReservation !== undefined) {
    const reservation = parseSize(limits.memoryReservation, "memoryReservation");
    if (memory !== undefined && reservation > memory)
      throw invalid("memoryReservation", "must be smaller than resources.memory");
    out.memory = { ...out.memory, reservation };
  }
  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (limits.cpus !== undefined) {
    const cpus = limits.cpus;
    const available = availableParallelism();
    if (typeof cpus !== "number" || !Number.isFinite(cpus) || cpus < 0.01 || cpus > available)
      throw invalid(
        "cpus",
        `must be a number of CPUs from 0.01 to ${available} (this host has ${available}), not ${String(cpus)}`,
      );
    cpu.quota = Math.round(cpus * CPU_PERIOD_US);
    cpu.period = CPU_PERIOD_US;
  }
  if (limits.cpusetCpus !== undefined) {
    checkCpuset(limits.cpusetCpus, "cpusetCpus", availableParallelism());
    cpu.cpus = limits.cpusetCpus;
  }
  if (limits.cpusetMems !== undefined) {
    checkCpuset(limits.cpusetMems, "cpusetMems");
    cpu.mems = limits.cpusetMems;
  }
  if (limits.cpuShares !== undefined && limits.cpuShares !== 0)
    cpu.shares = integerIn(limits.cpuShares, "cpuShares", MIN_CPU_SHARES, MAX_CPU_SHARES);
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (limits.pids !== undefined) {
    const pids = integerIn(limits.pids, "pids", -1, 2 ** 31 - 1);
    // docker: 0 and -1 both mean unlimited; runc reads a limit of 0 as "unset", -1 as "max".
    out.pids = { limit: pids <= 0 ? -1 : pids };
  }
  if (limits.blkioWeight !== undefined && limits.blkioWeight !== 0)
    out.blockIO = { weight: integerIn(limits.blkioWeight, "blkioWeight", 10, 1000) };
  return out;
}

/**
 * Docker-style limits → OCI WindowsResources, as docker on Windows maps them: `cpus` becomes a
 * share of the whole machine's cycles (`maximum`, in 1/10000ths), `memory` the limit in bytes.
 */
export function windowsResources(limits: ResourceLimits): WindowsResources {
  checkKnownFields(limits);
  for (const field of [
    "memorySwap",
    "memoryReservation",
    "cpusetCpus",
    "cpusetMems",
    "pids",
    "blkioWeight",
  ] as const) {
    if (limits[field] !== undefined) throw invalid(field, "is not supported for Windows containers");
  }
  const out: WindowsResources = {};
  if (limits.memory !== undefined) out.memory = { limit: parseSize(limits.memory, "memory") };
  if (limits.cpus !== undefined || limits.cpuShares !== undefined) {
    out.cpu = {};
    if (limits.cpus !== undefined) {
      const available = availableParallelism();
      if (typeof limits.cpus !== "number" || !(limits.cpus >= 0.01) || limits.cpus > available)
        throw invalid("cpus", `must be a number of CPUs from 0.01 to ${available}`);
      out.cpu.maximum = Math.max(1, Math.round((limits.cpus / available) * 10_000));
    }
    if (limits.cpuShares !== undefined) out.cpu.shares = integerIn(limits.cpuShares, "cpuShares", 0, 10_000);
  }
  return out;
}

function checkKnownFields(limits: ResourceLimits): void {
  if (!limits || typeof limits !== "object") throw new InvalidArgumentError("resources must be an object");
  for (const key of Object.keys(limits)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(key))
      throw new InvalidArgumentError(
        `resources.${key}: unknown limit (known: ${LIMIT_FIELDS.join(", ")}; raw OCI resources go in { linux } or { windows })`,
      );
  }
}

/** Checks the raw OCI fields that runc would otherwise reject late (the cpuset is a string list). */
export function checkLinuxResources(resources: LinuxResources | undefined, where: string): void {
  const cpu = resources?.cpu;
  const bad = (field: string, why: string) => new InvalidArgumentError(`${where}.${field}: ${why}`);
  if (
    cpu?.cpus !== undefined &&
    (typeof cpu.cpus !== "string" || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpu.cpus))
  )
    throw bad(
      "cpu.cpus",
      `${JSON.stringify(cpu.cpus)} is a cpuset list such as "0-1" (for a fraction of CPUs use resources.cpus, docker's --cpus)`,
    );
  if (cpu?.quota !== undefined && cpu.quota !== -1 && cpu.quota < 1000)
    throw bad("cpu.quota", `must be at least 1000 µs or -1, not ${cpu.quota}`);
  if (cpu?.period !== undefined && (cpu.period < 1000 || cpu.period > 1_000_000))
    throw bad("cpu.period", `must be from 1000 to 1000000 µs, not ${cpu.period}`);
}

/** Whether an update is raw OCI resources rather than docker-style limits. */
export function isRawResources(update: ResourceUpdate): update is Resources {
  return typeof update === "object" && update !== null && ("linux" in update || "windows" in update);
}

/** An update for a container of the given platform, as the OCI resources its runtime takes. */
export function resourcesForUpdate(update: ResourceUpdate, platform: "linux" | "windows"): Resources {
  if (isRawResources(update)) {
    if ("linux" in update) checkLinuxResources(update.linux, "resources.linux");
    return update;
  }
  return platform === "windows" ? { windows: windowsResources(update) } : { linux: linuxResources(update) };
}
