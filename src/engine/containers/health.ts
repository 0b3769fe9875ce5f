import type { ImageConfig } from "../../images/media-types.js";
import { badRequest } from "../errors.js";

/** api/types/container.HealthConfig (durations in nanoseconds): the image config's Healthcheck, as the API carries it. */
export type HealthConfig = NonNullable<NonNullable<ImageConfig["config"]>["Healthcheck"]>;

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** api/types.Health, as inspect shows it under State.Health. */
export interface HealthState {
  Status: "starting" | "healthy" | "unhealthy";
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export interface ProbeResult {
  exitCode: number;
  output: string;
}

/** Runs the probe command; its signal aborts it (timeout, or the container stopped). */
export type Probe = (command: string[], signal: AbortSignal) => Promise<ProbeResult>;

const NS_PER_MS = 1_000_000;
/** daemon/health.go's defaults. */
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_START_INTERVAL_MS = 5_000;
const DEFAULT_RETRIES = 3;
const MAX_LOG_ENTRIES = 5;
/** The output kept of a probe (maxOutputLen). */
export const MAX_PROBE_OUTPUT = 4096;

const HEALTH_FIELDS = ["Interval", "Timeout", "StartPeriod", "StartInterval"] as const;

/** Config.Healthcheck as a create request gives it; 400 for what dockerd's verifyContainerSettings refuses. */
export function parseHealthConfig(value: unknown): HealthConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value))
    throw badRequest("invalid Healthcheck: want an object");
  const body = value as Record<string, unknown>;
  const config: HealthConfig = {};
  if (body.Test !== undefined && body.Test !== null) {
    if (!Array.isArray(body.Test) || !body.Test.every((part) => typeof part === "string"))
      throw badRequest("invalid Healthcheck.Test: want a list of strings");
    config.Test = body.Test;
  }
  for (const name of HEALTH_FIELDS) {
    const field = body[name];
    if (field === undefined || field === null) continue;
    if (typeof field !== "number" || !Number.isFinite(field)) throw badRequest(`invalid Healthcheck.${name}`);
    if (field !== 0 && field < NS_PER_MS) throw badRequest(`${name} in Healthcheck cannot be less than 1ms`);
    config[name] = field;
  }
  if (body.Retries !== undefined && body.Retries !== null) {
    if (typeof body.Retries !== "number" || !Number.isInteger(body.Retries))
      throw badRequest("invalid Healthcheck.Retries");
    if (body.Retries < 0) throw badRequest("Retries in Healthcheck cannot be negative");
    config.Retries = body.Retries;
  }
  return config;
}

/** The container's healthcheck completed from the image's, field by field (daemon/commit.go merge). */
export function mergeHealthConfig(
  container: HealthConfig | undefined,
  image: HealthConfig | undefined,
): HealthConfig | undefined {
  if (!container) return image;
  if (!image) return container;
  const merged: HealthConfig = { ...container };
  if (!merged.Test || merged.Test.length === 0) {
    if (image.Test) merged.Test = image.Test;
  }
  for (const name of [...HEALTH_FIELDS, "Retries"] as const) {
    if (!merged[name] && image[name]) merged[name] = image[name];
  }
  return merged;
}

/** The command a healthcheck runs, or undefined when there is none (`NONE`, or no test). */
export function probeCommand(config: HealthConfig | undefined): string[] | undefined {
  const [kind, ...rest] = config?.Test ?? [];
  if (kind === "CMD" && rest.length > 0) return rest;
  if (kind === "CMD-SHELL" && rest.length > 0) return ["/bin/sh", "-c", rest.join(" ")];
  return undefined;
}

function ms(ns: number | undefined, fallback: number): number {
  return ns && ns > 0 ? ns / NS_PER_MS : fallback;
}

/** Go's time.Duration.String() for the timeout message: 30s, 1.5s, 500ms, 1m30s. */
function goDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${milliseconds}ms`;
  const minutes = Math.floor(milliseconds / 60_000);
  const seconds = (milliseconds % 60_000) / 1000;
  return `${minutes > 0 ? `${minutes}m` : ""}${seconds}s`;
}

/**
 * One running container's health checks (daemon/health.go monitor): the probe every interval (the start
 * interval while it is starting within its start period), a result each time, `healthy` after a success,
 * `unhealthy` after `retries` failures in a row, failures in the start period not counted until a success.
 */
export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly controller = new AbortController();
  private readonly command: string[];

  constructor(
    private readonly config: HealthConfig,
    command: string[],
    private readonly startedAt: number,
    private readonly state: HealthState,
    private readonly hooks: {
      probe: Probe;
      /** Whether a probe should run now (not while paused). */
      active(): boolean;
      /** After every result; `changed` when the status moved. */
      recorded(state: HealthState, changed: boolean): void;
    },
  ) {
    this.command = command;
  }

  static initialState(): HealthState {
    return { Status: "starting", FailingStreak: 0, Log: [] };
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.controller.abort();
  }

  private interval(): number {
    const probeInterval = ms(this.config.Interval, DEFAULT_INTERVAL_MS);
    const startPeriod = ms(this.config.StartPeriod, 0);
    if (Date.now() - this.startedAt >= startPeriod) return probeInterval;
    return this.state.Status === "starting"
      ? ms(this.config.StartInterval, DEFAULT_START_INTERVAL_MS)
      : probeInterval;
  }

  private schedule(): void {
    if (this.controller.signal.aborted) return;
    this.timer = setTimeout(() => void this.runOnce(), this.interval());
  }

  private async runOnce(): Promise<void> {
    if (this.controller.signal.aborted) return;
    if (this.hooks.active()) {
      const timeoutMs = ms(this.config.Timeout, DEFAULT_TIMEOUT_MS);
      const start = new Date();
      const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(timeoutMs)]);
      let result: ProbeResult;
      try {
        result = await this.hooks.probe(this.command, signal);
      } catch (err) {
        result = { exitCode: -1, output: err instanceof Error ? err.message : String(err) };
      }
      if (this.controller.signal.aborted) return;
      if (signal.aborted)
        result = { exitCode: -1, output: `Health check exceeded timeout (${goDuration(timeoutMs)})` };
      this.record(start, result);
    }
    this.schedule();
  }

  private record(start: Date, result: ProbeResult): void {
    const state = this.state;
    const before = state.Status;
    state.Log = [
      ...state.Log,
      {
        Start: start.toISOString(),
        End: new Date().toISOString(),
        ExitCode: result.exitCode,
        Output: result.output,
      },
    ].slice(-MAX_LOG_ENTRIES);
    if (result.exitCode === 0) {
      state.FailingStreak = 0;
      state.Status = "healthy";
    } else {
      const inStartPeriod =
        state.Status === "starting" && start.getTime() - this.startedAt < ms(this.config.StartPeriod, 0);
      if (!inStartPeriod) {
        state.FailingStreak += 1;
        if (state.FailingStreak >= (this.config.Retries || DEFAULT_RETRIES)) state.Status = "unhealthy";
      }
    }
    this.hooks.recorded(state, state.Status !== before);
  }
}
