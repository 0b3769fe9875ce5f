import { spawn } from "node:child_process";
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import type { CallOptions, LogOptions } from "../libcontainerd/types/client.js";
import { FailedPreconditionError } from "../libcontainerd/types/errors.js";
import { prepareLogFile } from "./files.js";
import { loggerBinary, validateLogOptions } from "./logger-binary.js";

/** The ctrd-logger of a process whose output this process copies: write into it, then `close`. */
export interface LocalLogger {
  stdout: Writable;
  stderr: Writable;
  /** Ends both streams and waits until the logger has written everything and exited. */
  close(): Promise<void>;
}

/**
 * Runs ctrd-logger as the shim runs it for `LogOptions` (the same json-file records, rotation, flush
 * on SIGUSR1), but fed by this process: for output that is copied to a terminal and also kept, as
 * dockerd logs an attached container. Resolves once the logger has its file open.
 *
 * The logger is in a process group of its own, so that a Ctrl-C at the terminal (SIGINT to the
 * foreground group) does not end it before the container's last words; it ends at the streams'
 * EOF, also when this process dies.
 */
export async function startLocalLogger(
  log: LogOptions,
  ids: { namespace: string; containerId: string },
  opts: CallOptions = {},
): Promise<LocalLogger> {
  validateLogOptions(log, `container ${ids.containerId}`);
  await prepareLogFile(log.path, `container ${ids.containerId}`);
  const args = ["path", log.path];
  if (log.maxSize) args.push("max-size", String(log.maxSize));
  if (log.maxFiles) args.push("max-files", String(log.maxFiles));
  const child = spawn(loggerBinary(), args, {
    // fd 3: stdout, fd 4: stderr, fd 5: the ready byte (containerd's binary logger contract).
    stdio: ["ignore", "ignore", "ignore", "pipe", "pipe", "pipe"],
    env: { ...process.env, CONTAINER_ID: ids.containerId, CONTAINER_NAMESPACE: ids.namespace },
    detached: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const exited = once(child, "exit").then(() => undefined);
  exited.catch(() => {});
  const pipes: readonly unknown[] = child.stdio;
  const stdout = pipes[3] as Writable;
  const stderr = pipes[4] as Writable;
  const ready = pipes[5] as Readable;
  // A logger that dies (killed, its file unwritable at open) must not fail the container's copy.
  for (const stream of [stdout, stderr]) stream.on("error", () => {});
  try {
    const [first] = (await Promise.race([
      once(ready, "data"),
      once(ready, "end").then(() => [undefined]),
      once(child, "error").then(([err]) => Promise.reject(err as Error)),
    ])) as [Buffer | undefined];
    if (first === undefined)
      throw new FailedPreconditionError(`the log driver for ${log.path} exited at start`);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  ready.destroy();
  return {
    stdout,
    stderr,
    async close() {
      stdout.end();
      stderr.end();
      await exited;
    },
  };
}
