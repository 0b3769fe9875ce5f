import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import type { ResourceLimits } from "../libcontainerd/types/resources.js";
import { applyLinuxRunOptions, type LinuxRunOptions } from "./linux-options.js";
import { linuxResources, windowsResources } from "./resources.js";
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
  // CVE-2020-8694/8695 (RAPL energy readings): masked by moby since 20.10 and containerd since 1.4.
  "/sys/devices/virtual/powercap",
];

const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** With docker run's privilege, device, rlimit, sysctl and host-namespace options (LinuxRunOptions). */
export interface LinuxSpecOptions extends LinuxRunOptions {
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
  /** Limits with docker's meaning (`memory: "64m"`, `cpus: 0.5`, `pids: 64`, …), checked here. */
  resources?: ResourceLimits;
  /**
   * Run a small init as PID 1 (docker's `--init`): it forwards signals to the command and reaps
   * zombies, so `sh` or a server that ignores SIGTERM as PID 1 still stops at once. `true` uses
   * the host's static tini (Debian's `tini` package); a string is the path of another static init
   * that takes `-- command…`. It is bind-mounted read-only at `/run/ctrd-init` (a tmpfs, so nothing
   * is written into the rootfs).
   */
  init?: boolean | string;
}

/** Where the init binary is mounted in the container (like podman's /run/podman-init). */
export const INIT_PATH = "/run/ctrd-init";
/** Static builds first: the rootfs may have no libc for a dynamic one. */
const INIT_CANDIDATES = ["/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init"];

/** The host path of the init binary `init: true` uses; FailedPreconditionError when there is none. */
export function findInitBinary(): string {
  const found = INIT_CANDIDATES.find((path) => existsSync(path));
  if (!found)
    throw new FailedPreconditionError(
      `init: no static init found (looked for ${INIT_CANDIDATES.join(", ")}); install Debian's tini, or pass init: "/path/to/static-init"`,
    );
  return found;
}

function initBinary(init: string | true): string {
  if (init === true) return findInitBinary();
  if (!isAbsolute(init) || !existsSync(init))
    throw new InvalidArgumentError(
      `init: ${JSON.stringify(init)} is not an absolute path to an existing file`,
    );
  return init;
}

/** A spec modelled on containerd's default (what `ctr run --rootfs` sends), which runc and crun run as-is. */
export function defaultLinuxSpec(opts: LinuxSpecOptions): OciSpec {
  const caps = [...DEFAULT_CAPABILITIES];
  const env = opts.env ?? [];
  const resources = opts.resources ? linuxResources(opts.resources) : {};
  const init = opts.init ? initBinary(opts.init) : undefined;
  const namespaces = ["pid", "ipc", "uts", "mount", ...(opts.hostNetwork ? [] : ["network"])].map((type) => ({
    type,
  }));
  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: opts.user?.uid ?? 0, gid: opts.user?.gid ?? 0, additionalGids: opts.user?.additionalGids },
      args: init ? [INIT_PATH, "--", ...opts.args] : [...opts.args],
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
      ...(init
        ? [
            {
              destination: INIT_PATH,
              type: "bind",
              source: init,
              options: ["rbind", "ro", "nosuid", "nodev"],
            },
          ]
        : []),
    ],
    annotations: opts.annotations,
    linux: {
      resources: { ...resources, devices: [{ allow: false, access: "rwm" }] },
      cgroupsPath: opts.cgroupsPath,
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  applyLinuxRunOptions(spec, opts);
  return spec;
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
  /** Limits with docker's meaning (`memory`, `cpus`, `cpuShares`), as docker on Windows maps them. */
  resources?: ResourceLimits;
}

export function defaultWindowsSpec(opts: WindowsSpecOptions): OciSpec {
  const limits = opts.resources ? windowsResources(opts.resources) : undefined;
  const spec: OciSpec = {
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
  if (limits && spec.windows) spec.windows.resources = { ...spec.windows.resources, ...limits };
  return spec;
}
