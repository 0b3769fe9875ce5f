import {
  type BigIntStats,
  type Dirent,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  realpathSync,
  type Stats,
  statSync,
} from "node:fs";
import { isAbsolute, join } from "node:path";
import { InvalidArgumentError, NotImplementedError } from "../errors.js";
import { DEFAULT_CAPABILITIES } from "./defaults.js";
import { parseSize } from "./resources.js";
import { ociSeccomp, parseSeccompProfile, type SeccompProfile } from "./seccomp.js";
import type { OciLinux, OciSpec } from "./spec.js";

/**
 * What `docker run` sets beyond limits: privileges, devices, process limits, kernel parameters and the
 * namespaces a container shares with the host, with docker's flag names in camelCase. Checked up front:
 * a bad value is an InvalidArgumentError naming the option, never a failure deep inside runc.
 */
export interface LinuxRunOptions {
  /** `--privileged`: every capability, every host device, no masked paths, /sys writable. */
  privileged?: boolean;
  /** `--cap-add`: `NET_ADMIN` or `CAP_NET_ADMIN`, any case; `ALL` for every capability. */
  capAdd?: readonly string[];
  /** `--cap-drop`: as capAdd; `ALL` drops the defaults (capAdd still adds). */
  capDrop?: readonly string[];
  /** `--device HOST[:CONTAINER][:PERMISSIONS]` (permissions of r, w, m; default rwm); a directory adds the devices in it. */
  devices?: readonly string[];
  /** `--device-cgroup-rule 'c 1:3 rwm'`: devices the container may use (major or minor `*` for any). */
  deviceCgroupRules?: readonly string[];
  /** `--ulimit nofile=1024:2048`: the process's rlimits, replacing the default of the same name. */
  ulimits?: readonly Ulimit[];
  /** `--shm-size`: /dev/shm's size, bytes or a size such as `"256m"` (default 64m). */
  shmSize?: number | string;
  /** `--sysctl`: namespaced kernel parameters (`net.*`, `fs.mqueue.*`, the IPC `kernel.*` ones). */
  sysctls?: Readonly<Record<string, string>>;
  /**
   * `--pid host`, `--ipc host`, `--uts host`: the host's namespace instead of a new one; a path
   * (`--pid container:X`: `/proc/PID/ns/pid` of X's process) joins that namespace. `--ipc none`: an IPC
   * namespace of its own without /dev/shm (moby's WithMounts leaves the default one out).
   */
  pid?: "host" | NamespacePath;
  ipc?: "host" | "none" | NamespacePath;
  uts?: "host";
  /** `--group-add`: supplementary group ids. */
  groupAdd?: readonly number[];
  /** `--oom-score-adj`: -1000 to 1000. */
  oomScoreAdj?: number;
  /**
   * `--security-opt no-new-privileges`: setuid binaries and file capabilities no longer raise privileges.
   * Default true (containerd's default spec, what ctr runs); docker's default is false.
   */
  noNewPrivileges?: boolean;
  /**
   * Paths under /proc and /sys hidden from the container, and those it may only read, instead of the
   * defaults (`--security-opt systempaths=unconfined`: both empty). A privileged container has none.
   */
  maskedPaths?: readonly string[];
  readonlyPaths?: readonly string[];
  /**
   * `--security-opt seccomp=…`: a profile in docker's format (findDefaultSeccompProfile finds the
   * distribution's default), resolved for the container's capabilities; default none, as ctr. A
   * privileged container has none, as with docker.
   */
  seccomp?: SeccompProfile | "unconfined";
}

/** A namespace to join: a file that holds it, such as `/proc/PID/ns/net` or a bind-mounted netns. */
export interface NamespacePath {
  path: string;
}

/** The namespace types a container may join by path, in the spec's (and runc's) names. */
export type JoinableNamespace = "network" | "pid" | "ipc";

/**
 * Makes the spec join these namespaces instead of creating its own (runc's `setns`): how a container
 * shares another's network, PID or IPC namespace (`docker run --network/--pid/--ipc container:X`).
 * A namespace the spec does not create (the host's) is added, as joining replaces sharing the host's.
 */
