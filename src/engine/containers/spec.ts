import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LinuxResources } from "../../libcontainerd/types/resources.js";
import { DEFAULT_PATH_ENV, defaultLinuxSpec } from "../../oci/defaults.js";
import type { SeccompProfile } from "../../oci/seccomp.js";
import type { OciMount, OciSpec } from "../../oci/spec.js";
import { badRequest } from "../errors.js";
import type { ImageConfig, PreparedRootfs } from "../image-source.js";
import { type ContainerConfig, type HostConfig, parseBind } from "./config.js";
import { mergeHealthConfig } from "./health.js";
import { hostRunOptions } from "./host-options.js";
import { bindShm } from "./shared-namespaces.js";
import type { MountPoint } from "./volume-mounts.js";

/**
 * The container's config completed from its image's, as dockerd keeps it (daemon/commit.go merge,
 * daemon/create.go mergeAndVerifyConfig): inspect shows the Cmd, Env, WorkingDir, StopSignal … the
 * container runs with. An Entrypoint of [""] (`--entrypoint ""`) clears the image's and keeps the Cmd.
 */
export function withImageConfig(config: ContainerConfig, image: ImageConfig): ContainerConfig {
  const merged: ContainerConfig = { ...config, Labels: { ...image.Labels, ...config.Labels } };
  if (merged.User === "") merged.User = image.User ?? "";
  const exposed = { ...image.ExposedPorts, ...config.ExposedPorts };
  merged.ExposedPorts = Object.keys(exposed).length > 0 ? exposed : null;
  if (!config.Env || config.Env.length === 0) merged.Env = image.Env ?? config.Env;
  else {
    const keys = new Set(config.Env.map((entry) => entry.split("=", 1)[0]));
    merged.Env = [...config.Env, ...(image.Env ?? []).filter((entry) => !keys.has(entry.split("=", 1)[0]))];
  }
  if (!config.Entrypoint || config.Entrypoint.length === 0) {
    if (!config.Cmd || config.Cmd.length === 0) merged.Cmd = image.Cmd ?? config.Cmd;
    if (config.Entrypoint === null) merged.Entrypoint = image.Entrypoint ?? null;
  }
  if (merged.Entrypoint?.length === 1 && merged.Entrypoint[0] === "") merged.Entrypoint = null;
  if (merged.WorkingDir === "") merged.WorkingDir = image.WorkingDir ?? "";
  // The image's VOLUMEs join the container's (daemon/commit.go merge): each becomes an anonymous volume.
  if (image.Volumes) merged.Volumes = { ...config.Volumes, ...image.Volumes };
  if (!merged.StopSignal && image.StopSignal) merged.StopSignal = image.StopSignal;
  const healthcheck = mergeHealthConfig(config.Healthcheck, image.Healthcheck);
  if (healthcheck) merged.Healthcheck = healthcheck;
  commandOf(merged);
  return merged;
}

/** What a (merged) container config runs: its Entrypoint, then its Cmd. */
export function commandOf(config: ContainerConfig): { path: string; args: string[] } {
  const [path, ...args] = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (path === undefined || path === "") throw badRequest("No command specified");
  return { path, args };
}

/** The image's Env, overridden key by key by the container's (as dockerd merges them). */
export function mergeEnv(imageEnv: readonly string[], containerEnv: readonly string[]): string[] {
  const byKey = new Map<string, string>();
  for (const entry of [...imageEnv, ...containerEnv]) {
    const key = entry.split("=", 1)[0] ?? entry;
    if (entry.includes("=")) byKey.set(key, entry);
  }
  return [...byKey.values()];
}

export interface SpecInputs {
  id: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  image: ImageConfig;
  rootfs: PreparedRootfs;
  /** Its volumes, bound from their data directories. */
  volumes?: readonly MountPoint[];
  /** The containerd namespace: containers' cgroups go under /<namespace>. */
  namespace: string;
  /** The user, resolved from the image's accounts (when it is a name), with the groups it is a member of. */
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /** The seccomp profile of containers whose request names none (dockerd's default profile). */
  defaultSeccomp?: SeccompProfile;
  /** A shareable container's /dev/shm on the host (IpcMode shareable), bound as its /dev/shm. */
  shmPath?: string;
  /** A static init (tini) to run as pid 1 when HostConfig.Init asks for it. */
  initBinary?: string;
  /** The network namespace to join (none: a new one, with only loopback; "host": the host's). */
  network: {
    netnsPath?: string;
    host: boolean;
    hostsPath?: string;
    resolvConfPath?: string;
    hostnamePath?: string;
  };
}

const CPU_PERIOD_US = 100_000;

