import { execFile } from "node:child_process";
import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import { errnoName, nativeAddon } from "../../platform/native-addon.js";

/** native/fifo: mkfifo(3) as a Node-API addon (Node has no mkfifo). */
interface FifoAddon {
  mkfifo(path: string, mode: number): number;
}

/** Null when not built; `CTRD_FIFO_ADDON` names another build. */
const fifoAddon = nativeAddon<FifoAddon>("native/fifo/build/fifo.node", "CTRD_FIFO_ADDON");

export class FifoError extends Error {
  constructor(
    readonly path: string,
    /** The errno's name (`EEXIST`, `EACCES`, …). */
    readonly code: string,
    detail = code,
  ) {
    super(`mkfifo ${path} failed: ${detail}`);
  }
}

/**
 * Makes a FIFO: one system call through native/fifo on any libc (no FFI, no glibc-only binding),
 * or, where the addon is not built, mkfifo(1), which costs a process per FIFO.
 */
export async function mkfifo(path: string, mode = 0o600): Promise<void> {
  if (path.includes("\0")) throw new FifoError(path, "EINVAL", "the path contains NUL");
  const native = fifoAddon();
  if (native) {
    const errno = native.mkfifo(path, mode);
    if (errno !== 0) throw new FifoError(path, errnoName(errno));
    return;
  }
  await new Promise<void>((resolve, reject) => {
    execFile("mkfifo", ["-m", mode.toString(8), "--", path], (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = /File exists/.test(stderr)
        ? "EEXIST"
        : /Permission denied/.test(stderr)
          ? "EACCES"
          : "EIO";
      reject(new FifoError(path, code, stderr.trim() || err.message));
    });
  });
}

/**
 * Opens a FIFO without blocking and wraps it in a socket, so reads and writes are epoll-driven
 * instead of tying up a libuv pool thread (a blocking FIFO open hangs until the peer opens it).
 * Readers open O_RDONLY|O_NONBLOCK (succeeds at once). Writers open O_RDWR|O_NONBLOCK, which
 * also succeeds at once on Linux, so stdin is writable before the shim opens its end. O_NOFOLLOW:
 * a symlink planted at a FIFO's name is refused (ELOOP), not followed.
 */
export function openFifoReader(path: string): Socket {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  return new Socket({ fd, readable: true, writable: false });
}

export function openFifoWriter(path: string): Socket {
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  return new Socket({ fd, readable: false, writable: true });
}
