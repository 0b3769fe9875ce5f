import { execFile } from "node:child_process";
import {
  closeSync,
  constants,
  createWriteStream,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  type Stats,
  statfsSync,
} from "node:fs";
import {
  chmod,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readlink,
  rm,
  statfs,
  symlink,
  utimes,
} from "node:fs/promises";
import { posix } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { extract, type Header, pack } from "tar-stream";
import type { Mount } from "../../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import { badRequest, EngineError, notFound } from "../errors.js";

const execFileAsync = promisify(execFile);

/** As Linux gives up on a path (MAXSYMLINKS). */
const MAX_LINKS = 40;

function components(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * `path` (a path in the container) as a path on the host under `root`, every symlink on the way resolved
 * inside the container as its processes would see it: an absolute link starts again at `root`, `..` stops
 * at it, so nothing resolves outside (moby's symlink.FollowSymlinkInScope). The last component is only
 * followed with `followLast`; what does not exist is kept as written.
 */
export async function resolveInRoot(root: string, path: string, followLast: boolean): Promise<string> {
  let pending = components(path);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() ?? "";
    if (part === "..") {
      resolved.pop();
      continue;
    }
    if (pending.length === 0 && !followLast) {
      resolved.push(part);
      break;
    }
    const candidate = posix.join(root, ...resolved, part);
    let stat: Stats;
    try {
      stat = await lstat(candidate);
    } catch (err) {
      if (!isMissing(err)) throw err;
      resolved.push(part, ...pending.filter((rest) => rest !== ".."));
      break;
    }
    if (!stat.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    links += 1;
    if (links > MAX_LINKS) throw badRequest(`too many levels of symbolic links in ${path}`);
    const target = await readlink(candidate);
    if (target.startsWith("/")) resolved.length = 0;
    pending = [...components(target), ...pending];
  }
  // The root itself with a slash: a running container's root is /proc/PID/root, a link lstat would not follow.
  return resolved.length === 0 ? `${posix.normalize(root)}/` : posix.join(root, ...resolved);
}

/**
 * The most of a container's file readInRoot reads: far more than any account file, far less than what
 * would strain the engine (one 2 GiB read per start).
 */
export const MAX_READ_IN_ROOT = 32 * 1024 * 1024;

/**
 * A file of the container's as text (a path inside it, links resolved inside `root` as moby's
 * GetResourcePath), or null when it has none there. Only a regular file of at most MAX_READ_IN_ROOT
 * bytes is read: what the container made there is the container's choice, and a FIFO would block the
 * open (and one of libuv's four threads with it) until something wrote to it, a device (`mknod
 * /etc/group c 1 5`, /dev/zero) would never end; either is an error, as a file too large is.
 */
export async function readInRoot(root: string, path: string): Promise<string | null> {
  let handle: FileHandle;
  try {
    handle = await open(
      await resolveInRoot(root, path, true),
      constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY,
    );
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`${path} in the container is not a regular file`);
    if (stat.size > MAX_READ_IN_ROOT)
      throw new Error(`${path} in the container is larger than ${MAX_READ_IN_ROOT} bytes`);
    const buffer = Buffer.alloc(stat.size);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** moby's container.ResolvePath: a trailing `/` or `/.` follows the last component, else it is not followed. */
function followsLast(path: string): boolean {
  return path.endsWith("/") || path.endsWith("/.");
}

/** The name Docker gives the resource: filepath.Base of the path as asked (`.` for `dir/.`, `/` for `/`). */
function baseName(path: string): string {
  if (path.endsWith("/.")) return ".";
  const base = posix.basename(path);
  return base === "" ? "/" : base;
}

/** Go's os.FileMode bits, as types.ContainerPathStat carries them (the docker CLI decodes them). */
function goFileMode(stat: Stats): number {
  let mode = stat.mode & 0o777;
  if (stat.isDirectory()) mode |= 1 << 31;
  else if (stat.isSymbolicLink()) mode |= 1 << 27;
  else if (stat.isFIFO()) mode |= 1 << 25;
  else if (stat.isSocket()) mode |= 1 << 24;
  else if (stat.isCharacterDevice()) mode |= (1 << 26) | (1 << 21);
  else if (stat.isBlockDevice()) mode |= 1 << 26;
  if (stat.mode & 0o4000) mode |= 1 << 23;
  if (stat.mode & 0o2000) mode |= 1 << 22;
  if (stat.mode & 0o1000) mode |= 1 << 20;
  return mode >>> 0;
}

/** types.ContainerPathStat: what HEAD and GET /containers/{id}/archive send in X-Docker-Container-Path-Stat. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface ResolvedResource {
  /** The resource on the host (under the container's root). */
  hostPath: string;
  stat: PathStat;
}

/** Where a host path under the container's root is, as the container sees it. */
export function containerPathOf(root: string, hostPath: string): string {
  return `/${posix.relative(root, hostPath)}`.replace(/\/+$/, "") || "/";
}

/** Finds `path` in the container whose filesystem is at `root`; 404 as dockerd words it when it is not there. */
export async function statResource(root: string, path: string, container: string): Promise<ResolvedResource> {
  if (!path.startsWith("/")) path = `/${path}`;
  const hostPath = await resolveInRoot(root, path, followsLast(path));
  let stat: Stats;
  try {
    stat = await lstat(hostPath);
  } catch (err) {
    if (isMissing(err)) throw notFound(`Could not find the file ${path} in container ${container}`);
    throw err;
  }
  let linkTarget = "";
  if (stat.isSymbolicLink()) linkTarget = containerPathOf(root, await resolveInRoot(root, path, true));
  return {
    hostPath,
    stat: {
      name: baseName(path),
      size: stat.size,
      mode: goFileMode(stat),
      mtime: stat.mtime.toISOString(),
      linkTarget,
    },
  };
}

export function encodePathStat(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString("base64");
}

/**
 * statfs(2) magics of the kernel filesystems a running container has mounted (/proc, /sys, /dev/pts …):
 * dockerd reads the rootfs, where their mount points are empty directories. As the engine's process they
 * would be the HOST's kernel files (and reading some of them blocks).
 */
const KERNEL_FILESYSTEMS = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x1cd1, // devpts
  0x19800202, // mqueue
  0x27e0eb, // cgroup
  0x63677270, // cgroup2
  0x64626720, // debugfs
  0x74726163, // tracefs
  0x73636673, // securityfs
  0xcafe4a11, // bpf
  0x62656570, // configfs
  0x65735543, // fusectl
  0x6165676c, // pstore
]);

