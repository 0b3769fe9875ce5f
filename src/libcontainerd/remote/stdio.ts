import { randomBytes } from "node:crypto";
import { existsSync, lstatSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import type { Socket } from "node:net";
import { dirname, join } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { Logger } from "pino";
import { ensureOwnSubdirAsync, fsError, ownSubdirExists, refuseSymlink } from "../../fs/private-dir.js";
import { prepareLogFile } from "../../logs/files.js";
import { loggerUri, validateLogOptions } from "../../logs/logger-binary.js";
import type { StdioOptions } from "../types/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
} from "../types/errors.js";
import { FifoError, mkfifo, openFifoReader, openFifoWriter } from "./fifo.js";

/** How long a reattached stream may still deliver output after the process exited. */
const REATTACH_GRACE_MS = 250;

/** The FIFO paths handed to the shim. Empty string = that stream is not wired (null IO). */
export interface FifoPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** The host side of a process's stdio: Node streams over the FIFOs, and the paths to remove afterwards. */
export class ProcessIO {
  constructor(
    readonly paths: FifoPaths,
    readonly stdin: Writable | null,
    readonly stdout: Readable | null,
    readonly stderr: Readable | null,
    private readonly drained: Socket[],
    /** Reopened output: FIFO socket → the stream we hand out, which we may have to end ourselves. */
    private readonly reattached: { socket: Socket; exposed: PassThrough }[] = [],
    /** The shim writes to a log driver (a `binary://` URI), not to FIFOs of ours. */
    private readonly logged = false,
  ) {}

  static none(): ProcessIO {
    return new ProcessIO({ stdin: "", stdout: "", stderr: "", terminal: false }, null, null, null, []);
  }

  /**
   * Creates and opens FIFOs `<dir>/<processId>-{stdin,stdout,stderr}` before the shim sees them.
   * The shim needs stderr whenever stdout is set (outside TTY mode), so a stream the caller did
   * not ask for is still created, and drained so the container never blocks on it.
   */
  static async create(
    dir: string,
    processId: string,
    stdio: StdioOptions | undefined,
    /**
     * Exec FIFOs get a name of their own each time (containerd records it, so a reattach finds it):
     * FIFOs an earlier exec of this id could not remove (a read-only state dir) never hold the id.
     */
    uniqueNames = false,
  ): Promise<ProcessIO> {
    const want = stdio ?? {};
    const terminal = want.terminal ?? false;
    if (want.log) return ProcessIO.logged(processId, want, terminal);
    const wantsOutput = Boolean(want.stdout || want.stderr || terminal);
    if (!want.stdin && !wantsOutput) return ProcessIO.none();
    // Asynchronous: on a slow disk a directory operation costs milliseconds, which would stall
    // every other container this client drives.
    await prepareFifoDir(dir);
    const prefix = uniqueNames ? `${processId}.${randomBytes(4).toString("hex")}` : processId;
    const paths: FifoPaths = {
      stdin: want.stdin ? join(dir, `${prefix}-stdin`) : "",
      stdout: wantsOutput ? join(dir, `${prefix}-stdout`) : "",
      stderr: wantsOutput && !terminal ? join(dir, `${prefix}-stderr`) : "",
      terminal,
    };
    const opened: Socket[] = [];
    const made: FifoPaths = { stdin: "", stdout: "", stderr: "", terminal };
    try {
      for (const stream of ["stdin", "stdout", "stderr"] as const) {
        const path = paths[stream];
        if (!path) continue;
        await mkfifo(path, 0o600);
        made[stream] = path;
      }
      const stdin = paths.stdin ? track(opened, openFifoWriter(paths.stdin)) : null;
      const stdout = paths.stdout ? track(opened, openFifoReader(paths.stdout)) : null;
      const stderr = paths.stderr ? track(opened, openFifoReader(paths.stderr)) : null;
      const drained: Socket[] = [];
      const exposedStdout = want.stdout || terminal ? stdout : drain(stdout, drained);
      const exposedStderr = want.stderr ? stderr : drain(stderr, drained);
      return new ProcessIO(paths, stdin, exposedStdout, exposedStderr, drained);
    } catch (err) {
      for (const socket of opened) socket.destroy();
      // Only ours: an EEXIST means the FIFOs belong to a live process with the same id.
      await removeFifos(made);
      if (err instanceof FifoError && err.code === "EEXIST") {
        throw new AlreadyExistsError(`process ${processId} already has stdio in ${dir}: the id is in use`, {
          cause: err,
        });
      }
      if (err instanceof FifoError) {
        throw new FailedPreconditionError(`cannot make the stdio FIFO ${err.path}: ${err.code}`, {
          cause: err,
        });
      }
      if (err instanceof Error && "code" in err && !(err instanceof InternalError)) {
        throw fsError("cannot open the stdio FIFOs in", dir, err);
      }
      throw err;
    }
  }

