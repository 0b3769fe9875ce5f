import { humanDuration } from "../state/human-duration.js";
import type { ObservedState } from "../state/observe.js";

export { humanDuration };

/** STATUS as `docker ps` prints it: `Up 5 seconds`, `Up 2 minutes (Paused)`, `Exited (3) 2 minutes ago`, `Created`. */
export function statusText(state: ObservedState, now = Date.now()): string {
  const up = () => {
    const started = state.remembered.startedAt;
    return started ? `Up ${humanDuration(now - started.getTime())}` : "Up";
  };
  const exited = (code: number | undefined, at: Date | undefined) =>
    `Exited (${code ?? 0})${at ? ` ${humanDuration(now - at.getTime())} ago` : ""}`;
  switch (state.task) {
    case "running":
      return up();
    case "paused":
    case "pausing":
      return `${up()} (Paused)`;
    case "created":
      return "Created";
    case "stopped":
      return exited(state.exit?.exitCode, state.exit?.exitedAt);
    case "unknown":
      return "Dead";
    default:
      return state.remembered.exitCode !== undefined
        ? exited(state.remembered.exitCode, state.remembered.finishedAt)
        : "Created";
  }
}
