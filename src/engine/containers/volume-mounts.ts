import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, lstat, mkdir, readdir, rename, rm, utimes } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { badRequest, EngineError } from "../errors.js";
import type { EventBus } from "../events.js";
import type { VolumeStore } from "../volume-store.js";
import { type ContainerConfig, cleanPath, type HostConfig, parseBind, parseVolumesFrom } from "./config.js";
import { resolveInRoot } from "./filesystem.js";
import type { ContainerRecord } from "./store.js";

const execFileAsync = promisify(execFile);

/**
 * A volume mounted into a container, or a host path it took with `--volumes-from` (dockerd's MountPoint),
 * kept in its record.
 */
export interface MountPoint {
  Type: "volume" | "bind";
  /** The volume's name (a bind: none). */
  Name: string;
  /** On the host: the volume's data (its Mountpoint), or the bound path. */
  Source: string;
  Destination: string;
  Driver: "local" | "";
  /** As given with -v (`ro`, `nocopy` …); `z` when none, as dockerd sets it for the local driver. */
  Mode: string;
  RW: boolean;
  Propagation: "" | "rprivate";
  /** Named by the user (`-v NAME:/path`, `--mount source=NAME`): `docker rm -v` keeps it. */
  Named: boolean;
  /** A new, empty volume gets what the image has at the destination (not with `nocopy`). */
  CopyData: boolean;
}