export function joinNamespaces(spec: OciSpec, paths: Partial<Record<JoinableNamespace, string>>): void {
  const linux = spec.linux;
  if (!linux) return;
  for (const [type, path] of Object.entries(paths)) {
    if (path === undefined) continue;
    if (!isAbsolute(path)) throw invalid(type, `${JSON.stringify(path)}: a namespace path must be absolute`);
    linux.namespaces = [
      ...(linux.namespaces ?? []).filter((namespace) => namespace.type !== type),
      { type, path },
    ];
  }
}

export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** The kernel's capabilities in bit order (linux/capability.h): the index is the capability's number. */
const CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
  "PERFMON",
  "BPF",
  "CHECKPOINT_RESTORE",
].map((name) => `CAP_${name}`);

/**
 * The capabilities this process can give: those of the kernel (up to /proc/sys/kernel/cap_last_cap) in
 * its effective set, as moby's GetAllCapabilities (containerd's cap.Current). runc cannot raise one it
 * lacks ("unable to apply caps: operation not permitted"), as where ctrd itself runs in a container
 * or the host's kernel holds one back. Unreadable: every known one (moby's fallback).
 */
function availableCapabilities(): string[] {
  available ??= readAvailableCapabilities();
  return [...available];
}

/** Read once, as moby's initCaps: a process's capabilities do not grow. */
let available: readonly string[] | undefined;

function readAvailableCapabilities(): string[] {
  try {
    const last = Number.parseInt(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"), 10);
    const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (line?.[1] && Number.isInteger(last)) {
      const effective = BigInt(`0x${line[1]}`);
      return CAPABILITIES.filter((_, bit) => bit <= last && (effective >> BigInt(bit)) & 1n);
    }
  } catch {}
  return [...CAPABILITIES];
}

/**
 * moby's NormalizeLegacyCapabilities for one name: `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` →
 * `CAP_NET_ADMIN`, `ALL` as it is; else its error, in its words: a name no kernel has, or one this
 * kernel or environment cannot give (which runc would fail to apply at start).
 */
function capabilityName(name: string): { name: string } | { error: string } {
  const upper = name.toUpperCase();
  if (upper === "ALL") return { name: upper };
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!CAPABILITIES.includes(full)) return { error: `unknown capability: ${JSON.stringify(full)}` };
  if (!availableCapabilities().includes(full))
    return {
      error: `capability not supported by your kernel or not available in the current environment: ${JSON.stringify(full)}`,
    };
  return { name: full };
}

/** moby's error for a CapAdd or CapDrop name (without its `invalid CapAdd: `), or undefined for a good one. */
export function capabilityError(name: string): string | undefined {
  const checked = capabilityName(name);
  return "error" in checked ? checked.error : undefined;
}

function normalizeCapability(name: string, option: string): string {
  const checked = capabilityName(name);
  if ("error" in checked) throw invalid(option, checked.error);
  return checked.name;
}

/**
 * moby's TweakCapabilities: the defaults (or all it can give, with add ALL), plus what is added, less
 * what is dropped; a privileged container has all it can give, whatever is dropped (as dockerd, which
 * checks neither list).
 */
export function capabilitiesOf(options: LinuxRunOptions): string[] {
  if (options.privileged) return availableCapabilities();
  const add = (options.capAdd ?? []).map((name) => normalizeCapability(name, "capAdd"));
  const drop = (options.capDrop ?? []).map((name) => normalizeCapability(name, "capDrop"));
  if (add.includes("ALL")) return availableCapabilities().filter((cap) => !drop.includes(cap));
  const base = drop.includes("ALL") ? [] : DEFAULT_CAPABILITIES.filter((cap) => !drop.includes(cap));
  return [...new Set([...base, ...add.filter((cap) => cap !== "ALL")])];
}

const ULIMITS = new Set([
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
]);

/** `nofile=1024[:2048]` (go-units' ParseUlimit; -1 for unlimited). */
export function parseUlimit(text: string): Ulimit {
  const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(text.trim());
  if (!match)
    throw invalid("ulimits", `invalid ulimit argument: ${JSON.stringify(text)} (want name=soft[:hard])`);
  const soft = Number(match[2]);
  return checkUlimit({ name: match[1] ?? "", soft, hard: match[3] === undefined ? soft : Number(match[3]) });
}

