/**
 * What a container remembers about its runs, as labels on containerd's own container record, so it
 * survives the client, ctrd and containerd restarts, and goes with the container.
 */
export const STATE_LABELS = {
  startedAt: "io.ctrd.state.startedAt",
  finishedAt: "io.ctrd.state.finishedAt",
  exitCode: "io.ctrd.state.exitCode",
  oomKilled: "io.ctrd.state.oomKilled",
  restartCount: "io.ctrd.state.restartCount",
} as const;

/** The exit status of a run whose end nobody saw (as Docker reports it). */
export const UNKNOWN_EXIT_CODE = 255;

export interface RememberedState {
  /** The last start. */
  startedAt?: Date;
  /** The last exit (kept while a later run goes on, as Docker does). */
  finishedAt?: Date;
  /** The last exit's code; undefined while running or before the first exit. */
  exitCode?: number;
  oomKilled: boolean;
  /** Starts after the first. */
  restartCount: number;
}

function date(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

function integer(value: string | undefined): number | undefined {
  return value !== undefined && /^-?\d+$/.test(value) ? Number(value) : undefined;
}

export function rememberedState(labels: Record<string, string>): RememberedState {
  const state: RememberedState = {
    oomKilled: labels[STATE_LABELS.oomKilled] === "true",
    restartCount: integer(labels[STATE_LABELS.restartCount]) ?? 0,
  };
  const startedAt = date(labels[STATE_LABELS.startedAt]);
  const finishedAt = date(labels[STATE_LABELS.finishedAt]);
  const exitCode = integer(labels[STATE_LABELS.exitCode]);
  if (startedAt) state.startedAt = startedAt;
  if (finishedAt) state.finishedAt = finishedAt;
  if (exitCode !== undefined) state.exitCode = exitCode;
  return state;
}

/** The labels for a start that follows `before`: the exit fields of the last run are cleared. */
export function startLabels(before: RememberedState, at: Date): Record<string, string | undefined> {
  return {
    [STATE_LABELS.startedAt]: at.toISOString(),
    [STATE_LABELS.restartCount]: String(before.startedAt ? before.restartCount + 1 : 0),
    [STATE_LABELS.exitCode]: undefined,
    [STATE_LABELS.oomKilled]: undefined,
  };
}

export function exitLabels(exit: { exitCode: number; exitedAt: Date; oomKilled?: boolean }) {
  return {
    [STATE_LABELS.finishedAt]: exit.exitedAt.toISOString(),
    [STATE_LABELS.exitCode]: String(exit.exitCode),
    [STATE_LABELS.oomKilled]: String(exit.oomKilled ?? false),
  };
}

/** Whether the remembered state already holds this exit. */
export function remembersExit(state: RememberedState, exitedAt: Date): boolean {
  return state.exitCode !== undefined && state.finishedAt?.getTime() === exitedAt.getTime();
}
