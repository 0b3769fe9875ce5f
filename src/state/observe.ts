import type {
  CallOptions,
  Container,
  ContainerInfo,
  ExitStatus,
  Task,
  TaskStatus,
} from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import {
  exitLabels,
  type RememberedState,
  rememberedState,
  remembersExit,
  UNKNOWN_EXIT_CODE,
} from "./labels.js";

/** What a container is doing now, with what it remembers. */
export interface ObservedState {
  /** The task's status; `none` without a task (never started, or exited and deleted). */
  task: TaskStatus | "none";
  /** The running task's pid; 0 otherwise. */
  pid: number;
  /** The exit of a stopped task that is not deleted yet. */
  exit?: ExitStatus;
  remembered: RememberedState;
  labels: Record<string, string>;
  info: ContainerInfo;
}

/**
 * Looks at a container's task and remembers its exit if nobody did yet: a container whose task
 * exited while no client ran keeps that exit in its shim until the task is deleted, so the next
 * look records it. The container's `info()` must be fresh (a newly loaded container).
 */
export async function observe(container: Container, opts?: CallOptions): Promise<ObservedState> {
  const info = await container.info(opts);
  const remembered = rememberedState(info.labels);
  const state: ObservedState = { task: "none", pid: 0, remembered, labels: info.labels, info };
  let task: Task;
  try {
    task = await container.task(opts);
    state.task = await task.status(opts);
  } catch (err) {
    if (!isErrorCode(err, "not_found")) throw err;
    // No task (never started, deleted, or removed meanwhile).
    state.remembered = lostRun(remembered);
    return state;
  }
  if (state.task !== "stopped") {
    state.pid = task.pid;
    return state;
  }
  const exit = await task.wait(opts);
  state.exit = exit;
  if (!remembersExit(remembered, exit.exitedAt)) {
    await rememberExit(container, exit, opts);
    state.remembered = rememberedState({ ...info.labels, ...exitLabels(exit) });
  }
  return state;
}

/** Records an exit on the container; where the backend keeps no record, there is nothing to do. */
export async function rememberExit(
  container: Container,
  exit: ExitStatus,
  opts?: CallOptions,
): Promise<void> {
  try {
    await container.setLabels(exitLabels(exit), opts);
  } catch (err) {
    if (!isErrorCode(err, "not_implemented") && !isErrorCode(err, "not_found")) throw err;
  }
}

/**
 * A run that started and whose task is gone with no exit recorded: its shim was killed (and
 * containerd cleaned up after it), or the host rebooted under it. Docker reports such a container
 * as exited with 255, the end of the run unknown; a `finishedAt` is the run before's.
 */
function lostRun(remembered: RememberedState): RememberedState {
  if (!remembered.startedAt || remembered.exitCode !== undefined) return remembered;
  const { finishedAt: _previous, ...rest } = remembered;
  return { ...rest, exitCode: UNKNOWN_EXIT_CODE };
}
