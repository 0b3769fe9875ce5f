/** What ctrd prints: aligned tables for people, JSON for scripts, a spinner only where someone watches. */
import { humanDuration } from "../state/human-duration.js";
import { ExitCode } from "./errors.js";

type BrokenPipeHandler = (stream: NodeJS.WriteStream) => void;
let brokenPipeHandler: BrokenPipeHandler | undefined;

/** What ctrd finishes before it ends for a broken pipe: the open client's close(). */
let beforeBrokenPipeExit: (() => Promise<void>) | undefined;
let endingForBrokenPipe = false;
/** How long that may take: a SIGPIPE'd writer ends at once, ctrd only finishes what it must remember. */
const BROKEN_PIPE_CLOSE_MS = 5_000;

/**
 * `ctrd ps | head -1`: the reader is gone. By default ctrd ends as a SIGPIPE'd writer would, quietly,
 * once the client has written what it still has to remember (`ctrd stop a b | head -1`: b's exit,
 * noted after its task was deleted); while a container's output is being copied, the attachment
 * decides instead (the container still has to be waited for and cleaned up).
 */
export function handleBrokenPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (endingForBrokenPipe) return; // later writes to the broken stream
      if (err.code !== "EPIPE") throw err;
      if (brokenPipeHandler) brokenPipeHandler(stream);
      else endForBrokenPipe();
    });
  }
}

function endForBrokenPipe(): void {
  endingForBrokenPipe = true;
  const before = beforeBrokenPipeExit;
  if (!before) process.exit(ExitCode.brokenPipe);
  setTimeout(() => process.exit(ExitCode.brokenPipe), BROKEN_PIPE_CLOSE_MS).unref();
  void before()
    .catch(() => {})
    .finally(() => process.exit(ExitCode.brokenPipe));
}

/** Sets (or clears) what a broken pipe waits for before ctrd ends (withClient: the client's close). */
export function onBrokenPipeExit(hook: (() => Promise<void>) | undefined): void {
  beforeBrokenPipeExit = hook;
}

export function onBrokenPipe(handler: BrokenPipeHandler | undefined): void {
  brokenPipeHandler = handler;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One JSON document per line, for streams (`events --json`, `stats --json`). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  process.stdout.write(`${formatTable(headers, rows)}\n`);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(value < 10 ? 2 : 1)}${UNITS[unit]}`;
}

/** docker's CREATED column: go-units' HumanDuration and "ago" ("Less than a second ago", "About a minute ago"). */
export function formatAge(since: Date | undefined, now = Date.now()): string {
  if (!since) return "-";
  return `${humanDuration(Math.max(0, now - since.getTime()))} ago`;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const SPINNER_DELAY_MS = 1000;

/**
 * Runs `work`; if it takes longer than a second and stderr is a terminal, shows a spinner with
 * `label` until it settles. Quick operations and pipes see nothing.
 */
export async function withSpinner<T>(label: string, work: Promise<T>): Promise<T> {
  const stderr = process.stderr;
  if (!stderr.isTTY) return work;
  let frame = 0;
  let shown = false;
  let ticker: NodeJS.Timeout | undefined;
  const starter = setTimeout(() => {
    shown = true;
    ticker = setInterval(() => {
      stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`);
    }, 100);
  }, SPINNER_DELAY_MS);
  try {
    return await work;
  } finally {
    clearTimeout(starter);
    if (ticker) clearInterval(ticker);
    if (shown) stderr.write("\r\x1b[2K");
  }
}
