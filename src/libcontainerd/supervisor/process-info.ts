import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** The argv of a process, or undefined when it is gone (or /proc is not there). */
export function processArgv(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw === "" ? undefined : raw.replace(/\0$/, "").split("\0");
  } catch {
    return undefined;
  }
}

/**
 * Whether a pid names a process that still runs. A zombie (exited, not yet reaped) answers
 * `kill(pid, 0)` like a live process, so /proc's state is checked where it exists.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}

/** The fields of /proc/PID/stat after the command name (which may itself hold spaces and parens). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Whether the process is stopped (SIGSTOP / SIGTSTP): it holds its sockets but answers nothing. */
export function isProcessStopped(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === "T" || state === "t";
}

/**
 * CPU time the process has used so far (user + system, all threads), in clock ticks; undefined when
 * it is gone. A containerd that answers no probe but whose CPU time moves is busy, not hung.
 */
export function cpuTicks(pid: number): number | undefined {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of stat(5); the state (field 3) is fields[0] here.
  const utime = Number(fields?.[11]);
  const stime = Number(fields?.[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

/** Live processes run as `<binary> --config <configFile>`: a managed containerd started for these dirs. */
export function findContainerdProcesses(configFile: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (isManagedContainerd(pid, configFile)) found.push(pid);
  }
  return found;
}

/** Guards adoption against a recycled pid: the process must be a containerd running our config. */
export function isManagedContainerd(pid: number, configFile: string): boolean {
  const argv = processArgv(pid);
  if (!argv || !isProcessAlive(pid)) return false;
  const configIndex = argv.indexOf("--config");
  return (
    /(^|\/)containerd(\.exe)?$/.test(argv[0] ?? "") &&
    configIndex >= 0 &&
    argv[configIndex + 1] === configFile
  );
}

/** Polls until the pid is gone; true if it went within `timeoutMs`. For processes that are not our children. */
export async function waitForProcessExit(pid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