  /**
   * stdout and stderr to ctrd-logger, which the shim starts (containerd's `binary://` stdio URI):
   * the log outlives this client, and no FIFO or stream of ours is involved.
   */
  private static async logged(processId: string, want: StdioOptions, terminal: boolean): Promise<ProcessIO> {
    const what = `stdio of ${processId}`;
    const log = want.log;
    if (!log) throw new InternalError(`${what}: no log`);
    validateLogOptions(log, what);
    if (want.stdin || want.stdout || want.stderr) {
      throw new InvalidArgumentError(
        `${what}: a log takes stdout and stderr; stdin and output streams cannot go with it`,
      );
    }
    const uri = loggerUri(log);
    await prepareLogFile(log.path, what);
    return new ProcessIO({ stdin: "", stdout: uri, stderr: uri, terminal }, null, null, null, [], [], true);
  }

  /** Reopens the FIFOs of a running process (after a restart, or from another client). */
  static reopen(paths: FifoPaths, stdio: StdioOptions): ProcessIO {
    const opened: Socket[] = [];
    const reattached: { socket: Socket; exposed: PassThrough }[] = [];
    const reader = (path: string): Readable => {
      const socket = track(opened, openFifoReader(path));
      const exposed = new PassThrough();
      socket.pipe(exposed);
      reattached.push({ socket, exposed });
      return exposed;
    };
    try {
      const stdin =
        stdio.stdin && paths.stdin && existsSync(paths.stdin)
          ? track(opened, openFifoWriter(paths.stdin))
          : null;
      const wantsStdout = (stdio.stdout || stdio.terminal) && paths.stdout && existsSync(paths.stdout);
      const stdout = wantsStdout ? reader(paths.stdout) : null;
      const stderr = stdio.stderr && paths.stderr && existsSync(paths.stderr) ? reader(paths.stderr) : null;
      return new ProcessIO(paths, stdin, stdout, stderr, [], reattached);
    } catch (err) {
      for (const socket of opened) socket.destroy();
      throw fsError(
        "cannot reopen the stdio FIFOs in",
        dirname(paths.stdout || paths.stdin || paths.stderr),
        err,
      );
    }
  }

  /**
   * A reopened FIFO whose writer is already gone (the shim closed it when the process exited)
   * never reports EOF. Once the exit is known, give the shim a moment to flush, then end the
   * streams ourselves so readers are not left waiting forever.
   */
  finishAfterExit(graceMs = REATTACH_GRACE_MS): void {
    for (const { socket, exposed } of this.reattached) {
      if (exposed.writableEnded) continue;
      setTimeout(() => {
        if (exposed.writableEnded) return;
        socket.unpipe(exposed);
        socket.destroy();
        exposed.end();
      }, graceMs).unref();
    }
  }

  /** Closes our end of stdin, so the shim sees EOF. */
  closeStdin(): Promise<void> {
    const stdin = this.stdin;
    if (!stdin || stdin.writableFinished || stdin.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      stdin.once("finish", () => resolve());
      stdin.once("error", () => resolve());
      stdin.end();
    });
  }

  /**
   * After the process is gone: stop writing, and remove the FIFO files. Output streams are left
   * to end by themselves (the shim closes its ends), so nothing already written is lost.
   */
  async release(logger?: Logger): Promise<void> {
    if (this.logged) return;
    if (this.stdin && !this.stdin.destroyed) this.stdin.destroy();
    for (const socket of this.drained) socket.destroy();
    await removeFifos(this.paths, logger);
  }

  /** On a failed create: nothing was or will be written; close everything. */
  async destroy(): Promise<void> {
    for (const stream of [this.stdin, this.stdout, this.stderr]) stream?.destroy();
    await this.release();
  }
}

