import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  type Stats,
  writeSync,
} from "node:fs";
import { lstat, mkdir } from "node:fs/promises";
import { isAbsolute, join, parse, sep } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";

/**
 * The state dir and containerd's root are checked as Docker checks its own root: the dir is ours
 * and nobody else can write to it, and no one but root (or we) can swap a component of its path.
 * A state dir another user controls would let them plant symlinks at the names we write (the pid
 * file, the config, FIFO dirs) and have us overwrite or delete what they point at.
 */

const euid = (): number => process.geteuid?.() ?? 0;
const STICKY = 0o1000;

function refuse(path: string, why: string, cause?: unknown): FailedPreconditionError {
  return new FailedPreconditionError(
    `${path} ${why}; pass a dir only root or this user can write`,
    cause === undefined ? undefined : { cause },
  );
}

/** An errno as a typed error naming the path: nothing raw from the filesystem reaches a caller. */
export function fsError(what: string, path: string, err: unknown): FailedPreconditionError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? String(err);
  return new FailedPreconditionError(`${what} ${path}: ${code}`, { cause: err });
}

function trustedOwner(st: Stats): boolean {
  return st.uid === 0 || st.uid === euid();
}

/** An ancestor may be shared (/tmp) only when its sticky bit stops others renaming our entries. */
function checkAncestor(path: string, st: Stats): void {
  if (!st.isDirectory()) throw refuse(path, "is not a directory");
  if (!trustedOwner(st)) throw refuse(path, `is owned by uid ${st.uid}`);
  if ((st.mode & 0o022) !== 0 && (st.mode & STICKY) === 0) throw refuse(path, "is writable by other users");
}

function checkOwnDir(path: string, st: Stats): void {
  if (st.isSymbolicLink()) throw refuse(path, "is a symbolic link");
  if (!st.isDirectory()) throw refuse(path, "is not a directory");
  if (st.uid !== euid()) throw refuse(path, `is owned by uid ${st.uid}, not by this user (uid ${euid()})`);
  if ((st.mode & 0o022) !== 0)
    throw refuse(path, `is writable by other users (mode ${(st.mode & 0o777).toString(8)})`);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw fsError("cannot inspect", path, err);
  }
}

/**
 * Creates `path` (mode `mode`, each missing component ours) or checks the one there, and returns the
 * path to use: the same, or with a root-owned symlink in its ancestors (such as /var/run → /run)
 * resolved. Throws FailedPreconditionError naming the offending component.
 */
export function ensurePrivateDir(path: string, mode = 0o711): string {
  if (!isAbsolute(path)) throw new InvalidArgumentError(`${path} must be an absolute path`);
  const { root } = parse(path);
  const parts = path
    .slice(root.length)
    .split(sep)
    .filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new InvalidArgumentError(`${path} must not contain ".."`);
  let current = root;
  for (const [index, part] of parts.entries()) {
    const last = index === parts.length - 1;
    let next = join(current, part);
    let st = lstatOrUndefined(next);
    if (st === undefined) {
      try {
        mkdirSync(next, { mode });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError("cannot create", next, err);
      }
      st = lstatSync(next);
    }
    if (st.isSymbolicLink()) {
      // Followed only when neither the link nor the dir holding it could have been made by another user.
      if (last || !trustedOwner(st)) throw refuse(next, "is a symbolic link");
      next = realpathSync(next);
      st = lstatSync(next);
    }
    if (last) checkOwnDir(next, st);
    else checkAncestor(next, st);
    current = next;
  }
  return current;
}

/** Checks that `dir` (inside a private dir) is a real directory of ours, creating it if absent. */
export function ensureOwnSubdir(dir: string, mode = 0o711): void {
  let st = lstatOrUndefined(dir);
  if (st === undefined) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError("cannot create", dir, err);
    }
    st = lstatSync(dir);
  }
  checkOwnDir(dir, st);
}

const NOFOLLOW_WRITE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** Writes a file without following a symlink planted at its name (ELOOP → FailedPreconditionError). */
export function writeFileNoFollow(path: string, data: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, NOFOLLOW_WRITE, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw refuse(path, "is a symbolic link", err);
    throw fsError("cannot write", path, err);
  }
  try {
    writeSync(fd, data);
  } catch (err) {
    throw fsError("cannot write", path, err);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file without following a symlink at its name; undefined when it is absent or a symlink. */
export function readFileNoFollow(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(fd, "utf8");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Like `ensureOwnSubdir`, off the main thread: for dirs made per container on the hot path. */
export async function ensureOwnSubdirAsync(dir: string, mode = 0o711): Promise<void> {
  let st: Stats | undefined;
  try {
    st = await lstat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsError("cannot inspect", dir, err);
  }
  if (st === undefined) {
    try {
      await mkdir(dir, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError("cannot create", dir, err);
    }
    st = await lstat(dir);
  }
  checkOwnDir(dir, st);
}

/**
 * Whether `dir` is there as a real directory of ours (throwing as `ensureOwnSubdir` does when it is
 * there but not ours); false when absent or unreadable, for the full (asynchronous) path to settle.
 * One lstat, no round trip through libuv's threads: the common case of a dir made earlier.
 */
export function ownSubdirExists(dir: string): boolean {
  let st: Stats | undefined;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
  } catch {
    return false;
  }
  if (st === undefined) return false;
  checkOwnDir(dir, st);
  return true;
}

/** Refuses a path that is a symlink (absent is fine): what we remove recursively must be ours. */
export async function refuseSymlink(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSymbolicLink()) throw refuse(path, "is a symbolic link");
  } catch (err) {
    if (err instanceof FailedPreconditionError) throw err;
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsError("cannot inspect", path, err);
  }
}
