import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import type { ResourceLimits } from "../libcontainerd/types/resources.js";
import { LOG_LABELS } from "../logs/labels.js";
import { defaultLinuxSpec } from "../oci/defaults.js";
import { applySecurityOpt, type LinuxRunOptions, parseUlimit } from "../oci/linux-options.js";
import { linuxResources, parseSize as parseResourceSize } from "../oci/resources.js";
import type { OciSpec } from "../oci/spec.js";
import { usageError } from "./errors.js";

/** Labels ctrd puts on its containers, so `ps` and `exec` can show and reuse what `run` was given. */
export const LABELS = {
  command: "io.ctrd/command",
  user: "io.ctrd/user",
  workdir: "io.ctrd/workdir",
} as const;

const MAX_LABEL_BYTES = 4000;

export interface ContainerFlags {
  args: string[];
  rootfs: string;
  id: string;
  namespace: string;
  /** The cgroup the container's own goes under; default `/<namespace>`. */
  cgroupParent?: string;
  env: string[];
  workdir?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  tty: boolean;
  resources?: ResourceLimits;
  /** `--init`: tini as PID 1. */
  init?: boolean;
  /** `--read-only`. */
  readonlyRootfs?: boolean;
  /** `--log-driver none`: no log, now or when started again. */
  noLog?: boolean;
  /** `--privileged`, `--cap-add`, `--device`, `--ulimit`, `--sysctl`, … */
  runOptions?: LinuxRunOptions;
}

export function containerSpec(flags: ContainerFlags): OciSpec {
  const spec = defaultLinuxSpec({
    args: flags.args,
    rootfs: flags.rootfs,
    env: [...flags.env, ...(flags.tty ? ["TERM=xterm"] : [])],
    ...(flags.workdir !== undefined ? { cwd: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    terminal: flags.tty,
    hostname: flags.id.slice(0, 63),
    cgroupsPath: `${cgroupParentPath(flags.cgroupParent ?? flags.namespace)}/${flags.id}`,
    ...(flags.resources ? { resources: flags.resources } : {}),
    ...(flags.init ? { init: true } : {}),
    ...(flags.readonlyRootfs ? { readonlyRootfs: true } : {}),
    ...flags.runOptions,
  });
  if (flags.tty && spec.process && process.stdout.isTTY && process.stdout.columns && process.stdout.rows) {
    spec.process.consoleSize = { width: process.stdout.columns, height: process.stdout.rows };
  }
  return spec;
}

/** An absolute cgroup path without a trailing slash, as runc's cgroupfs driver wants it. */
function cgroupParentPath(parent: string): string {
  const trimmed = parent.replace(/\/+$/, "");
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

export function containerLabels(flags: ContainerFlags): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.command]: truncateUtf8(JSON.stringify(flags.args), MAX_LABEL_BYTES),
  };
  if (flags.user) labels[LABELS.user] = `${flags.user.uid}:${flags.user.gid}`;
  if (flags.workdir) labels[LABELS.workdir] = flags.workdir;
  if (flags.noLog) labels[LOG_LABELS.driver] = "none";
  return labels;
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text;
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, Math.floor(out.length * 0.9));
  return out;
}

/** The command a ctrd container runs, for display; `[]` for containers ctrd did not create. */
export function labelledCommand(labels: Record<string, string>): string[] {
  try {
    const parsed: unknown = JSON.parse(labels[LABELS.command] ?? "[]");
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

/** `K=V` as given; a bare `K` takes the value from ctrd's environment (or is dropped), as docker does. */
export function parseEnv(entries: readonly string[]): string[] {
  const env: string[] = [];
  for (const entry of entries) {
    if (entry === "" || entry.startsWith("="))
      throw usageError(`invalid --env ${JSON.stringify(entry)}: want KEY=VALUE`);
    if (entry.includes("=")) env.push(entry);
    else if (process.env[entry] !== undefined) env.push(`${entry}=${process.env[entry]}`);
  }
  return env;
}

function lookupId(file: string, name: string): number | undefined {
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
    }
  } catch {}
  return undefined;
}