function track(opened: Socket[], socket: Socket): Socket {
  opened.push(socket);
  // A closed FIFO peer surfaces as EPIPE/ECONNRESET on these sockets; the process's exit is
  // reported through wait() and events, so a stream error must not crash the caller.
  socket.on("error", () => {});
  return socket;
}

function drain(socket: Socket | null, drained: Socket[]): null {
  if (socket) {
    socket.resume();
    drained.push(socket);
  }
  return null;
}

/**
 * Removes the FIFO files. Never throws: it runs after containerd has let go of the process, whose
 * removal has happened; a file left behind (a read-only or full state dir) is logged, and the next
 * container with this id clears it (see `clearStaleFifoDir`).
 */
async function removeFifos(paths: FifoPaths, logger?: Logger): Promise<void> {
  await Promise.all(
    // Only FIFO paths: a reopened process that logs has `binary://` URIs here.
    [paths.stdin, paths.stdout, paths.stderr]
      .filter((path) => path && !path.includes("://"))
      .map((path) =>
        rm(path, { force: true }).catch((err: unknown) =>
          logger?.warn({ err, path }, "could not remove a stdio FIFO; it is left behind"),
        ),
      ),
  );
}

/**
 * `<stateDir>/<namespace>/<id>`. The state dir is made as needed; the two dirs below it must be
 * real dirs of ours: a symlink there would have us make FIFOs, and later delete recursively,
 * wherever it points.
 */
async function prepareFifoDir(dir: string): Promise<void> {
  const namespaceDir = dirname(dir);
  // Both there from an earlier process (every exec after the first): two lstats settle it.
  if (ownSubdirExists(namespaceDir) && ownSubdirExists(dir)) return;
  const stateDir = dirname(namespaceDir);
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o711 });
  } catch (err) {
    throw fsError("cannot create", stateDir, err);
  }
  await ensureOwnSubdirAsync(namespaceDir, 0o711);
  await ensureOwnSubdirAsync(dir, 0o700);
}

/**
 * A container id containerd has just accepted as new owns `<stateDir>/<namespace>/<id>`: anything
 * there is left from an earlier container of that id whose cleanup failed (a read-only or full
 * state dir), and would otherwise hold the id "in use". Best effort: a failure shows later, typed.
 */
/** The FIFOs a process with this id would have (`ProcessIO.create`'s names), where nothing owns them any more. */
export async function removeStaleFifos(dir: string, processId: string): Promise<void> {
  await refuseSymlink(dir);
  await removeFifos({
    stdin: join(dir, `${processId}-stdin`),
    stdout: join(dir, `${processId}-stdout`),
    stderr: join(dir, `${processId}-stderr`),
    terminal: false,
  });
}

export async function clearStaleFifoDir(dir: string, logger: Logger): Promise<void> {
  if (!mayExist(dir)) return;
  try {
    await refuseSymlink(dirname(dir));
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    logger.debug({ err, dir }, "could not clear a stale FIFO dir");
  }
}

/**
 * Whether a FIFO dir may be there. Most containers never have one (null IO, a log driver): one
 * lstat, without a round trip through libuv's threads or an ENOENT error built and thrown, settles
 * it. (A stat of a state dir entry does not wait for a disk as a mkdir or an rm may.)
 */
function mayExist(dir: string): boolean {
  try {
    return lstatSync(dir, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return true; // EACCES, ENOTDIR, …: the full checks below name it
  }
}

/**
 * Removes a deleted container's FIFO dir; a failure is logged, not thrown (containerd has deleted
 * the container already). The namespace dir is checked first by `checkFifoDirParent`.
 */
export async function removeFifoDir(dir: string, logger: Logger): Promise<void> {
  if (!mayExist(dir)) return;
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    logger.warn({ err, dir }, "could not remove a deleted container's FIFO dir; it is left behind");
  }
}

/** Before deleting a container: its FIFO dir must not sit under a symlink (we remove it recursively). */
export async function checkFifoDirParent(dir: string): Promise<void> {
  if (mayExist(dir)) await refuseSymlink(dirname(dir));
}
