import type { CallOptions, Container } from "../libcontainerd/types/client.js";
import { isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
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
    yield* readLogs(log.path, { ...opts, ...(exited ? { exited } : {}) });
  } finally {
    stop.abort(); // the wait for the exit, when the caller stopped reading first
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
