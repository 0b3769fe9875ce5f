import { isErrorCode } from "../libcontainerd/types/errors.js";
import { exitCodeFor, formatError } from "./errors.js";

export interface EachContainerOptions {
  /** `rm -f`: a container that does not exist is reported, and is no failure (as with docker). */
  missingIsFine?: boolean;
}

/**
 * Does `action` for each container in turn and prints what it returns (the id by default), as
 * docker's rm, stop, start, restart, kill, pause, unpause and wait do: one that fails (no such
 * container, not running) is reported on a line of its own and the others are still done; ctrd
 * then exits with the first failure's status. A containerd that cannot be reached (or a command
 * cut short) ends it at once: it would fail the same way for each.
 */
export async function forEachContainer(
  ids: readonly string[],
  action: (id: string) => Promise<string | undefined>,
  opts: EachContainerOptions = {},
): Promise<void> {
  let failure: unknown;
  for (const id of ids) {
    let output: string | undefined;
    try {
      output = await action(id);
    } catch (err) {
      if (isErrorCode(err, "unavailable") || isErrorCode(err, "canceled")) throw err;
      process.stderr.write(`${formatError(err)}\n`);
      if (!(opts.missingIsFine && isErrorCode(err, "not_found"))) failure ??= err;
      continue;
    }
    process.stdout.write(`${output ?? id}\n`);
  }
  if (failure !== undefined) process.exitCode = exitCodeFor(failure);
}
