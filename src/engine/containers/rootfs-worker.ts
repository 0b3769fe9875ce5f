import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { type FileHandle, open, readFile } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { packagePath } from "../../platform/package-dir.js";
import { EngineError } from "../errors.js";
import type { PathStat, Volume } from "./filesystem.js";

/** A container's root directory, open: what the worker chroots into. */
export interface ContainerRoot {
  fd: number;
  /** Its task runs: the root is its process's, with its mounts (/proc, binds, tmpfs). */
  running: boolean;
}

export type WorkerRequest =
  | { op: "stat" | "get"; path: string; container: string; oneFileSystem?: boolean }
  | {
      op: "put";
      path: string;
      container: string;
      noOverwriteDirNonDir: boolean;
      owner?: { uid: number; gid: number };
      /** HostConfig.ReadonlyRootfs: only the volumes take the files. */
      readonlyRootfs: boolean;
      volumes: Volume[];
    };

export type WorkerMessage =
  | { type: "stat"; stat: PathStat }
  | { type: "done" }
  | { type: "error"; status: number; message: string };

/**
 * The root of the container `id`'s process `pid`, opened only while that process is still the
 * container's: /proc/PID stays the process it was opened for (a reused PID does not get in), and its
 * cgroup names the container. Undefined when it is gone: the task is exiting.
 */
export async function openProcessRoot(id: string, pid: number): Promise<FileHandle | undefined> {
  let proc: FileHandle;
  try {
    proc = await open(`/proc/${pid}`, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    const cgroups = await readFile(`/proc/self/fd/${proc.fd}/cgroup`, "utf8");
    if (!cgroups.split("\n").some((line) => line.endsWith(`/${id}`) || line.includes(`/${id}/`)))
      return undefined;
    return await open(`/proc/self/fd/${proc.fd}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return undefined;
  } finally {
    await proc.close();
  }
}

/** Opens a stopped container's mounted rootfs. */
export function openRootfs(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

interface WorkerIo {
  signal: AbortSignal;
  /** A PUT's tar. */
  input?: Readable;
  /** Where a GET's tar goes, once the resource's stat is known. */
  output?: (stat: PathStat) => Writable;
}

/**
 * Runs one request in a worker chrooted into `root` (rootfs-worker-main.ts); the resource's stat for
 * stat and get. The worker is killed when the signal aborts; it is always waited for.
 */
async function runWorker(
  root: ContainerRoot,
  request: WorkerRequest,
  io: WorkerIo,
): Promise<PathStat | undefined> {
  const child = spawn(
    process.execPath,
    [packagePath("dist/engine/rootfs-worker.js"), JSON.stringify(request)],
    {
      // No NODE_OPTIONS of the engine's (a --require would be looked for inside the container).
      env: {},
      stdio: [io.input ? "pipe" : "ignore", "pipe", "pipe", root.fd, "ipc"],
    },
  );
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    if (stderr.length < 8192) stderr += chunk;
  });
  const messages: WorkerMessage[] = [];
  let wake = (): void => {};
  child.on("message", (message: WorkerMessage) => {
    messages.push(message);
    wake();
  });
  // Settles on the first of 'error' (spawn failed) and 'close' (exited, its pipes and channel closed).
  const closed = new Promise<number | null>((resolve) => {
    child.once("error", (err) => {
      stderr += err.message;
      resolve(null);
    });
    child.once("close", (code) => resolve(code));
  });
  const kill = (): void => {
    child.kill("SIGKILL");
  };
  io.signal.addEventListener("abort", kill, { once: true });
  const { input } = io;
  // A worker that refuses the archive early leaves the rest of the body unread: drained.
  const fed =
    input && child.stdin ? pipeline(input, child.stdin).catch(() => void input.resume()) : undefined;
  try {
    const first = new Promise<void>((resolve) => {
      wake = resolve;
      if (messages.length > 0) resolve();
    });
    await Promise.race([first, closed]);
    const [message] = messages;
    const stat = message?.type === "stat" ? message.stat : undefined;
    const out = stat && io.output ? io.output(stat) : undefined;
    if (out && child.stdout) await pipeline(child.stdout, out, { end: false });
    else child.stdout?.resume();
    const code = await closed;
    await fed;
    io.signal.throwIfAborted();
    const failure = messages.find((each) => each.type === "error");
    if (failure?.type === "error") throw new EngineError(failure.status, failure.message);
    if (code !== 0 || !messages.some((each) => each.type === "done"))
      throw new EngineError(500, `the container's filesystem worker failed (exit ${code}): ${stderr.trim()}`);
    return stat;
  } catch (err) {
    kill();
    await closed;
    await fed;
    throw err;
  } finally {
    io.signal.removeEventListener("abort", kill);
  }
}

/** HEAD /containers/{id}/archive: `path`'s stat, as the container sees it. */
export async function statInRoot(
  root: ContainerRoot,
  path: string,
  container: string,
  signal: AbortSignal,
): Promise<PathStat> {
  const stat = await runWorker(root, { op: "stat", path, container }, { signal });
  if (!stat) throw new EngineError(500, "the container's filesystem worker sent no stat");
  return stat;
}

/** GET /containers/{id}/archive and export: a tar of `path` to the writable `output` gives for its stat. */
export async function archiveFromRoot(
  root: ContainerRoot,
  path: string,
  container: string,
  opts: { signal: AbortSignal; oneFileSystem?: boolean },
  output: (stat: PathStat) => Writable,
): Promise<void> {
  const request: WorkerRequest = { op: "get", path, container, oneFileSystem: opts.oneFileSystem === true };
  await runWorker(root, request, { signal: opts.signal, output });
}

/** PUT /containers/{id}/archive: the tar `input` extracted into the directory `path`. */
export async function extractIntoRoot(
  root: ContainerRoot,
  request: Omit<Extract<WorkerRequest, { op: "put" }>, "op">,
  input: Readable,
  signal: AbortSignal,
): Promise<void> {
  await runWorker(root, { op: "put", ...request }, { signal, input });
}