/** Whether the directory `dir` is on a kernel filesystem (false when it is not there). */
export async function onKernelFs(dir: string): Promise<boolean> {
  try {
    return KERNEL_FILESYSTEMS.has((await statfs(dir)).type);
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/** Refuses a resource inside a kernel filesystem: not in the container's rootfs, as dockerd sees it. */
export async function refuseKernelFs(
  resource: ResolvedResource,
  path: string,
  container: string,
): Promise<void> {
  if (await onKernelFs(posix.dirname(resource.hostPath)))
    throw notFound(`Could not find the file ${path} in container ${container}`);
}

export interface TarOptions {
  signal?: AbortSignal;
  /** Leave out what is mounted below (export of a running container: its rootfs, not /proc or binds). */
  oneFileSystem?: boolean;
}

const CHUNK = 1024 * 1024;

/** Where a tar entry's content goes (tar-stream's, a streamx Writable). */
interface ChunkSink {
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  once(event: "drain", listener: () => void): unknown;
}

/** `size` bytes of the file (a running container may change it meanwhile: cut, or padded with zeros). */
async function copyExactly(path: string, size: number, sink: ChunkSink): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    // Removed since it was listed (a running container): its header is out, so zeros, as GNU tar.
    if (!isMissing(err)) throw err;
  }
  try {
    let left = size;
    while (left > 0) {
      const length = Math.min(CHUNK, left);
      // Each chunk is a buffer of its own: the sink holds it until it is sent.
      const buffer = Buffer.allocUnsafe(length);
      const bytesRead = fd === undefined ? 0 : readSync(fd, buffer, 0, length, null);
      const chunk = bytesRead === 0 ? buffer.fill(0) : buffer.subarray(0, bytesRead);
      left -= chunk.length;
      if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once("drain", resolve));
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  sink.end();
}

/** Linux's major and minor of a device number (glibc's gnu_dev_major/minor). */
function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  const dev = BigInt(rdev);
  return {
    devmajor: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    devminor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  };
}