export function resourcesOf(hostConfig: HostConfig): LinuxResources {
  const resources: LinuxResources = {};
  if (hostConfig.Memory > 0) resources.memory = { limit: hostConfig.Memory };
  if (hostConfig.NanoCpus > 0) {
    if (hostConfig.CpuQuota > 0)
      throw badRequest("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    resources.cpu = { quota: Math.round((hostConfig.NanoCpus / 1e9) * CPU_PERIOD_US), period: CPU_PERIOD_US };
  } else if (hostConfig.CpuQuota > 0) {
    resources.cpu = { quota: hostConfig.CpuQuota, period: hostConfig.CpuPeriod || CPU_PERIOD_US };
  }
  if (hostConfig.CpuShares > 0) resources.cpu = { ...resources.cpu, shares: hostConfig.CpuShares };
  if (hostConfig.PidsLimit !== null && hostConfig.PidsLimit > 0)
    resources.pids = { limit: hostConfig.PidsLimit };
  const cpuset = { cpus: hostConfig.CpusetCpus, mems: hostConfig.CpusetMems };
  for (const [key, value] of Object.entries(cpuset))
    if (typeof value === "string" && value !== "") resources.cpu = { ...resources.cpu, [key]: value };
  const memory = { ...resources.memory };
  const positive = (value: unknown): value is number => typeof value === "number" && value > 0;
  if (positive(hostConfig.MemoryReservation)) memory.reservation = hostConfig.MemoryReservation;
  // -1: unlimited swap; otherwise memory plus swap, at least Memory (checked at create).
  if (positive(hostConfig.MemorySwap) || hostConfig.MemorySwap === -1) memory.swap = hostConfig.MemorySwap;
  if (typeof hostConfig.MemorySwappiness === "number" && hostConfig.MemorySwappiness >= 0)
    memory.swappiness = hostConfig.MemorySwappiness;
  if (hostConfig.OomKillDisable === true) memory.disableOOMKiller = true;
  if (Object.keys(memory).length > 0) resources.memory = memory;
  if (positive(hostConfig.BlkioWeight)) resources.blockIO = { weight: hostConfig.BlkioWeight };
  return resources;
}

/**
 * The limits for a task that may carry others already (an update; the next start of a container updated
 * since create, whose containerd spec has create's): as resourcesOf, but a pids limit of 0 or less lifts
 * one (-1: runc writes "max"), where at create it is simply not set.
 */
export function updatedResourcesOf(hostConfig: HostConfig): LinuxResources {
  const resources = resourcesOf(hostConfig);
  if (hostConfig.PidsLimit !== null && hostConfig.PidsLimit <= 0) resources.pids = { limit: -1 };
  return resources;
}

/** `uid[:gid]`, names looked up in the rootfs (when it is a directory we can read). */
/**
 * A process's user with its primary group first among its supplementary ones, as dockerd's getUser
 * makes it (and containerd's spec options since CVE-2023-25173): without it, a process that changes
 * its gid loses the primary group, and a file whose group denies that group (mode 0707) opens to it.
 */
export function withPrimaryGroup<User extends { uid: number; gid: number; additionalGids?: number[] }>(
  user: User,
): User & { additionalGids: number[] } {
  return { ...user, additionalGids: [...new Set([user.gid, ...(user.additionalGids ?? [])])] };
}

export function resolveUser(user: string, rootfsDir: string | undefined): { uid: number; gid: number } {
  if (user === "") return { uid: 0, gid: 0 };
  const [userPart = "", groupPart] = user.split(":", 2);
  const lookup = (file: string, name: string, column: number): number | undefined => {
    if (/^\d+$/.test(name)) return Number(name);
    if (rootfsDir === undefined) return undefined;
    try {
      for (const line of readFileSync(join(rootfsDir, file), "utf8").split("\n")) {
        const fields = line.split(":");
        if (fields[0] === name && /^\d+$/.test(fields[column] ?? "")) return Number(fields[column]);
      }
    } catch {}
    return undefined;
  };
  const uid = userPart === "root" ? 0 : lookup("etc/passwd", userPart, 2);
  if (uid === undefined)
    throw badRequest(`unable to find user ${userPart}: no matching entries in passwd file`);
  let gid: number | undefined;
  if (groupPart !== undefined && groupPart !== "") {
    gid = groupPart === "root" ? 0 : lookup("etc/group", groupPart, 2);
    if (gid === undefined)
      throw badRequest(`unable to find group ${groupPart}: no matching entries in group file`);
  } else {
    gid = /^\d+$/.test(userPart) ? 0 : (lookup("etc/passwd", userPart, 3) ?? 0);
  }
  return { uid, gid };
}

function bindMounts(hostConfig: HostConfig): OciMount[] {
  return (hostConfig.Binds ?? []).flatMap((spec) => {
    const bind = parseBind(spec);
    if (bind.type === "volume") return [];
    return {
      destination: bind.destination,
      type: "bind",
      source: bind.source,
      options: ["rbind", "rprivate", bind.readonly ? "ro" : "rw"],
    };
  });
}

/** HostConfig.Mounts and HostConfig.Tmpfs, as dockerd mounts them (tmpfs: noexec, nosuid, nodev by default). */
function requestedMounts(hostConfig: HostConfig): OciMount[] {
  const mounts: OciMount[] = (hostConfig.Mounts ?? []).flatMap((mount) => {
    if (mount.Type === "volume") return [];
    if (mount.Type === "bind")
      return {
        destination: mount.Target,
        type: "bind",
        source: mount.Source,
        options: ["rbind", "rprivate", mount.ReadOnly ? "ro" : "rw"],
      };
    const size = mount.TmpfsOptions?.SizeBytes;
    const mode = mount.TmpfsOptions?.Mode;
    return {
      destination: mount.Target,
      type: "tmpfs",
      source: "tmpfs",
      options: [
        "noexec",
        "nosuid",
        "nodev",
        ...(mount.ReadOnly ? ["ro"] : []),
        ...(size !== undefined ? [`size=${size}`] : []),
        ...(mode !== undefined ? [`mode=${mode.toString(8)}`] : []),
      ],
    };
  });
  for (const [destination, options] of Object.entries(hostConfig.Tmpfs ?? {}))
    mounts.push({
      destination,
      type: "tmpfs",
      source: "tmpfs",
      options: ["noexec", "nosuid", "nodev", ...options.split(",").filter((option) => option !== "")],
    });
  return mounts;
}

function fileMount(destination: string, source: string | undefined): OciMount[] {
  return source ? [{ destination, type: "bind", source, options: ["rbind", "rprivate", "rw"] }] : [];
}

export const INIT_PATH = "/sbin/docker-init";

/** The OCI spec for a Docker container: Docker's defaults, the image's config, the container's. */
export function buildSpec(inputs: SpecInputs): {
  spec: OciSpec;
  path: string;
  args: string[];
  env: string[];
} {
  const { config, hostConfig, image } = inputs;
  const { path, args } = commandOf(config);
  const hostname = config.Hostname || inputs.id.slice(0, 12);
  const env = mergeEnv(image.Env ?? [DEFAULT_PATH_ENV], config.Env ?? []);
  if (!env.some((entry) => entry.startsWith("PATH="))) env.unshift(DEFAULT_PATH_ENV);
  env.push(`HOSTNAME=${hostname}`);
  if (config.Tty && !env.some((entry) => entry.startsWith("TERM="))) env.push("TERM=xterm");
  const init = hostConfig.Init === true && inputs.initBinary !== undefined;
  const { options: runOptions } = hostRunOptions(hostConfig, "", inputs.defaultSeccomp);
  // Outermost first, as dockerd's sortMounts: a volume at /a, then a bind at /a/b on it.
  const depth = (mount: OciMount): number => mount.destination.split("/").filter(Boolean).length;
  const userMounts = [
    ...bindMounts(hostConfig),
    ...requestedMounts(hostConfig),
    ...(inputs.volumes ?? []).map(
      (volume): OciMount => ({
        destination: volume.Destination,
        type: "bind",
        source: volume.Source,
        options: ["rbind", "rprivate", volume.RW ? "rw" : "ro"],
      }),
    ),
  ].sort((a, b) => depth(a) - depth(b));
  const mounts: OciMount[] = [
    // dockerd's default spec: the container's own cgroups, read-only (the JVM, Go and Node read their
    // limits there). Before the requested mounts, which may cover it.
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
    ...userMounts,
    ...fileMount("/etc/hosts", inputs.network.hostsPath),
    ...fileMount("/etc/resolv.conf", inputs.network.resolvConfPath),
    ...fileMount("/etc/hostname", inputs.network.hostnamePath),
    ...(init && inputs.initBinary
      ? [{ destination: INIT_PATH, type: "bind", source: inputs.initBinary, options: ["bind", "ro"] }]
      : []),
  ];
  const spec = defaultLinuxSpec({
    args: init ? [INIT_PATH, "--", path, ...args] : [path, ...args],
    rootfs: inputs.rootfs.kind === "directory" ? inputs.rootfs.path : "rootfs",
    readonlyRootfs: hostConfig.ReadonlyRootfs,
    env,
    cwd: config.WorkingDir || image.WorkingDir || "/",
    terminal: config.Tty,
    user:
      inputs.user ??
      resolveUser(
        config.User || image.User || "",
        inputs.rootfs.kind === "directory" ? inputs.rootfs.path : undefined,
      ),
    hostname,
    cgroupsPath: `/${inputs.namespace}/${inputs.id}`,
    mounts,
    hostNetwork: inputs.network.host,
    ...runOptions,
  });
  if (inputs.network.netnsPath && spec.linux?.namespaces) {
    spec.linux.namespaces = spec.linux.namespaces.map((ns) =>
      ns.type === "network" ? { type: "network", path: inputs.network.netnsPath } : ns,
    );
  }
  if (inputs.shmPath) bindShm(spec, inputs.shmPath);
  if (spec.process) spec.process.user = withPrimaryGroup(spec.process.user);
  const resources = resourcesOf(hostConfig);
  if (spec.linux) spec.linux.resources = { ...spec.linux.resources, ...resources };
  return { spec, path, args, env };
}