function primaryGid(rootfs: string, uid: number): number | undefined {
  try {
    for (const line of readFileSync(join(rootfs, "etc/passwd"), "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[2] === String(uid) && fields[3] !== undefined && /^\d+$/.test(fields[3]))
        return Number(fields[3]);
    }
  } catch {}
  return undefined;
}

/** `UID[:GID]`, where names are looked up in the rootfs's /etc/passwd and /etc/group. */
export function parseUser(value: string, rootfs: string): { uid: number; gid: number } {
  const [userPart = "", groupPart] = value.split(":", 2);
  const resolve = (part: string, file: string, what: string): number => {
    if (/^\d+$/.test(part)) return Number(part);
    const found = lookupId(join(rootfs, file), part);
    if (found === undefined)
      throw usageError(`--user ${value}: no ${what} ${JSON.stringify(part)} in ${join(rootfs, file)}`);
    return found;
  };
  if (userPart === "") throw usageError(`invalid --user ${JSON.stringify(value)}: want UID[:GID]`);
  const uid = resolve(userPart, "etc/passwd", "user");
  const gid =
    groupPart !== undefined && groupPart !== ""
      ? resolve(groupPart, "etc/group", "group")
      : (primaryGid(rootfs, uid) ?? uid);
  return { uid, gid };
}

/** docker's sizes: `512m`, `1g`, `1.5GB`, `65536` (bytes). */
export function parseSize(value: string, flag: string): number {
  const bytes = cliValue(() => parseResourceSize(value, flag), flag, value);
  if (bytes <= 0) throw usageError(`invalid ${flag} ${JSON.stringify(value)}: want a size like 512m or 1g`);
  return bytes;
}

/** The resource flags of `ctrd run`, as docker names them. */
export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpusetCpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  blkioWeight?: string;
}

const RESOURCE_FLAGS: Record<
  keyof ResourceFlags,
  { flag: string; limit: keyof ResourceLimits; number: boolean }
> = {
  memory: { flag: "--memory", limit: "memory", number: false },
  memorySwap: { flag: "--memory-swap", limit: "memorySwap", number: false },
  memoryReservation: { flag: "--memory-reservation", limit: "memoryReservation", number: false },
  cpus: { flag: "--cpus", limit: "cpus", number: true },
  cpusetCpus: { flag: "--cpuset-cpus", limit: "cpusetCpus", number: false },
  cpuShares: { flag: "--cpu-shares", limit: "cpuShares", number: true },
  pidsLimit: { flag: "--pids-limit", limit: "pids", number: true },
  blkioWeight: { flag: "--blkio-weight", limit: "blkioWeight", number: true },
};

/** Runs a library check, turning its InvalidArgumentError into a usage error that names the flag. */
function cliValue<T>(check: () => T, flag: string, value: string): T {
  try {
    return check();
  } catch (err) {
    if (!isErrorCode(err, "invalid_argument")) throw err;
    const flagOf = (limit: string) =>
      Object.values(RESOURCE_FLAGS).find((entry) => entry.limit === limit)?.flag ?? limit;
    const why = (err as Error).message
      .replace(/^resources\.\w+: /, "")
      .replace(/resources\.(\w+)/g, (_, limit: string) => flagOf(limit));
    throw usageError(`invalid ${flag} ${JSON.stringify(value)}: ${why}`);
  }
}

/** The flags as the library's docker-style limits, checked as the library checks them (names are flags). */
export function resourcesFromFlags(flags: ResourceFlags): ResourceLimits | undefined {
  const limits: Record<string, string | number> = {};
  for (const [key, { flag, limit, number }] of Object.entries(RESOURCE_FLAGS)) {
    const value = flags[key as keyof ResourceFlags];
    if (value === undefined) continue;
    limits[limit] = number ? (value.trim() === "" ? Number.NaN : Number(value)) : value;
    // Each flag alone first, so the message names the flag that is wrong.
    if (limit !== "memorySwap" && limit !== "memoryReservation")
      cliValue(() => linuxResources({ [limit]: limits[limit] } as ResourceLimits), flag, value);
  }
  if (Object.keys(limits).length === 0) return undefined;
  const all = limits as ResourceLimits;
  const swap = flags.memorySwap ?? flags.memoryReservation ?? "";
  cliValue(() => linuxResources(all), flags.memorySwap ? "--memory-swap" : "--memory-reservation", swap);
  return all;
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "fond",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "nimble",
  "proud",
  "quiet",
  "sharp",
  "swift",
  "witty",
];
const NOUNS = [
  "otter",
  "falcon",
  "badger",
  "heron",
  "lynx",
  "marten",
  "osprey",
  "panda",
  "raven",
  "seal",
  "tapir",
  "wren",
  "yak",
  "zebu",
  "koala",
  "ibis",
];

/** A name like `swift-otter-3f9a`: easy to type, unlikely to collide. */
export function generateName(): string {
  const [a = 0, b = 0] = randomBytes(2);
  return `${ADJECTIVES[a % ADJECTIVES.length]}-${NOUNS[b % NOUNS.length]}-${randomBytes(2).toString("hex")}`;
}

/** `ctrd run`'s privilege, device, rlimit, sysctl and namespace flags, as docker names them. */
export interface RunOptionFlags {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  device?: string[];
  deviceCgroupRule?: string[];
  ulimit?: string[];
  shmSize?: string;
  sysctl?: string[];
  securityOpt?: string[];
  pid?: string;
  ipc?: string;
  uts?: string;
  groupAdd?: string[];
  oomScoreAdj?: string;
}