/**
 * A tar of the resource at `path` to `out`, its entries named from `name` (archive.TarResourceRebase):
 * `hosts` for a file, `etc/…` for a directory, `./…` for `dir/.` or `/`. Symlinks are not followed;
 * owners (numeric), modes, times, hard links, devices and FIFOs are kept (sockets left out, as GNU tar
 * does); long names get PAX records (tar-stream). Kernel filesystems' contents are left out.
 * Synchronous fs calls: it runs in the worker, a process of its own, where a round trip through libuv's
 * thread pool for each lstat, open, read and close made it several times slower than GNU tar.
 */
export async function packTree(
  path: string,
  name: string,
  out: Writable,
  opts: TarOptions = {},
): Promise<void> {
  const archive = pack();
  const piped = pipeline(archive, out, { end: false });
  piped.catch(() => {});
  const linked = new Map<string, string>();
  const rootDev = lstatSync(path).dev;
  const add = async (hostPath: string, entryName: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    let stat: Stats;
    try {
      stat = lstatSync(hostPath);
    } catch (err) {
      if (isMissing(err)) return; // gone meanwhile (a running container)
      throw err;
    }
    const header: Partial<Header> & Pick<Header, "name"> = {
      name: entryName,
      mode: stat.mode & 0o7777,
      uid: stat.uid,
      gid: stat.gid,
      mtime: stat.mtime,
    };
    if (stat.isDirectory()) {
      archive.entry({ ...header, name: `${entryName}/`, type: "directory" });
      if (opts.oneFileSystem && stat.dev !== rootDev) return;
      if (KERNEL_FILESYSTEMS.has(statfsSync(hostPath).type)) return;
      let children: string[];
      try {
        children = readdirSync(hostPath).sort();
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      for (const child of children) await add(posix.join(hostPath, child), `${entryName}/${child}`);
      return;
    }
    const inode = `${stat.dev}:${stat.ino}`;
    const first = stat.nlink > 1 ? linked.get(inode) : undefined;
    if (first !== undefined) {
      archive.entry({ ...header, type: "link", linkname: first });
      return;
    }
    if (stat.nlink > 1) linked.set(inode, entryName);
    if (stat.isSymbolicLink())
      archive.entry({ ...header, type: "symlink", linkname: readlinkSync(hostPath) });
    else if (stat.isCharacterDevice())
      archive.entry({ ...header, type: "character-device", ...deviceNumbers(stat.rdev) });
    else if (stat.isBlockDevice())
      archive.entry({ ...header, type: "block-device", ...deviceNumbers(stat.rdev) });
    else if (stat.isFIFO()) archive.entry({ ...header, type: "fifo" });
    else if (stat.isFile()) {
      await new Promise<void>((resolve, reject) => {
        const sink = archive.entry({ ...header, type: "file", size: stat.size }, (err) =>
          err ? reject(err) : resolve(),
        );
        copyExactly(hostPath, stat.size, sink).catch((err: unknown) => {
          sink.destroy();
          reject(err);
        });
      });
    }
  };
  try {
    const whole = name === "." || name === "/";
    await add(path, whole ? "." : name);
    archive.finalize();
  } catch (err) {
    archive.destroy();
    throw err;
  }
  await piped;
}

export interface ExtractOptions {
  /** An existing directory may not become a non-directory, nor the reverse (noOverwriteDirNonDir). */
  noOverwriteDirNonDir: boolean;
  /** Owner of everything extracted (copyUIDGID: the container's user); else the archive's owners. */
  owner?: { uid: number; gid: number };
}

/** Strips `./` and leading slashes; a path leaving the extraction point is refused (moby's breakout check). */
function entryPath(name: string): string {
  const normal = posix.normalize(name.replace(/^\/+/, ""));
  if (normal === ".." || normal.startsWith("../"))
    throw badRequest(`invalid archive: ${JSON.stringify(name)} is outside of the extraction point`);
  return normal.replace(/\/+$/, "") || ".";
}

/**
 * Extracts a tar into the directory `dir` (a path in the container at `root`), as dockerd's chrooted untar
 * does: every entry's path resolved inside the container, so a symlink in the container or in the archive
 * never leads out of it; owners, modes and times kept; directories' times set last.
 */
export async function extractTar(
  root: string,
  dir: string,
  input: Readable,
  opts: ExtractOptions,
): Promise<void> {
  const tar = extract();
  const fed = pipeline(input, tar);
  fed.catch(() => {});
  const directoryTimes: { path: string; mtime: Date }[] = [];
  try {
    for await (const entry of tar) {
      const { header } = entry;
      const name = entryPath(header.name);
      const target = await resolveInRoot(root, posix.join(dir, name), false);
      const isDir = header.type === "directory";
      if (await onKernelFs(posix.dirname(target)))
        throw new EngineError(
          403,
          `cannot copy into ${posix.dirname(target)}: a kernel filesystem of the container`,
        );
      const existing = await lstat(target).catch((err: unknown) => {
        if (isMissing(err)) return undefined;
        throw err;
      });
      if (existing) {
        if (opts.noOverwriteDirNonDir && existing.isDirectory() && !isDir)
          throw badRequest(
            `cannot overwrite directory "${target.slice(root.length)}" with non-directory "${name}"`,
          );
        if (opts.noOverwriteDirNonDir && !existing.isDirectory() && isDir)
          throw badRequest(
            `cannot overwrite non-directory "${target.slice(root.length)}" with directory "${name}"`,
          );
        if (existing.isDirectory() && name === ".") {
          entry.resume();
          continue;
        }
        if (!(existing.isDirectory() && isDir)) await rm(target, { recursive: true, force: true });
      }
      // An archive may list a file without its directories (testcontainers does): made as dockerd's untar makes them.
      await mkdir(posix.dirname(target), { recursive: true, mode: 0o755 });
      const uid = opts.owner?.uid ?? header.uid ?? 0;
      const gid = opts.owner?.gid ?? header.gid ?? 0;
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date();
      switch (header.type) {
        case "directory":
          if (!existing?.isDirectory()) await mkdir(target, { mode });
          directoryTimes.push({ path: target, mtime });
          break;
        case "file":
        case "contiguous-file":
          // wx: O_EXCL, which never follows a symlink put there meanwhile.
          await pipeline(entry, createWriteStream(target, { flags: "wx", mode }));
          break;
        case "symlink":
          await symlink(header.linkname ?? "", target);
          break;
        case "link": {
          const source = await resolveInRoot(root, posix.join(dir, entryPath(header.linkname ?? "")), false);
          await link(source, target);
          break;
        }
        default:
          // Devices and FIFOs (dockerd mknods them; no container file copy needs one) and pax records.
          entry.resume();
          continue;
      }
      entry.resume();
      await lchown(target, uid, gid);
      // A hard link to a symlink is a symlink: chmod and utimes would follow it, out of the container
      // (the engine runs them from the host's root). moby's handleLChmod leaves such a link's mode alone.
      const isSymlink =
        header.type === "symlink" || (header.type === "link" && (await lstat(target)).isSymbolicLink());
      if (isSymlink) await lutimes(target, mtime, mtime);
      else {
        await chmod(target, mode);
        if (header.type !== "directory") await utimes(target, mtime, mtime);
      }
    }
    await fed;
  } catch (err) {
    tar.destroy();
    input.resume();
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof EngineError) throw err;
    if (code === "EROFS") throw new EngineError(403, "container rootfs is marked read-only");
    if (code === undefined) throw badRequest(`invalid archive: ${(err as Error).message}`);
    throw err;
  }
  for (const { path, mtime } of directoryTimes.reverse()) await utimes(path, mtime, mtime).catch(() => {});
}

