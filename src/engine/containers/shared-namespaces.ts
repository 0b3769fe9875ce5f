import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { type JoinableNamespace, joinNamespaces } from "../../oci/linux-options.js";
import type { OciSpec } from "../../oci/spec.js";
import { badRequest, conflict, EngineError } from "../errors.js";
import type { ContainerConfig, HostConfig } from "./config.js";
import { unmountAll } from "./filesystem.js";
import type { ContainerRecord } from "./store.js";

const execFileAsync = promisify(execFile);

const CONTAINER_PREFIX = "container:";

/** The container a `container:NAME|ID` mode names; undefined for any other mode. */
export function sharedWith(mode: unknown): string | undefined {
  return typeof mode === "string" && mode.startsWith(CONTAINER_PREFIX)
    ? mode.slice(CONTAINER_PREFIX.length)
    : undefined;
}

/** The containers whose namespaces this one joins at start, by the namespace's spec name. */
export function sharedNamespaces(hostConfig: HostConfig): Partial<Record<JoinableNamespace, string>> {
  const refs: Partial<Record<JoinableNamespace, string>> = {};
  const network = sharedWith(hostConfig.NetworkMode);
  const pid = sharedWith(hostConfig.PidMode);
  const ipc = sharedWith(hostConfig.IpcMode);
  if (network !== undefined) refs.network = network;
  if (pid !== undefined) refs.pid = pid;
  if (ipc !== undefined) refs.ipc = ipc;
  return refs;
}

/**
 * dockerd's adaptSharedNamespaceContainer: `container:NAME` modes name the container by its id, so that
 * the sharing survives a rename. `idOf` finds a container by name, id or id prefix (undefined: none,
 * left as given and refused at start).
 */
export function withDonorIds(hostConfig: HostConfig, idOf: (ref: string) => string | undefined): HostConfig {
  const adapted: HostConfig = { ...hostConfig };
  for (const key of ["NetworkMode", "PidMode", "IpcMode"] as const) {
    const ref = sharedWith(adapted[key]);
    const id = ref ? idOf(ref) : undefined;
    if (id) adapted[key] = `${CONTAINER_PREFIX}${id}`;
  }
  return adapted;
}

/**
 * Containers in an order they can be started in at boot: each after the containers whose namespaces it
 * joins, and these after theirs (a chain: A on B's network, B in C's PID namespace), as dockerd's
 * restartContainers waits for a container's dependencies. Otherwise in the order given. Modes name the
 * donor by id (withDonorIds); a donor not among them, or a cycle, adds no constraint.
 */
