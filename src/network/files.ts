import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { delay } from "../libcontainerd/call.js";

/** A process's identity across pid reuse: its pid and its start time in clock ticks since boot. */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' do not.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export function thisProcess(): ProcessIdentity {
  return identityOf(process.pid);
}

export function identityOf(pid: number): ProcessIdentity {
  return { pid, startTime: startTimeOf(pid) ?? "" };
}

export function isAlive(owner: ProcessIdentity): boolean {
  return startTimeOf(owner.pid) === owner.startTime;
}

const TEMPORARY = /\.(\d+)\.[a-z0-9]*\.tmp$/;

/**
 * Removes the temporaries `writeFileAtomic` left in `dir` when its writer died between write and
 * rename (a SIGKILLed ctrd): those whose writer process is gone.
 */
export async function removeOrphanTemporaries(dir: string): Promise<void> {
  const names = existsSync(dir) ? await readdir(dir) : [];
  await Promise.all(
    names
      .filter((name) => {
        const pid = Number(TEMPORARY.exec(name)?.[1]);
        return pid > 0 && !processExists(pid);
      })
      .map((name) => rm(join(dir, name), { force: true })),
  );
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Writes `path` whole or not at all: a crash leaves the old content or the new, never a torn file. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, data, { mode: 0o644 });
  await rename(temporary, path);
}

/**
 * Rewrites a file in place, keeping its inode: a file bind-mounted into a container (its /etc/hosts)
 * must be changed this way, since a rename would leave the mount on the old file.
 */
export async function rewriteInPlace(path: string, data: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const bytes = Buffer.from(data);
    await handle.write(bytes, 0, bytes.length, 0);
    await handle.truncate(bytes.length);
  } finally {
    await handle.close();
  }
}

export async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/**
 * In a directory of root's (made 0755 by the first lock), not /run/lock: that one is world-writable
 * (1777), where any user could plant the record (forged entries holding every subnet), a lock naming a
 * live pid, or a symlink at the record's or its temporary file's name that root's write follows
 * (fs.protected_symlinks is 0 on many hosts).
 */
export const HOST_RUN_DIR = "/run/libcontainerd";

/**
 * A lock shared by processes (several ctrd commands run at once): a file that only one exclusive
 * create succeeds on, holding its owner's identity so that a lock left by a crashed process is
 * taken over rather than waited on forever.
 */
export async function withLock<T>(
  path: string,
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  const release = await acquireLock(path, signal);
  try {
    return await work();
  } finally {
    await release();
  }
}

/** Takes the lock; the function returned releases it. For a lock held across more than one call. */
export async function acquireLock(
  path: string,
  signal: AbortSignal | undefined,
): Promise<() => Promise<void>> {
  const me = JSON.stringify(thisProcess());
  for (let attempt = 0; ; attempt++) {
    try {
      createOwned(path, me);
      break;
    } catch (err) {
      if (isErrno(err, "ENOENT")) await mkdir(dirname(path), { recursive: true });
      else if (!isErrno(err, "EEXIST")) throw err;
      else await breakIfStale(path);
    }
    if (attempt > 0)
      await delay(Math.min(1 + attempt, 20) + Math.random() * 3, signal, `waiting for the lock ${path}`);
  }
  return () => rm(path, { force: true });
}

/**
 * O_EXCL: only one process creates the file; its content names the owner. Create and write are one
 * synchronous step: an asynchronous write runs turns of the event loop later, and a process killed
 * in between left a lock naming no one, which every process then waited on for good.
 */
function createOwned(path: string, owner: string): void {
  const fd = openSync(path, "wx");
  try {
    writeSync(fd, owner);
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * How long a lock may name no owner: its creator writes it microseconds after creating it (createOwned),
 * so one still empty after this was left by a process killed between the two, or by an older ctrd.
 */
const OWNERLESS_GRACE_MS = 2000;

/**
 * Removes the lock at `path` when its owner is dead (or it has named none for too long). Breakers take
 * turns (`PATH.break`) and look again before they remove it: while one holds the turn, the stale lock
 * can change only by being removed, by that breaker, so it removes the stale lock and never a new one.
 * (Renaming it aside and giving it back when it had become another's, as before, put the given-back
 * lock over one created meanwhile, or took it from its holder: two holders at once, measured.)
 */
async function breakIfStale(path: string): Promise<void> {
  if (!(await isStale(path))) return;
  const turn = `${path}.break`;
  try {
    createOwned(turn, JSON.stringify(thisProcess()));
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw err;
    // Another breaker's turn; one that died during it left the file, which holds no lock of its own.
    if (await isStale(turn)) await rm(turn, { force: true });
    return;
  }
  try {
    if (await isStale(path)) await rm(path, { force: true });
  } finally {
    rmSync(turn, { force: true });
  }
}

async function isStale(path: string): Promise<boolean> {
  const owner = await lockOwner(path);
  // Only a dead owner is stale.
  if (owner) return !isAlive(owner);
  // No owner yet: its creator is between creating the file and writing it, unless that was long ago.
  const modified = await stat(path).then(
    (info) => info.mtimeMs,
    () => undefined,
  );
  return modified !== undefined && Date.now() - modified > OWNERLESS_GRACE_MS;
}

/** Who holds the lock at `path` (as it names itself), or undefined when it is free or names no one. */
export async function lockOwner(path: string): Promise<ProcessIdentity | undefined> {
  const owner = (await readJson(path).catch(() => undefined)) as ProcessIdentity | undefined;
  return owner && typeof owner.pid === "number" ? owner : undefined;
}
