import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { Task } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { logOptionsFromLabels } from "../logs/labels.js";
import { CliError, launchFailure } from "./errors.js";
import { containerLogPath } from "./log-options.js";
import type { GlobalSettings } from "./options.js";

async function existingTask(client: LibcontainerdClient, id: string): Promise<Task | undefined> {
  const container = await client.loadContainer(id);
  return container.task().catch((err: unknown) => {
    if (isErrorCode(err, "not_found")) return undefined;
    throw err;
  });
}

/**
 * Starts a created or exited container again, writing to the same log (a container without one
 * gets ctrd's default log). Its exit and the start are remembered on the container.
 */
export async function startContainer(
  settings: GlobalSettings,
  client: LibcontainerdClient,
  id: string,
): Promise<void> {
  const container = await client.loadContainer(id);
  const task = await existingTask(client, id);
  if (task) {
    const status = await task.status();
    if (status === "running") return;
    if (status === "paused" || status === "pausing")
      throw new CliError(
        `container ${id} is paused: resume it instead (ctrd resume ${id})`,
        "failed_precondition",
      );
    if (status === "created") {
      await task.start();
      return;
    }
    await task.delete(); // stopped: remembers the exit, frees the shim
  }
  const info = await container.info();
  const log = logOptionsFromLabels(info.labels) ?? { path: containerLogPath(settings, id) };
  let started: Task | undefined;
  try {
    started = await container.newTask({ stdio: { log } });
    await started.start();
  } catch (err) {
    await started?.forceDelete().catch(() => {});
    throw launchFailure(err, info.spec?.process?.args ?? []);
  }
}

/**
 * docker stop: SIGTERM, SIGKILL after `graceMs`, then the task is deleted (its exit remembered,
 * its shim and logger gone). A container that is not running is left as it is.
 */
export async function stopContainer(client: LibcontainerdClient, id: string, graceMs: number): Promise<void> {
  const task = await existingTask(client, id);
  if (!task) return;
  const status = await task.status();
  if (status === "created") {
    await task.forceDelete();
    return;
  }
  if (status !== "stopped") {
    const exited = task.wait();
    exited.catch(() => {});
    if (status === "paused" || status === "pausing") await task.resume().catch(() => {});
    await signal(task, "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    if ((await Promise.race([exited.then(() => "exited" as const), graceOver])) === "timeout")
      await signal(task, "SIGKILL");
    clearTimeout(timer);
    await exited;
  }
  await task.delete().catch((err: unknown) => {
    if (!isErrorCode(err, "not_found")) throw err;
  });
}

async function signal(task: Task, name: NodeJS.Signals): Promise<void> {
  await task.kill(name).catch((err: unknown) => {
    // Exited in between: what the signal was for.
    if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
  });
}
