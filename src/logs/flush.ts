import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { delay } from "../libcontainerd/call.js";
import { stateFileOf } from "./files.js";

const FLUSH_WAIT_MS = 5_000;

interface LoggerState {
  pid: number;
  flushes: number;
}

async function readState(path: string): Promise<LoggerState | undefined> {
  const text = await readFile(stateFileOf(path), "utf8").catch(() => undefined);
  const match = text ? /^(\d+) (\d+)\n$/.exec(text) : null;
  return match ? { pid: Number(match[1]), flushes: Number(match[2]) } : undefined;
}

/** Whether `pid` is still this log's logger (and not another process that got its number). */
async function isLogger(pid: number, path: string): Promise<boolean> {
  const args = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  return args.some((arg, i) => arg === "path" && resolve(args[i + 1] ?? "") === resolve(path));
}

/**
 * Makes the logger write out everything its pipes hold, and waits until it has. For the end of a
 * follow: once the container has exited, nothing more enters the pipes, so afterwards the file
 * holds all of its output. A logger that is gone has written everything already. Best effort
 * beyond FLUSH_WAIT_MS (a logger that does not answer must not hang the reader).
 */
export async function flushLogger(path: string, signal?: AbortSignal): Promise<void> {
  const before = await readState(path);
  if (!before || !(await isLogger(before.pid, path))) return;
  try {
    process.kill(before.pid, "SIGUSR1");
  } catch {
    return; // exited meanwhile (ESRCH), or not ours to signal (EPERM)
  }
  for (let waited = 0; waited < FLUSH_WAIT_MS; waited += 10) {
    await delay(10, signal, `flush the log ${path}`);
    const now = await readState(path);
    if (!now || now.pid !== before.pid || now.flushes > before.flushes) return;
    if (!(await isLogger(before.pid, path))) return;
  }
}
