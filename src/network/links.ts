import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { InternalError } from "../libcontainerd/types/errors.js";

const run = promisify(execFile);

export function linkExists(device: string): boolean {
  return existsSync(`/sys/class/net/${device}`);
}

/** Removes a network device (a network's bridge, which the CNI bridge plugin never deletes). */
export async function deleteLink(device: string, signal?: AbortSignal): Promise<void> {
  try {
    await run("ip", ["link", "delete", device], signal ? { signal } : {});
  } catch (err) {
    if (linkExists(device)) {
      throw new InternalError(`deleting the bridge device ${device}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}
