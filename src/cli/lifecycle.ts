import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { ContainerInfo, LogOptions, Task } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { LOG_LABELS, logOptionsFromLabels } from "../logs/labels.js";
import { RUNC_V1_SHIM } from "../runtime/names.js";
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
  const log = startLog(settings, info, id);
  let started: Task | undefined;
  try {
    started = await container.newTask({ stdio: log ? { log } : {} });
    await started.start();
  } catch (err) {
    await started?.forceDelete().catch(() => {});
    throw launchFailure(err, info.spec?.process?.args ?? []);
  }
}

/**
 * The log a start writes to: the one the container had, else ctrd's default; none for a container
 * run with `--log-driver none`, nor on the v1 shim, which cannot run a log driver (`run -d` started
 * it without one, with a warning).
 */
function startLog(settings: GlobalSettings, info: ContainerInfo, id: string): LogOptions | undefined {
  const log = logOptionsFromLabels(info.labels);
  if (log) return log;
  if (info.labels[LOG_LABELS.driver] === "none") return undefined;
  if (info.runtime.name === RUNC_V1_SHIM) {
    settings.logger.warn(
      `the ${RUNC_V1_SHIM} runtime cannot keep a log: the container's output is discarded`,
    );
    return undefined;
  }
  return { path: containerLogPath(settings, id) };
}

/**
 * The signal that asks a container to stop when none is given: its image's StopSignal (docker keeps
 * it from the image's config), else SIGTERM; also when the image is gone or unreadable now.
 */
async function defaultStopSignal(client: LibcontainerdClient, id: string): Promise<string> {
  const { image } = await (await client.loadContainer(id)).info();
  if (!image) return "SIGTERM";
  const config = await client.images.config(image).catch(() => undefined);
  return config?.config?.StopSignal || "SIGTERM";
}

/**
 * docker stop: SIGTERM (or `stopSignal`, docker stop -s; or its image's StopSignal), SIGKILL after
 * `graceMs`, then the task is deleted (its exit remembered, its shim and logger gone). A container
 * that is not running is left as it is.
 */
export async function stopContainer(
  client: LibcontainerdClient,
  id: string,
  graceMs: number,
  stopSignal?: string,
): Promise<void> {
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
    await signal(task, stopSignal ?? (await defaultStopSignal(client, id)));
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

async function signal(task: Task, name: string): Promise<void> {
  await task.kill(name).catch((err: unknown) => {
    // Exited in between: what the signal was for.
    if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
  });
}
