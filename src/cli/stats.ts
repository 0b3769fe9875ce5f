import { totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { cpuPercent } from "../libcontainerd/stats.js";
import type { Task } from "../libcontainerd/types/client.js";
import { isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import type { Stats } from "../libcontainerd/types/stats.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { formatBytes, formatTable, printJsonLine } from "./output.js";
import { signalExitCode } from "./signals.js";

/** One sample, reduced to what `docker stats` shows. CPU is a share of one CPU over the interval. */
export interface StatsSummary {
  id: string;
  read: string;
  cpuPercent: number | null;
  memoryUsage: number;
  memoryLimit: number;
  memoryPercent: number;
  pids: number | null;
  blockRead: number;
  blockWrite: number;
}

function summarize(id: string, stats: Stats, previous: Stats | undefined): StatsSummary {
  const hostMemory = totalmem();
  // As docker stats counts it: without the page cache the kernel reclaims first (a file the
  // container wrote once is not memory it uses).
  const raw = stats.raw;
  const inactiveFile = raw.kind === "hcs" ? 0 : raw.memory.inactiveFile;
  const usage = inactiveFile < stats.memory.usage ? stats.memory.usage - inactiveFile : stats.memory.usage;
  // "No limit" is Infinity (or 0 from some kernels): the host's memory is the real bound.
  const limit = stats.memory.limit > 0 && stats.memory.limit < hostMemory ? stats.memory.limit : hostMemory;
  return {
    id,
    read: stats.read.toISOString(),
    cpuPercent: previous ? (cpuPercent(previous, stats) ?? null) : null,
    memoryUsage: usage,
    memoryLimit: limit,
    memoryPercent: limit > 0 ? (usage / limit) * 100 : 0,
    pids: stats.pids?.current ?? null,
    blockRead: stats.io.readBytes,
    blockWrite: stats.io.writeBytes,
  };
}

function table(summary: StatsSummary): string {
  return formatTable(
    ["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O"],
    [
      [
        summary.id,
        summary.cpuPercent === null ? "--" : `${summary.cpuPercent.toFixed(2)}%`,
        `${formatBytes(summary.memoryUsage)} / ${formatBytes(summary.memoryLimit)}`,
        `${summary.memoryPercent.toFixed(2)}%`,
        summary.pids === null ? "--" : String(summary.pids),
        `${formatBytes(summary.blockRead)} / ${formatBytes(summary.blockWrite)}`,
      ],
    ],
  );
}

const INTERVAL_MS = 1_000;
/** `--no-stream` still needs two samples for a CPU figure; this is the gap between them. */
const SINGLE_SAMPLE_GAP_MS = 500;

export function registerStats(program: Command): void {
  const command = program
    .command("stats")
    .description("resource usage of a container: a live view, or one sample with --no-stream")
    .argument("<id>", "container id")
    .option("--no-stream", "print one sample and exit")
    .option("--json", "print JSON (one object per line when streaming)");
  addGlobalOptions(command).action(
    async (id: string, flags: { stream: boolean; json?: boolean }, self: Command) => {
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        const task = await (await client.loadContainer(id)).task();
        if (!flags.stream) {
          const first = await task.stats();
          await sleep(SINGLE_SAMPLE_GAP_MS);
          const summary = summarize(id, await task.stats(), first);
          process.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : `${table(summary)}\n`);
          return;
        }
        await streamStats(id, task, flags.json ?? false);
      });
    },
  );
}

/** Until Ctrl-C or the task goes away: redraws in place on a terminal, a line per sample otherwise. */
async function streamStats(id: string, task: Task, json: boolean): Promise<void> {
  const stop = new AbortController();
  const onInterrupt = (signal: NodeJS.Signals): void => {
    process.exitCode = signalExitCode(signal);
    stop.abort();
  };
  process.once("SIGINT", onInterrupt);
  process.once("SIGTERM", onInterrupt);
  const redraw = process.stdout.isTTY && !json;
  let previous: Stats | undefined;
  try {
    while (!stop.signal.aborted) {
      let stats: Stats;
      try {
        // A stopped task's cgroup still answers, with numbers that no longer move.
        if ((await task.status()) === "stopped") throw new NotFoundError(`${id} has stopped`);
        stats = await task.stats();
      } catch (err) {
        // The container stopped or went away while watched: the view simply ends.
        if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
        process.stderr.write(`ctrd: ${id} is no longer running\n`);
        return;
      }
      const summary = summarize(id, stats, previous);
      const first = previous === undefined;
      previous = stats;
      if (json) printJsonLine(summary);
      else if (redraw) process.stdout.write(`\x1b[H\x1b[2J${table(summary)}\n`);
      else
        process.stdout.write(
          `${table(summary)
            .split("\n")
            .slice(first ? 0 : 1)
            .join("\n")}\n`,
        );
      await sleep(INTERVAL_MS, undefined, { signal: stop.signal }).catch(() => {});
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onInterrupt);
  }
}