function checkUlimit(ulimit: Ulimit): Ulimit {
  if (!ULIMITS.has(ulimit.name)) throw invalid("ulimits", `invalid ulimit type: ${ulimit.name}`);
  for (const value of [ulimit.soft, ulimit.hard])
    if (!Number.isSafeInteger(value) || value < -1)
      throw invalid("ulimits", `${ulimit.name}: ${value} is not a limit (a count, or -1 for unlimited)`);
  const unlimited = (value: number) => (value === -1 ? Number.POSITIVE_INFINITY : value);
  if (unlimited(ulimit.soft) > unlimited(ulimit.hard))
    throw invalid(
      "ulimits",
      `ulimit soft limit must be less than or equal to hard limit: ${ulimit.soft} > ${ulimit.hard}`,
    );
  return ulimit;
}

/** rlimits are unsigned: -1 (unlimited) is RLIM_INFINITY, 2^64-1 (moby: uint64(-1)). */
const RLIM_INFINITY = 2n ** 64n - 1n;

/** The IPC sysctls of kernel.*, which the IPC namespace holds (runc's validator and moby's list). */
const IPC_SYSCTLS = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

function checkSysctl(name: string, hostNetwork: boolean, hostIpc: boolean): void {
  if (IPC_SYSCTLS.has(name) || name.startsWith("fs.mqueue.")) {
    if (hostIpc)
      throw invalid("sysctls", `sysctl ${JSON.stringify(name)} is not allowed with the host's IPC namespace`);
    return;
  }
  if (name.startsWith("net.")) {
    if (hostNetwork)
      throw invalid(
        "sysctls",
        `sysctl ${JSON.stringify(name)} is not allowed in the host's network namespace`,
      );
    return;
  }
  throw invalid(
    "sysctls",
    `sysctl ${JSON.stringify(name)} is not namespaced: only net.*, fs.mqueue.* and the IPC kernel.* ones (${[...IPC_SYSCTLS].join(", ")}) are set per container`,
  );
}

type LinuxDevice = NonNullable<OciLinux["devices"]>[number];
type DeviceRule = NonNullable<NonNullable<OciLinux["resources"]>["devices"]>[number];

/**
 * A device node's OCI entry, or undefined when the path is none, as containerd's DeviceFromPath: by
 * lstat, so a symlink is not followed (/dev/stdout -> /proc/self/fd/1 would otherwise give the
 * container the engine's own stdout as a device node where it expects the link), and a FIFO or
 * major 0 is not a device (runc has no cgroup rule for a FIFO and would fail at start).
 */