/** The library option each flag sets: its errors name the option, a usage error names the flag. */
const RUN_OPTION_FLAGS: Record<string, string> = {
  capAdd: "--cap-add",
  capDrop: "--cap-drop",
  devices: "--device",
  deviceCgroupRules: "--device-cgroup-rule",
  ulimits: "--ulimit",
  shmSize: "--shm-size",
  sysctls: "--sysctl",
  pid: "--pid",
  ipc: "--ipc",
  uts: "--uts",
  groupAdd: "--group-add",
  oomScoreAdj: "--oom-score-adj",
};

/**
 * The flags as the library's LinuxRunOptions, checked now (a spec is made and thrown away): a bad value
 * is a usage error naming its flag before anything exists. Group names are looked up in a rootfs
 * directory's /etc/group; an image's are not read here, so with an image --group-add takes ids.
 */
export function runOptionsFromFlags(
  flags: RunOptionFlags,
  rootfs: string | undefined,
): LinuxRunOptions | undefined {
  const options: LinuxRunOptions = {};
  if (flags.privileged) options.privileged = true;
  if (flags.capAdd?.length) options.capAdd = flags.capAdd;
  if (flags.capDrop?.length) options.capDrop = flags.capDrop;
  if (flags.device?.length) options.devices = flags.device;
  if (flags.deviceCgroupRule?.length) options.deviceCgroupRules = flags.deviceCgroupRule;
  if (flags.ulimit?.length)
    options.ulimits = flags.ulimit.map((value) =>
      runOptionValue(() => parseUlimit(value), "--ulimit", value),
    );
  if (flags.shmSize !== undefined) options.shmSize = parseSize(flags.shmSize, "--shm-size");
  if (flags.sysctl?.length) {
    const sysctls: Record<string, string> = {};
    for (const entry of flags.sysctl) {
      const at = entry.indexOf("=");
      if (at <= 0) throw usageError(`invalid --sysctl ${JSON.stringify(entry)}: want NAME=VALUE`);
      sysctls[entry.slice(0, at)] = entry.slice(at + 1);
    }
    options.sysctls = sysctls;
  }
  for (const name of ["pid", "ipc", "uts"] as const) {
    const value = flags[name];
    if (value === undefined || value === "" || (name === "ipc" && ["private", "shareable"].includes(value)))
      continue;
    if (name === "ipc" && value === "none") {
      options.ipc = "none";
      continue;
    }
    if (value !== "host")
      throw usageError(
        `invalid --${name} ${JSON.stringify(value)}: want host${name === "ipc" ? " or none" : ""}`,
      );
    options[name] = "host";
  }
  if (flags.groupAdd?.length) {
    options.groupAdd = flags.groupAdd.map((group) => {
      if (/^\d+$/.test(group)) return Number(group);
      const found = rootfs === undefined ? undefined : lookupId(join(rootfs, "etc/group"), group);
      if (found === undefined)
        throw usageError(
          rootfs === undefined
            ? `--group-add ${group}: with an image, give the group's id`
            : `--group-add ${group}: no group ${JSON.stringify(group)} in ${join(rootfs, "etc/group")}`,
        );
      return found;
    });
  }
  if (flags.oomScoreAdj !== undefined) options.oomScoreAdj = Number(flags.oomScoreAdj);
  for (const opt of flags.securityOpt ?? [])
    runOptionValue(() => applySecurityOpt(withSeccompFile(opt), options), "--security-opt", opt);
  if (Object.keys(options).length === 0) return undefined;
  runOptionValue(() => defaultLinuxSpec({ args: ["true"], rootfs: "/", ...options }), "", "");
  return options;
}

function runOptionValue<T>(check: () => T, flag: string, value: string): T {
  try {
    return check();
  } catch (err) {
    if (!isErrorCode(err, "invalid_argument") && !isErrorCode(err, "not_implemented")) throw err;
    const message = (err as Error).message;
    const option = /^(\w+): /.exec(message)?.[1];
    const named = option ? RUN_OPTION_FLAGS[option] : undefined;
    if (named) throw usageError(`invalid ${named}: ${message.slice((option?.length ?? 0) + 2)}`);
    throw usageError(flag ? `invalid ${flag} ${JSON.stringify(value)}: ${message}` : message);
  }
}

/** `seccomp=FILE` as the docker CLI sends it: the file's content (a profile), read here. */
function withSeccompFile(opt: string): string {
  const match = /^seccomp[=:](.*)$/s.exec(opt);
  const file = match?.[1];
  if (file === undefined || file === "unconfined" || file === "builtin") return opt;
  try {
    return `seccomp=${readFileSync(file, "utf8")}`;
  } catch (err) {
    throw usageError(`invalid --security-opt ${opt}: ${(err as Error).message}`);
  }
}
