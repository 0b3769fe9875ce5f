import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import koffi from "koffi";

// Node has no mkfifo, and spawning mkfifo(1) costs milliseconds per container; libc's costs microseconds.
let libcMkfifo: ((path: string, mode: number) => number) | undefined;
let libcErrno: (() => number) | undefined;

function bindLibc(): void {
  if (libcMkfifo) return;
  const libc = koffi.load("libc.so.6");
  libcMkfifo = libc.func("int mkfifo(const char *path, uint32_t mode)") as (
    path: string,
    mode: number,
  ) => number;
  const errnoLocation = libc.func("int *__errno_location(void)") as () => unknown;
  libcErrno = () => koffi.decode(errnoLocation(), "int") as number;
}

export class FifoError extends Error {
  constructor(
    readonly path: string,
    readonly errno: number,
  ) {
    super(`mkfifo ${path} failed: errno ${errno}`);
  }
}

export function mkfifo(path: string, mode = 0o600): void {
  bindLibc();
  if (libcMkfifo!(path, mode) !== 0) throw new FifoError(path, libcErrno!());
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
