import type { CallOptions, Container } from "../libcontainerd/types/client.js";
import { isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import { flushLogger } from "./flush.js";
import { logOptionsFromLabels } from "./labels.js";
import { type LogLine, type ReadLogsOptions, readLogs } from "./reader.js";

/**
 * A container's log (where its last task with a log wrote). With `follow`, it ends when the task
 * exits (at once when there is no running task), unless `exited` says otherwise.
 */
export async function* containerLogs(
  container: Container,
  opts: ReadLogsOptions & CallOptions = {},
): AsyncGenerator<LogLine> {
  const info = await container.info(opts);
  const log = logOptionsFromLabels(info.labels);
  if (!log)
    throw new NotFoundError(`container ${container.id} has no log: no task of it was created with one`);
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  try {
    let exited = opts.exited;
    if (opts.follow && !exited) exited = (await exitOf(container, { ...opts, signal })).exited;
    // An exited task's logger may still hold the end of its output (a last line without a newline
    // waits a second for it): written out first, so that what is read is all the container wrote.
    if (!opts.follow && (await stoppedTask(container, { ...opts, signal })))
      await flushLogger(log.path, signal).catch(() => {});
    yield* readLogs(log.path, { ...opts, ...(exited ? { exited } : {}) });
  } finally {
    stop.abort(); // the wait for the exit, when the caller stopped reading first
  }
}

/** Whether the container has a task that has exited (its shim, and so its logger, still there). */
async function stoppedTask(container: Container, opts: CallOptions): Promise<boolean> {
  try {
    return (await (await container.task(opts)).status(opts)) === "stopped";
  } catch (err) {
    if (isErrorCode(err, "not_found")) return false;
    throw err;
  }
}

async function exitOf(container: Container, opts: CallOptions): Promise<{ exited: Promise<unknown> }> {
  try {
    const task = await container.task(opts);
    if ((await task.status(opts)) === "stopped") return { exited: Promise.resolve() };
    const exited = task.wait(opts);
    exited.catch(() => {});
    return { exited };
  } catch (err) {
    if (isErrorCode(err, "not_found")) return { exited: Promise.resolve() };
    throw err;
  }
}
