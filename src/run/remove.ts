import type { CallOptions, Client, Container, Task } from "../libcontainerd/types/client.js";
import { FailedPreconditionError, isErrorCode } from "../libcontainerd/types/errors.js";

export interface RemoveContainerOptions extends CallOptions {
  /** Kill whatever runs (SIGKILL), then remove: `docker rm -f`. */
  force?: boolean;
}

/**
 * `docker rm`: removes a container and its stopped task in one call. A running task is a
 * FailedPreconditionError unless `force`, which kills it first. NotFoundError when there is no
 * such container.
 */
export async function removeContainer(
  client: Client,
  id: string,
  opts: RemoveContainerOptions = {},
): Promise<void> {
  const { force, ...call } = opts;
  const container = await client.loadContainer(id, call);
  await removeTask(container, force ?? false, call);
  try {
    await container.delete(call);
  } catch (err) {
    // Removed by someone else since we loaded it.
    if (!isErrorCode(err, "not_found")) throw err;
  }
}

async function removeTask(container: Container, force: boolean, call: CallOptions): Promise<void> {
  let task: Awaited<ReturnType<Container["task"]>>;
  try {
    task = await container.task(call);
  } catch (err) {
    if (isErrorCode(err, "not_found")) return;
    throw err;
  }
  if (force) {
    await task.forceDelete(call);
    return;
  }
  const status = await task.status(call);
  if (status !== "stopped" && status !== "created" && status !== "unknown")
    throw new FailedPreconditionError(
      `remove container ${container.id}: it is ${status}; stop it first, or remove it with force`,
    );
  // A created task never ran: forceDelete is what removes it (a plain delete refuses it).
  if (status === "created") await task.forceDelete(call);
  else
    await task.delete(call).catch((err: unknown) => {
      if (!isErrorCode(err, "not_found")) throw err;
    });
}

/**
 * Deletes an exited task, or finds it gone: removed meanwhile by someone else (removeContainer with
 * force, whose kill was the exit), whose delete may also have closed the shim under ours ("ttrpc: closed").
 */
export async function deleteExited(container: Container, task: Task, call: CallOptions = {}): Promise<void> {
  try {
    await task.delete(call);
  } catch (err) {
    if (isErrorCode(err, "not_found")) return;
    const gone = await container.task(call).then(
      () => false,
      (lookup: unknown) => isErrorCode(lookup, "not_found"),
    );
    if (!gone) throw err;
  }
}