/** Mounts a snapshot's mounts (containerd's overlay or bind) on `target`, as containerd mounts a rootfs. */
export async function mountAll(mounts: Mount[], target: string, signal?: AbortSignal): Promise<void> {
  for (const mount of mounts) {
    const options = mount.options.join(",");
    const args =
      mount.type === "bind" || mount.type === "rbind"
        ? [...(options ? ["-o", options] : ["--bind"]), mount.source, target]
        : ["-t", mount.type, ...(options ? ["-o", options] : []), mount.source, target];
    await execFileAsync("mount", args, signal ? { signal } : {});
  }
}

/** A mount point of the container (dockerd's MountPoints): a bind of a host path, or a tmpfs (no source). */
export interface Volume {
  source?: string;
  destination: string;
  readonly: boolean;
}

/** The volume whose destination holds the container path `path` (the innermost), as moby's HasResource. */
export function volumeOf(volumes: readonly Volume[], path: string): Volume | undefined {
  let found: Volume | undefined;
  for (const volume of volumes) {
    const below = posix.relative(volume.destination, path);
    if (below === ".." || below.startsWith("../") || posix.isAbsolute(below)) continue;
    if (!found || volume.destination.length > found.destination.length) found = volume;
  }
  return found;
}

/**
 * Binds the container's volumes under its rootfs mounted on `target` while a stopped container's files are
 * copied, as dockerd's mountVolumes does: each destination resolved inside the rootfs (nothing runs in it
 * to change it meanwhile) and made if missing, rbind, ro or rw as given, private; outermost first.
 */
