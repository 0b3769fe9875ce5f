import type { Command } from "commander";
import { containerLogs } from "../logs/container-logs.js";
import type { LogLine } from "../logs/reader.js";
import { usageError } from "./errors.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { signalExitCode } from "./signals.js";

interface LogsFlags {
  follow?: boolean;
  tail?: string;
  since?: string;
  until?: string;
  timestamps?: boolean;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1e3,
  m: 6e4,
  h: 3.6e6,
};

/** docker's --since/--until: RFC 3339 (or a date), Unix seconds, or a duration before now ("10m", "1h30m"). */
export function parseTimeFlag(value: string, flag: string, now = Date.now()): Date {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return new Date(Number(text) * 1000);
  if (/^(\d+(\.\d+)?(ns|us|\u00b5s|ms|s|m|h))+$/.test(text)) {
    let ms = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g))
      ms += Number(amount) * (DURATION_UNITS[unit ?? "s"] ?? 0);
    return new Date(now - ms);
  }
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime()))
    throw usageError(
      `invalid ${flag} ${JSON.stringify(value)}: want a timestamp (RFC 3339 or Unix) or a duration like 10m`,
    );
  return date;
}

export function parseTail(value: string | undefined): number | undefined {
  if (value === undefined || value === "all") return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw usageError(`invalid --tail ${JSON.stringify(value)}: want a number of lines or "all"`);
  return Number(value);
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> | undefined {
  if (stream.write(text)) return undefined;
  return new Promise((resolve) => stream.once("drain", resolve));
}

export function registerLogs(program: Command): void {
  const command = program
    .command("logs")
    .description("print a container's log: its stdout to stdout, its stderr to stderr")
    .argument("<id>", "container id")
    .option("-f, --follow", "keep printing new lines until the container exits")
    .option("-n, --tail <n>", 'only the last N lines ("all" for every line)')
    .option("--since <time>", "lines since a timestamp (RFC 3339, Unix) or a duration before now (10m)")
    .option("--until <time>", "lines before a timestamp or a duration before now")
    .option("-t, --timestamps", "prefix each line with its RFC 3339 timestamp");
  addGlobalOptions(command).action(async (id: string, flags: LogsFlags, self: Command) => {
    const tail = parseTail(flags.tail);
    const since = flags.since !== undefined ? parseTimeFlag(flags.since, "--since") : undefined;
    const until = flags.until !== undefined ? parseTimeFlag(flags.until, "--until") : undefined;
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      const container = await client.loadContainer(id);
      const stop = new AbortController();
      // Ctrl-C ends a follow as it ends docker logs -f: with the signal's status (130).
      const interrupt = (signal: NodeJS.Signals) => {
        process.exitCode = signalExitCode(signal);
        stop.abort();
      };
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      try {
        const lines: AsyncIterable<LogLine> = containerLogs(container, {
          follow: flags.follow ?? false,
          timestamps: flags.timestamps ?? false,
          signal: stop.signal,
          ...(tail !== undefined ? { tail } : {}),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
        });
        for await (const line of lines) {
          // A line without its end is printed without one, as docker logs prints it.
          const text = line.partial ? line.line : `${line.line}\n`;
          await write(line.stream === "stdout" ? process.stdout : process.stderr, text);
        }
      } finally {
        process.off("SIGINT", interrupt);
        process.off("SIGTERM", interrupt);
      }
    });
  });
}