export function startOrder<T extends { Id: string; HostConfig: HostConfig }>(records: readonly T[]): T[] {
  const byId = new Map(records.map((record) => [record.Id, record]));
  const ordered: T[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const place = (record: T): void => {
    if (placed.has(record.Id) || visiting.has(record.Id)) return;
    visiting.add(record.Id);
    for (const ref of Object.values(sharedNamespaces(record.HostConfig))) {
      const donor = byId.get(ref);
      if (donor) place(donor);
    }
    visiting.delete(record.Id);
    placed.add(record.Id);
    ordered.push(record);
  };
  for (const record of records) place(record);
  return ordered;
}

/**
 * runconfig's validateNetContainerMode, in dockerd's words: a container on another's network has that
 * one's name, name files and ports. Checked on the request's config (an image's EXPOSE is no conflict).
 */
export function checkNetContainerMode(config: ContainerConfig, hostConfig: HostConfig): void {
  const mode = hostConfig.NetworkMode;
  if (mode !== "container" && sharedWith(mode) === undefined) return;
  if (!sharedWith(mode))
    throw badRequest("invalid network mode: invalid container format container:<name|id>");
  if (config.Hostname !== "") throw badRequest("conflicting options: hostname and the network mode");
  if (Array.isArray(hostConfig.Links) && hostConfig.Links.length > 0)
    throw badRequest(
      "conflicting options: container type network can't be used with links. This would result in undefined behavior",
    );
  if (hostConfig.Dns.length > 0) throw badRequest("conflicting options: dns and the network mode");
  if ((hostConfig.ExtraHosts ?? []).length > 0)
    throw badRequest("conflicting options: custom host-to-IP mapping and the network mode");
  if (Object.keys(hostConfig.PortBindings).length > 0 || hostConfig.PublishAllPorts)
    throw badRequest("conflicting options: port publishing and the container type network mode");
  if (Object.keys(config.ExposedPorts ?? {}).length > 0)
    throw badRequest("conflicting options: port exposing and the container type network mode");
}

/**
 * What joining needs of another container: its record, its task's pid (0 when it has none) and the host
 * directory its /dev/shm is (a shareable one's, or the host's), which IPC joiners bind as theirs.
 */
export interface Donor {
  record: ContainerRecord;
  pid: number;
  shmPath?: string;
}

/**
 * The namespace files of the containers this one joins, checked as dockerd checks them at start
 * (getNetworkedContainer, getPIDContainer, getIPCContainer): each must be running, not restarting, and
 * not this container itself. `find` looks a container up by name, id or id prefix.
 */
export function resolveDonors(
  record: ContainerRecord,
  find: (ref: string) => Donor | undefined,
): { paths: Partial<Record<JoinableNamespace, string>>; network?: Donor; shmPath?: string } {
  const refs = sharedNamespaces(record.HostConfig);
  const paths: Partial<Record<JoinableNamespace, string>> = {};
  let network: Donor | undefined;
  let shmPath: string | undefined;
  for (const [type, ref] of Object.entries(refs) as [JoinableNamespace, string][]) {
    const what = type === "network" ? "network" : type.toUpperCase();
    const donor = find(ref);
    // dockerd: the network's donor is a system error (it was resolved at create), the others the request's.
    if (!donor)
      throw type === "network"
        ? new EngineError(500, `joining network namespace of container: No such container: ${ref}`)
        : badRequest(`failed to join ${what} namespace: No such container: ${ref}`);
    if (type === "network" && donor.record.Id === record.Id)
      throw new EngineError(500, "cannot join own network namespace");
    if (donor.record.State.Status === "restarting")
      throw conflict(
        `cannot join ${what} namespace of container: Container ${ref} is restarting, wait until the container is running`,
      );
    if (!running(donor))
      throw conflict(
        type === "network"
          ? `cannot join network namespace of a non running container: container ${donor.record.Name.slice(1)} is ${donor.record.State.Status}`
          : `failed to join ${what} namespace: container ${ref} is not running`,
      );
    if (type === "network") network = donor;
    if (type === "ipc") {
      // dockerd's getIPCContainer: only a shareable container's /dev/shm is on the host to be shared.
      if (!donor.shmPath)
        throw badRequest(
          `failed to join IPC namespace: container ${ref}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`,
        );
      shmPath = donor.shmPath;
    }
    paths[type] = `/proc/${donor.pid}/ns/${NS_FILES[type]}`;
  }
  return { paths, ...(network ? { network } : {}), ...(shmPath ? { shmPath } : {}) };
}

/** The files of /proc/PID/ns, by the namespace's spec name. */
const NS_FILES: Record<JoinableNamespace, string> = { network: "net", pid: "pid", ipc: "ipc" };

/**
 * Whether process `pid` is in process `donorPid`'s namespace of `type` (a namespace's inode is its
 * identity while it lives). A path /proc/PID/ns/… names whatever process has that pid when runc opens it:
 * a donor that exited meanwhile may have left its pid to an unrelated host process.
 */
export async function inNamespaceOf(
  pid: number,
  donorPid: number,
  type: JoinableNamespace,
): Promise<boolean> {
  const inode = (of: number) =>
    stat(`/proc/${of}/ns/${NS_FILES[type]}`).then(
      (found) => `${found.dev}:${found.ino}`,
      () => undefined,
    );
  const [own, donors] = await Promise.all([inode(pid), inode(donorPid)]);
  return own !== undefined && own === donors;
}

function running(donor: Donor): boolean {
  return donor.pid > 0 && (donor.record.State.Status === "running" || donor.record.State.Status === "paused");
}

const NAME_FILES = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/**
 * The spec of a container that joins others' namespaces, for this start: their namespace files, and on
 * another's network that one's hostname and name files (dockerd's initializeNetworkingPaths), as its
 * own spec (`networkSpec`) has them.
 */
export function withSharedNamespaces(
  spec: OciSpec,
  paths: Partial<Record<JoinableNamespace, string>>,
  networkSpec?: OciSpec,
  shmPath?: string,
): OciSpec {
  const next: OciSpec = structuredClone(spec);
  joinNamespaces(next, paths);
  if (shmPath) bindShm(next, shmPath);
  if (!networkSpec) return next;
  const hostname = networkSpec.hostname;
  if (hostname !== undefined) {
    next.hostname = hostname;
    if (next.process?.env)
      next.process.env = next.process.env.map((entry) =>
        entry.startsWith("HOSTNAME=") ? `HOSTNAME=${hostname}` : entry,
      );
  }
  const donorFiles = (networkSpec.mounts ?? []).filter((mount) => NAME_FILES.includes(mount.destination));
  next.mounts = [
    ...(next.mounts ?? []).filter((mount) => !NAME_FILES.includes(mount.destination)),
    ...donorFiles,
  ];
  return next;
}

/**
 * The spec of a container that joined others' namespaces, once its task is gone: those namespaces
 * without their paths, as create made them (new ones). A path is /proc/PID/ns/… of the donor's process
 * of that run, which names whatever process has that pid next: a task made from the spec by another
 * client (ctr) would join it. Undefined when there is nothing to clear.
 */
export function withoutJoinedPaths(spec: OciSpec, hostConfig: HostConfig): OciSpec | undefined {
  const joined = new Set(Object.keys(sharedNamespaces(hostConfig)));
  const namespaces = spec.linux?.namespaces;
  if (!namespaces?.some((namespace) => joined.has(namespace.type) && namespace.path !== undefined))
    return undefined;
  const next: OciSpec = structuredClone(spec);
  if (next.linux)
    next.linux.namespaces = namespaces.map((namespace) =>
      joined.has(namespace.type) ? { type: namespace.type } : namespace,
    );
  return next;
}

/** /dev/shm as a bind of a host directory (a shareable container's tmpfs, the host's /dev/shm). */
export function bindShm(spec: OciSpec, source: string): void {
  spec.mounts = (spec.mounts ?? []).map((mount) =>
    mount.destination === "/dev/shm"
      ? { destination: "/dev/shm", type: "bind", source, options: ["rbind", "rprivate", "rw"] }
      : mount,
  );
}

/** Where a shareable container's /dev/shm is on the host (dockerd's ShmPath): in its engine dir. */
export function shmPathOf(dir: string): string {
  return join(dir, "shm");
}

const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/**
 * dockerd's setupIPCDirs for IpcMode shareable: a fresh tmpfs of ShmSize (64m by default) on the host,
 * the container's /dev/shm, so that containers joining its IPC namespace bind the same one. Made at
 * each start (what an earlier run left is unmounted first); unmountShm when the run ends.
 */
export async function mountShm(path: string, shmSize: number, signal?: AbortSignal): Promise<void> {
  await unmountShm(path);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const size = shmSize > 0 ? shmSize : DEFAULT_SHM_BYTES;
  await execFileAsync(
    "mount",
    ["-t", "tmpfs", "-o", `mode=1777,size=${size},noexec,nosuid,nodev`, "shm", path],
    signal ? { signal } : {},
  );
}

export function unmountShm(path: string): Promise<void> {
  return unmountAll(path);
}