export async function mountVolumes(
  volumes: readonly Volume[],
  target: string,
  signal?: AbortSignal,
): Promise<void> {
  const options = signal ? { signal } : {};
  await execFileAsync("mount", ["--make-rprivate", target], options);
  const binds = volumes.filter((volume) => volume.source !== undefined);
  binds.sort((a, b) => components(a.destination).length - components(b.destination).length);
  for (const { source = "", destination, readonly } of binds) {
    const dest = await resolveInRoot(target, destination, true);
    const sourceStat = await lstat(source).catch(() => undefined);
    if (!sourceStat) continue; // runc makes a missing source fail at start; there is nothing to copy
    const existing = await lstat(dest).catch(() => undefined);
    if (!existing) {
      if (sourceStat.isDirectory()) await mkdir(dest, { recursive: true, mode: 0o755 });
      else {
        await mkdir(posix.dirname(dest), { recursive: true, mode: 0o755 });
        await (await open(dest, "a", 0o755)).close();
      }
    }
    await execFileAsync("mount", ["--rbind", "-o", readonly ? "ro" : "rw", source, dest], options);
    await execFileAsync("mount", ["--make-rprivate", dest], options);
  }
}

/** Unmounts everything on `target` (lazily: a reader that went away must not keep it busy). */
export async function unmountAll(target: string): Promise<void> {
  for (let layer = 0; layer < 16; layer++) {
    try {
      await execFileAsync("umount", ["--lazy", target]);
    } catch {
      return;
    }
  }
}
