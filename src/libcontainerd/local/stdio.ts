/**
 * Node streams over the stdio handles HcsCreateProcess returns. On the Linux fake they are pipe
 * file descriptors: wrapped in `net.Socket` (libuv pipes, non-blocking), never fs streams, which
 * would tie up a thread-pool thread per blocking read.
 *
 * On Windows they are overlapped pipe HANDLEs; libuv cannot adopt those from JS, so stdio is
 * refused there for now (it needs a native helper or ReadFile/WriteFile over koffi; unverified).
 */
import fs from "node:fs";
import net from "node:net";
import type { Readable, Writable } from "node:stream";
import type { StdioOptions } from "../types/client.js";
import { NotImplementedError } from "../types/errors.js";
import type { HcsProcessInformation } from "./vmcompute.js";

export interface ProcessStreams {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
}

export function wantsStdio(stdio: StdioOptions | undefined): boolean {
  return Boolean(stdio?.stdin || stdio?.stdout || stdio?.stderr);
}

/** Checked before HcsCreateProcess, so an unsupported request creates nothing. */
export function assertStdioSupported(stdio: StdioOptions | undefined, platform = process.platform): void {
  if (stdio?.log)
    throw new NotImplementedError("logs (stdio.log) need containerd's shim: not on the HCS backend");
  if (platform === "win32" && wantsStdio(stdio)) {
    throw new NotImplementedError("stdio for HCS processes is not implemented on Windows yet (pipe HANDLEs)");
  }
}

/**
 * Wraps the handles HcsCreateProcess returned, which are ours from then on. If one cannot be wrapped, every
 * handle is closed exactly once (a wrapped one by its stream, the others here) and the error thrown: closing a
 * number twice could close a pipe our call threads have meanwhile opened under it.
 */
export function streamsFromHandles(info: HcsProcessInformation): ProcessStreams {
  const raw = { stdin: info.stdInput, stdout: info.stdOutput, stderr: info.stdError };
  const streams: { stdin: net.Socket | null; stdout: net.Socket | null; stderr: net.Socket | null } = {
    stdin: null,
    stdout: null,
    stderr: null,
  };
  try {
    for (const name of ["stdin", "stdout", "stderr"] as const) {
      if (!raw[name]) continue;
      const fd = Number(raw[name]);
      streams[name] = new net.Socket({ fd, readable: name !== "stdin", writable: name === "stdin" });
      raw[name] = 0n; // its stream closes it now
    }
  } catch (err) {
    for (const stream of Object.values(streams)) stream?.destroy();
    closeRawStdio({
      processId: info.processId,
      stdInput: raw.stdin,
      stdOutput: raw.stdout,
      stdError: raw.stderr,
    });
    throw err;
  }
  // A process whose reader went away gets EPIPE on its next write; here, an error on a stream
  // nobody listens to must not crash the host process.
  streams.stdin?.on("error", () => {});
  return streams;
}

/** Closes handles that were never wrapped (setup failed after HcsCreateProcess). */
export function closeRawStdio(info: HcsProcessInformation): void {
  for (const handle of [info.stdInput, info.stdOutput, info.stdError]) {
    if (!handle) continue;
    try {
      fs.closeSync(Number(handle));
    } catch {
      // Already closed: nothing left to release.
    }
  }
}