interface WantedVolume {
  name: string;
  destination: string;
  readonly: boolean;
  mode: string;
  copyData: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

/**
 * What `--volumes-from` takes of another container (dockerd's registerMountPoints): its host binds and its
 * mount points, read-only with `:ro`, never filled from the image; a later one at the same path wins.
 */
function inheritedMounts(hostConfig: HostConfig, find: (ref: string) => ContainerRecord): MountPoint[] {
  const inherited = new Map<string, MountPoint>();
  for (const spec of hostConfig.VolumesFrom ?? []) {
    const { container, readonly } = parseVolumesFrom(spec);
    const source = find(container);
    const binds = [
      ...(source.HostConfig.Binds ?? [])
        .map((bind) => parseBind(bind))
        .filter((bind) => bind.type === "bind"),
      ...(source.HostConfig.Mounts ?? [])
        .filter((mount) => mount.Type === "bind")
        .map((mount) => ({
          source: mount.Source,
          destination: cleanPath(mount.Target),
          readonly: mount.ReadOnly,
          mode: "",
        })),
    ].map(
      (bind): MountPoint => ({
        Type: "bind",
        Name: "",
        Source: bind.source,
        Destination: bind.destination,
        Driver: "",
        Mode: bind.mode,
        RW: !bind.readonly,
        Propagation: "rprivate",
        Named: true,
        CopyData: false,
      }),
    );
    for (const mountPoint of [...binds, ...(source.MountPoints ?? [])])
      inherited.set(mountPoint.Destination, {
        ...mountPoint,
        RW: mountPoint.RW && !readonly,
        CopyData: false,
      });
  }
  return [...inherited.values()];
}

/** The volumes a container asks for, checked as dockerd's registerMountPoints checks them, nothing made yet. */
function wantedVolumes(
  config: ContainerConfig,
  hostConfig: HostConfig,
  inherited: readonly MountPoint[],
): WantedVolume[] {
  const taken = new Set(Object.keys(hostConfig.Tmpfs ?? {}).map((path) => cleanPath(path)));
  const wanted: WantedVolume[] = [];
  const claim = (destination: string): void => {
    if (taken.has(destination)) throw badRequest(`Duplicate mount point: ${destination}`);
    taken.add(destination);
  };
  for (const spec of hostConfig.Binds ?? []) {
    const bind = parseBind(spec);
    claim(bind.destination);
    if (bind.type === "volume")
      wanted.push({
        name: bind.source,
        destination: bind.destination,
        readonly: bind.readonly,
        mode: bind.mode || "z",
        copyData: bind.copyData,
      });
  }
  for (const mount of hostConfig.Mounts ?? []) {
    const destination = cleanPath(mount.Target);
    claim(destination);
    if (mount.Type !== "volume") continue;
    const options = mount.VolumeOptions;
    wanted.push({
      name: mount.Source,
      destination,
      readonly: mount.ReadOnly,
      mode: "z",
      copyData: options?.NoCopy !== true,
      ...(options?.Labels ? { labels: options.Labels } : {}),
      ...(options?.DriverConfig?.Options ? { options: options.DriverConfig.Options } : {}),
    });
  }
  // createContainerVolumesOS: the config's (and the image's) VOLUMEs not mounted otherwise, anonymous.
  for (const mountPoint of inherited) taken.add(mountPoint.Destination);
  for (const path of Object.keys(config.Volumes ?? {})) {
    const destination = cleanPath(path);
    if (taken.has(destination)) continue;
    taken.add(destination);
    wanted.push({ name: "", destination, readonly: false, mode: "", copyData: true });
  }
  return wanted;
}

/**
 * The container's mount points: what it takes with `--volumes-from` (`find` looks the containers up), then
 * its volumes, made where missing (a named one as asked, the others anonymous). Synchronous: the caller
 * records them before any other request can look, so a volume is never removed between being found here
 * and being in use. Made anonymous volumes go again when a later one fails.
 */
export function attachVolumes(
  config: ContainerConfig,
  hostConfig: HostConfig,
  volumes: VolumeStore,
  find: (ref: string) => ContainerRecord,
): MountPoint[] {
  const inherited = inheritedMounts(hostConfig, find);
  // Its own binds and mounts replace what it took at the same path.
  const own = new Set([
    ...(hostConfig.Binds ?? []).map((spec) => parseBind(spec).destination),
    ...(hostConfig.Mounts ?? []).map((mount) => cleanPath(mount.Target)),
  ]);
  const wantedList = wantedVolumes(config, hostConfig, inherited);
  const mountPoints: MountPoint[] = inherited.filter((mountPoint) => !own.has(mountPoint.Destination));
  const made: MountPoint[] = [];
  try {
    for (const wanted of wantedList) {
      const { volume } = volumes.create(wanted.name, {
        ...(wanted.labels ? { labels: wanted.labels } : {}),
        ...(wanted.options ? { options: wanted.options } : {}),
      });
      made.push({
        Type: "volume",
        Name: volume.Name,
        Source: volumes.mountpoint(volume.Name),
        Destination: wanted.destination,
        Driver: volume.Driver,
        Mode: wanted.mode,
        RW: !wanted.readonly,
        Propagation: "",
        Named: wanted.name !== "",
        CopyData: wanted.copyData,
      });
    }
  } catch (err) {
    void releaseVolumes(made, volumes, true);
    throw err;
  }
  return [...mountPoints, ...made];
}

/**
 * A container is gone: with `removeAnonymous` (`docker rm -v`, `--rm`) its anonymous volumes go too,
 * unless another container uses them; named volumes stay (dockerd's removeMountPoints).
 */
export async function releaseVolumes(
  mountPoints: readonly MountPoint[],
  volumes: VolumeStore,
  removeAnonymous: boolean,
  signal?: AbortSignal,
): Promise<void> {
  if (!removeAnonymous) return;
  for (const mountPoint of mountPoints) {
    if (mountPoint.Named || volumes.users(mountPoint.Name).length > 0) continue;
    await volumes.remove(mountPoint.Name, { force: true }, signal ? { signal } : {});
  }
}

/** The mount points whose volumes copy-up fills at create: asked for, the volume empty, nothing to mount. */
export async function volumesToPopulate(
  mountPoints: readonly MountPoint[],
  volumes: VolumeStore,
): Promise<MountPoint[]> {
  const pending: MountPoint[] = [];
  for (const mountPoint of mountPoints) {
    const volume = volumes.find(mountPoint.Name);
    if (!mountPoint.CopyData || !volume || volume.Options?.type !== undefined) continue;
    if (await volumes.isEmpty(mountPoint.Name)) pending.push(mountPoint);
  }
  return pending;
}

/**
 * Copy-up, as dockerd's populateVolume: what the image has at a volume's destination (its rootfs mounted on
 * `root`; the path resolved inside it) is copied into the empty volume with its owners, modes, times, links
 * and the directory's own owner and mode. A file where an anonymous volume goes is refused, as dockerd's
 * "cannot mount volume over existing file".
 *
 * The copy is made in a hidden directory of `stagingDir` (the volumes' dir: what a crash leaves there is
 * cleared at the next start) and its entries renamed into the volume: a running container sharing a named
 * volume can plant links in it after it was seen empty, and `cp -a` into it would write the image's files
 * through them onto the host (a regular file through a link at its name, anything through a link standing
 * for a directory it made). A rename replaces a link, never follows it; an entry the container made
 * meanwhile stays (the volume is no longer empty).
 */
export async function populateVolumes(
  mountPoints: readonly MountPoint[],
  root: string,
  stagingDir: string,
  signal?: AbortSignal,
): Promise<void> {
  for (const mountPoint of mountPoints) {
    const source = await resolveInRoot(root, mountPoint.Destination, true);
    const stat = await lstat(source).catch(() => undefined);
    if (!stat) continue;
    if (!stat.isDirectory()) {
      if (!mountPoint.Named)
        throw badRequest(`cannot mount volume over existing file, file exists ${mountPoint.Destination}`);
      continue;
    }
    const staging = join(stagingDir, `.populating-${randomBytes(8).toString("hex")}`);
    try {
      await mkdir(staging, { mode: 0o700 });
      await execFileAsync("cp", ["-a", "--", `${source}/.`, staging], signal ? { signal } : {});
      for (const entry of await readdir(staging))
        await rename(join(staging, entry), join(mountPoint.Source, entry)).catch((err: unknown) => {
          if (
            !["EEXIST", "ENOTEMPTY", "EISDIR", "ENOTDIR"].includes((err as NodeJS.ErrnoException).code ?? "")
          )
            throw err;
        });
      // The directory's own owner, mode and times (cp -a gave them to the staging directory).
      const own = await lstat(staging);
      await chown(mountPoint.Source, own.uid, own.gid);
      await chmod(mountPoint.Source, own.mode & 0o7777);
      await utimes(mountPoint.Source, own.atime, own.mtime);
    } catch (err) {
      throw new EngineError(
        500,
        `failed to populate volume ${mountPoint.Name}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
        { cause: err },
      );
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/** What starting and stopping a container does to its volumes. */
export interface VolumeHooks {
  volumes: VolumeStore;
  events: EventBus;
}

/**
 * A container starts (dockerd's setupMounts): a volume with mount options is mounted for it, and each
 * volume has a `mount` event. What was mounted before a failure is given back.
 */
export async function mountContainerVolumes(
  containerId: string,
  mountPoints: readonly MountPoint[],
  hooks: VolumeHooks,
  signal?: AbortSignal,
): Promise<void> {
  const done: MountPoint[] = [];
  try {
    for (const mountPoint of mountPoints) {
      if (mountPoint.Type !== "volume") continue;
      await hooks.volumes.mount(mountPoint.Name, containerId, signal ? { signal } : {});
      done.push(mountPoint);
      hooks.events.publish("volume", "mount", mountPoint.Name, {
        driver: mountPoint.Driver,
        container: containerId,
        destination: mountPoint.Destination,
        "read/write": String(mountPoint.RW),
        propagation: mountPoint.Propagation,
      });
    }
  } catch (err) {
    await unmountContainerVolumes(containerId, done, hooks);
    throw err;
  }
}

/** A container's task is gone (UnmountVolumes): each volume has an `unmount` event, a mounted one is let go. */
export async function unmountContainerVolumes(
  containerId: string,
  mountPoints: readonly MountPoint[],
  hooks: VolumeHooks,
): Promise<void> {
  for (const mountPoint of mountPoints) {
    if (mountPoint.Type !== "volume") continue;
    await hooks.volumes.unmount(mountPoint.Name, containerId);
    hooks.events.publish("volume", "unmount", mountPoint.Name, {
      driver: mountPoint.Driver,
      container: containerId,
    });
  }
}