function deviceAt(path: string, inContainer: string): LinuxDevice | undefined {
  let info: BigIntStats;
  try {
    info = lstatSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  const type = info.isCharacterDevice() ? "c" : info.isBlockDevice() ? "b" : undefined;
  if (!type) return undefined;
  // glibc's major()/minor() of a 64-bit dev_t.
  const rdev = info.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  if (major === 0) return undefined;
  return {
    path: inContainer,
    type,
    major,
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
    fileMode: Number(info.mode & 0o7777n),
    uid: Number(info.uid),
    gid: Number(info.gid),
  };
}

/** `--device HOST[:CONTAINER][:PERMISSIONS]`, as the docker CLI's ParseDevice and moby's devicesFromPath. */
export function devicesOf(spec: string): { devices: LinuxDevice[]; rules: DeviceRule[] } {
  const parts = spec.split(":");
  let permissions = "rwm";
  if (parts.length > 1 && /^[rwm]+$/.test(parts[parts.length - 1] ?? "")) permissions = parts.pop() ?? "rwm";
  if (parts.length > 2) throw invalid("devices", `invalid device specification: ${JSON.stringify(spec)}`);
  const [host = "", container = host] = parts;
  if (!isAbsolute(host) || !isAbsolute(container))
    throw invalid("devices", `${JSON.stringify(spec)}: the host and container paths must be absolute`);
  let resolved: string;
  let info: Stats;
  try {
    // moby resolves a symlink given as the host path (/dev/disk/by-id/…), and only that one.
    resolved = realpathSync(host);
    info = statSync(resolved);
  } catch (err) {
    throw invalid(
      "devices",
      `error gathering device information while adding custom device ${JSON.stringify(host)}: ${(err as Error).message}`,
    );
  }
  const found: LinuxDevice[] = [];
  if (info.isDirectory()) {
    // Every device below the directory, at the same place below the container path; links, FIFOs and
    // entries gone meanwhile are skipped, as moby's walk skips what DeviceFromPath refuses.
    found.push(...devicesUnder(resolved, container, new Set()));
  } else {
    const device = deviceAt(resolved, container);
    if (device) found.push(device);
  }
  if (found.length === 0)
    throw invalid(
      "devices",
      `error gathering device information while adding custom device ${JSON.stringify(host)}: not a device node`,
    );
  return {
    devices: found,
    rules: found.map(({ type, major, minor }) => ({ allow: true, type, major, minor, access: permissions })),
  };
}

/** moby's deviceCgroupRuleRegex: the type, major:minor (each a number or `*`), the access. */
const DEVICE_CGROUP_RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;

/** Device numbers are int64 in the OCI spec (moby's strconv.ParseInt(…, 10, 64)). */
const INT64_MAX = 2n ** 63n - 1n;

/**
 * `--device-cgroup-rule` as moby's AppendDevicePermissionsFromCgroupRules reads it: `TYPE MAJOR:MINOR
 * ACCESS` exactly (one space between, none around), `a` alone for `a *:* rwm` (the kernel's shorthand);
 * anything else is its error, in its words (what the engine answers; the library prefixes the option).
 */
function deviceCgroupRule(text: string): DeviceRule | string {
  const match = DEVICE_CGROUP_RULE.exec(text === "a" ? "a *:* rwm" : text);
  if (!match) return `invalid device cgroup rule format: '${text}'`;
  const [, type = "a", major = "*", minor = "*", access = "rwm"] = match;
  for (const [which, value] of [
    ["major", major],
    ["minor", minor],
  ] as const)
    if (value !== "*" && BigInt(value) > INT64_MAX)
      return `invalid ${which} value in device cgroup rule format: '${text}'`;
  return {
    allow: true,
    type,
    ...(major !== "*" ? { major: Number(major) } : {}),
    ...(minor !== "*" ? { minor: Number(minor) } : {}),
    access,
  };
}

/** moby's error for a `--device-cgroup-rule`, or undefined for a good one. */
export function deviceCgroupRuleError(text: string): string | undefined {
  const rule = deviceCgroupRule(text);
  return typeof rule === "string" ? rule : undefined;
}

/** `c 1:3 rwm`, `b *:* m`, `a` (moby's device cgroup rules). */
export function parseDeviceCgroupRule(text: string): DeviceRule {
  const rule = deviceCgroupRule(text);
  if (typeof rule === "string") throw invalid("deviceCgroupRules", rule);
  return rule;
}

/** The host's devices a privileged container gets: containerd's getDevices, which skips these. */
const NOT_PRIVILEGED_DEVICES = new Set([
  "pts",
  "shm",
  "fd",
  "mqueue",
  ".lxc",
  ".lxd-mounts",
  ".udev",
  "console",
]);

/**
 * The device nodes under `dir`, at the same place under `inContainer`, as containerd's getDevices and
 * moby's walk find them: directories by their entry's own type and devices by lstat, so no symlink is
 * followed (/dev/stdin, /dev/disk/by-id/…, a link to a directory, even one to a parent, where Node's
 * recursive readdir follows it) and each node is made once, where it is.
 */
function devicesUnder(dir: string, inContainer: string, skip: ReadonlySet<string>): LinuxDevice[] {
  const found: LinuxDevice[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (skip.has(entry.name)) continue;
    const path = join(dir, entry.name);
    const target = join(inContainer, entry.name);
    if (entry.isDirectory()) found.push(...devicesUnder(path, target, skip));
    else {
      const device = deviceAt(path, target);
      if (device) found.push(device);
    }
  }
  return found;
}

/** The host's devices, a privileged container's (containerd's HostDevices). */
export function hostDevices(dir = "/dev"): LinuxDevice[] {
  return devicesUnder(dir, dir, NOT_PRIVILEGED_DEVICES);
}

/** Applies the options to a spec made by defaultLinuxSpec (so with its defaults in place). */
export function applyLinuxRunOptions(spec: OciSpec, options: LinuxRunOptions): void {
  const proc = spec.process;
  const linux = spec.linux;
  if (!proc || !linux) return;
  const caps = capabilitiesOf(options);
  proc.capabilities = { bounding: caps, effective: caps, permitted: caps };
  if (options.noNewPrivileges !== undefined) proc.noNewPrivileges = options.noNewPrivileges;
  if (options.privileged) proc.noNewPrivileges = options.noNewPrivileges ?? false;
  if (options.seccomp && options.seccomp !== "unconfined" && !options.privileged)
    linux.seccomp = ociSeccomp(options.seccomp, { capabilities: caps });
  if (options.maskedPaths) linux.maskedPaths = [...options.maskedPaths];
  if (options.readonlyPaths) linux.readonlyPaths = [...options.readonlyPaths];
  if (options.privileged) {
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
  }
  const rules: DeviceRule[] = [];
  const devices: LinuxDevice[] = [];
  if (options.privileged) {
    devices.push(...hostDevices());
    rules.push({ allow: true, access: "rwm" });
    // moby: a privileged container's /sys (and cgroup mount) is writable.
    for (const mount of spec.mounts ?? [])
      if (mount.type === "sysfs" || mount.type === "cgroup")
        mount.options = (mount.options ?? []).filter((option) => option !== "ro");
  }
  for (const device of options.devices ?? []) {
    const found = devicesOf(device);
    devices.push(...found.devices);
    rules.push(...found.rules);
  }
  for (const rule of options.deviceCgroupRules ?? []) rules.push(parseDeviceCgroupRule(rule));
  if (devices.length > 0) {
    // A path named twice (privileged and --device) is made once: the last one given wins.
    const byPath = new Map((linux.devices ?? []).map((device) => [device.path, device]));
    for (const device of devices) byPath.set(device.path, device);
    linux.devices = [...byPath.values()];
  }
  if (rules.length > 0)
    linux.resources = { ...linux.resources, devices: [...(linux.resources?.devices ?? []), ...rules] };
  if (options.ulimits) {
    const given = options.ulimits.map(checkUlimit);
    const names = new Set(given.map((ulimit) => `RLIMIT_${ulimit.name.toUpperCase()}`));
    const infinity = (value: number) => (value === -1 ? RLIM_INFINITY : value);
    proc.rlimits = [
      ...(proc.rlimits ?? []).filter((rlimit) => !names.has(rlimit.type)),
      ...given.map((ulimit) => ({
        type: `RLIMIT_${ulimit.name.toUpperCase()}`,
        soft: infinity(ulimit.soft),
        hard: infinity(ulimit.hard),
      })),
    ];
  }
  if (options.oomScoreAdj !== undefined) {
    if (!Number.isInteger(options.oomScoreAdj) || options.oomScoreAdj < -1000 || options.oomScoreAdj > 1000)
      throw invalid("oomScoreAdj", `must be an integer from -1000 to 1000, not ${options.oomScoreAdj}`);
    proc.oomScoreAdj = options.oomScoreAdj;
  }
  if (options.groupAdd && options.groupAdd.length > 0) {
    for (const gid of options.groupAdd)
      if (!Number.isInteger(gid) || gid < 0 || gid > 0xffffffff)
        throw invalid("groupAdd", `${gid} is not a group id`);
    proc.user.additionalGids = [...new Set([...(proc.user.additionalGids ?? []), ...options.groupAdd])];
  }
  const dropNamespace = (type: string) => {
    linux.namespaces = (linux.namespaces ?? []).filter((namespace) => namespace.type !== type);
  };
  for (const [option, type] of [
    ["pid", "pid"],
    ["ipc", "ipc"],
    ["uts", "uts"],
  ] as const) {
    const value = options[option];
    if (value === undefined || (option === "ipc" && value === "none")) continue;
    if (value === "host") dropNamespace(type);
    else if (typeof value === "object" && option !== "uts") joinNamespaces(spec, { [type]: value.path });
    else
      throw invalid(
        option,
        `${JSON.stringify(value)}: "host"${option === "ipc" ? ', "none"' : ""} or a namespace path ({ path })`,
      );
  }
  if (options.uts === "host") delete spec.hostname;
  if (options.ipc === "host") {
    // The host's IPC namespace with the host's /dev/shm, as docker's --ipc host.
    spec.mounts = (spec.mounts ?? []).map((mount) =>
      mount.destination === "/dev/shm"
        ? { destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rbind", "rprivate", "rw"] }
        : mount,
    );
  } else if (options.ipc === "none") {
    // The default /dev/shm only: one the caller mounts there (a bind, --tmpfs /dev/shm) stays, as with moby.
    spec.mounts = (spec.mounts ?? []).filter(
      (mount) => !(mount.destination === "/dev/shm" && mount.type === "tmpfs" && mount.source === "shm"),
    );
  } else if (options.shmSize !== undefined) {
    const bytes = parseSize(options.shmSize, "shmSize");
    if (bytes <= 0) throw invalid("shmSize", `must be greater than 0, not ${String(options.shmSize)}`);
    for (const mount of spec.mounts ?? [])
      if (mount.destination === "/dev/shm" && mount.type === "tmpfs")
        mount.options = [
          ...(mount.options ?? []).filter((option) => !option.startsWith("size=")),
          `size=${bytes}`,
        ];
  }
  if (options.sysctls && Object.keys(options.sysctls).length > 0) {
    const hostNetwork = !(linux.namespaces ?? []).some((namespace) => namespace.type === "network");
    for (const [name, value] of Object.entries(options.sysctls)) {
      if (typeof value !== "string") throw invalid("sysctls", `${name}: the value must be a string`);
      checkSysctl(name, hostNetwork, options.ipc === "host");
    }
    linux.sysctl = { ...linux.sysctl, ...options.sysctls };
  }
}

/** `--security-opt` as moby's parseSecurityOpt (daemon/create.go) reads it: its keys, its errors. */
export function applySecurityOpt(opt: string, options: LinuxRunOptions): void {
  if (opt === "no-new-privileges") {
    options.noNewPrivileges = true;
    return;
  }
  // label=disable's old form: SELinux labels, which take effect only where SELinux is enabled (see "label").
  if (opt === "disable") return;
  const separator = opt.includes("=") ? "=" : ":";
  const at = opt.indexOf(separator);
  if (at < 0) throw new InvalidArgumentError(`invalid --security-opt 1: ${JSON.stringify(opt)}`);
  const key = opt.slice(0, at);
  const value = opt.slice(at + 1);
  switch (key) {
    case "no-new-privileges":
      if (!["true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"].includes(value))
        throw new InvalidArgumentError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
      options.noNewPrivileges = ["true", "1", "t", "TRUE", "True"].includes(value);
      return;
    case "systempaths":
      if (value !== "unconfined")
        throw new InvalidArgumentError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
      options.maskedPaths = [];
      options.readonlyPaths = [];
      return;
    case "seccomp":
      // The profile's JSON itself, as the docker CLI sends it (it reads the file), "unconfined", or
      // "builtin" (docker CLI 23+ sends the name): the default, the engine's profile as dockerd's.
      if (value === "builtin") delete options.seccomp;
      else
        options.seccomp =
          value === "unconfined" ? "unconfined" : parseSeccompProfile(value, "--security-opt seccomp");
      return;
    case "apparmor":
      // dockerd applies a profile only where AppArmor is enabled; elsewhere the option has no effect.
      if (value !== "unconfined" && appArmorEnabled())
        throw new NotImplementedError(
          "AppArmor profiles are not applied: only apparmor=unconfined is accepted",
        );
      return;
    case "label":
      // SELinux labels: dockerd ignores them where SELinux is not enabled, as on this host.
      if (selinuxEnabled()) throw new NotImplementedError("SELinux labels are not applied");
      return;
    default:
      throw new InvalidArgumentError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
  }
}

function appArmorEnabled(): boolean {
  try {
    return readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

function selinuxEnabled(): boolean {
  return existsSync("/sys/fs/selinux/enforce");
}

function invalid(option: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`${option}: ${message}`);
}
