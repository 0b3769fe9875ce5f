import type { OciMount, OciSpec } from "./spec.js";

export const OCI_VERSION = "1.0.2-dev";

/** The capabilities Docker and ctr grant by default. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const DEFAULT_MOUNTS: readonly OciMount[] = [
  { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
  {
    destination: "/dev",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
  },
  {
    destination: "/dev/pts",
    type: "devpts",
    source: "devpts",
    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
  },
  {
    destination: "/dev/shm",
    type: "tmpfs",
    source: "shm",
    options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
  },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  {
    destination: "/run",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
  },
];

const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
];

const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

export interface LinuxSpecOptions {
  args: string[];
  /** Absolute host path of the root filesystem (no snapshotter: runc uses it as-is). */
  rootfs: string;
  readonlyRootfs?: boolean;
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  hostname?: string;
  /** cgroupsPath; conventionally `/<namespace>/<id>`. */
  cgroupsPath?: string;
  mounts?: OciMount[];
  /** Share the host's network namespace instead of creating one. */
  hostNetwork?: boolean;
  annotations?: Record<string, string>;
}

/** A spec modelled on containerd's default (what `ctr run --rootfs` sends), which runc and crun run as-is. */
export function defaultLinuxSpec(opts: LinuxSpecOptions): OciSpec {
  const caps = [...DEFAULT_CAPABILITIES];
  const env = opts.env ?? [];
  const namespaces = ["pid", "ipc", "uts", "mount", ...(opts.hostNetwork ? [] : ["network"])].map((type) => ({
    type,
  }));
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: opts.user?.uid ?? 0, gid: opts.user?.gid ?? 0, additionalGids: opts.user?.additionalGids },
      args: [...opts.args],
      env: env.some((e) => e.startsWith("PATH=")) ? [...env] : [DEFAULT_PATH_ENV, ...env],
      cwd: opts.cwd ?? "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs, readonly: opts.readonlyRootfs ?? false },
    hostname: opts.hostname,
    mounts: [
      ...DEFAULT_MOUNTS.map((m) => ({ ...m, options: [...(m.options ?? [])] })),
      ...(opts.mounts ?? []),
    ],
    annotations: opts.annotations,
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      cgroupsPath: opts.cgroupsPath,
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

export interface WindowsSpecOptions {
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  username?: string;
  hostname?: string;
  /** Read-only layers first, the writable sandbox layer last (as the OCI spec orders them). */
  layerFolders?: string[];
  /** Hyper-V isolation. */
  hyperv?: boolean;
  mounts?: OciMount[];
  memoryLimitBytes?: number;
  cpuCount?: number;
}

export function defaultWindowsSpec(opts: WindowsSpecOptions): OciSpec {
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0, username: opts.username ?? "ContainerUser" },
      args: opts.args ? [...opts.args] : undefined,
      commandLine: opts.commandLine,
      env: opts.env ? [...opts.env] : [],
      cwd: opts.cwd ?? "C:\\",
    },
    hostname: opts.hostname,
    mounts: opts.mounts ?? [],
    windows: {
      layerFolders: opts.layerFolders ?? [],
      hyperv: opts.hyperv ? {} : undefined,
      resources:
        opts.memoryLimitBytes !== undefined || opts.cpuCount !== undefined
          ? {
              memory: opts.memoryLimitBytes !== undefined ? { limit: opts.memoryLimitBytes } : undefined,
              cpu: opts.cpuCount !== undefined ? { count: opts.cpuCount } : undefined,
            }
          : undefined,
    },
  };
}
