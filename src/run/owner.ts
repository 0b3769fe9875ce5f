/**
 * Containers that must not outlive the process that made them carry its pid and start time as
 * labels; `reap()` removes those whose owner is gone (as testcontainers' reaper does, without a
 * sidecar). The start time tells a dead owner from a new process that got the same pid.
 */
import { readFileSync } from "node:fs";
import type { CallOptions, Client } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { removeContainer } from "./remove.js";

export const OWNER_PID_LABEL = "io.ctrd.owner.pid";
export const OWNER_START_LABEL = "io.ctrd.owner.start";

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22); undefined off Linux. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The labels that make a container this process's, for `reap()`. */
export function ownerLabels(pid = process.pid): Record<string, string> {
  const start = processStartTime(pid);
  return { [OWNER_PID_LABEL]: String(pid), ...(start ? { [OWNER_START_LABEL]: start } : {}) };
}

/** Whether the process that owns a container with these labels still runs (true when it cannot tell). */
export function ownerAlive(labels: Record<string, string>): boolean {
  const pid = Number(labels[OWNER_PID_LABEL]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, as another user's process.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const recorded = labels[OWNER_START_LABEL];
  if (recorded === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === recorded;
}

export interface ReapOptions extends CallOptions {
  /** Also remove containers of this process (a client closing with `reapOnExit`). */
  includeSelf?: boolean;
}

/**
 * Removes (force: killing what runs) every container of the client's namespace whose owner process
 * is gone. Owners are checked on this host: use it where containerd runs. Returns the removed ids.
 */
export async function reap(client: Client, opts: ReapOptions = {}): Promise<string[]> {
  const { includeSelf, ...call } = opts;
  const removed: string[] = [];
  const self = ownerLabels();
  for (const info of await client.listContainers(call)) {
    if (info.labels[OWNER_PID_LABEL] === undefined) continue;
    const mine =
      info.labels[OWNER_PID_LABEL] === self[OWNER_PID_LABEL] &&
      info.labels[OWNER_START_LABEL] === self[OWNER_START_LABEL];
    if (mine ? !includeSelf : ownerAlive(info.labels)) continue;
    try {
      await removeContainer(client, info.id, { ...call, force: true });
      removed.push(info.id);
    } catch (err) {
      // Someone else removed it meanwhile: the outcome wanted.
      if (!isErrorCode(err, "not_found")) throw err;
    }
  }
  return removed;
}
