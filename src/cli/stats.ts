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

function table(summaries: readonly StatsSummary[]): string {
  return formatTable(
    ["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O"],
    summaries.map((summary) => [
      summary.id,
      summary.cpuPercent === null ? "--" : `${summary.cpuPercent.toFixed(2)}%`,
      `${formatBytes(summary.memoryUsage)} / ${formatBytes(summary.memoryLimit)}`,
      `${summary.memoryPercent.toFixed(2)}%`,
      summary.pids === null ? "--" : String(summary.pids),
      `${formatBytes(summary.blockRead)} / ${formatBytes(summary.blockWrite)}`,
    ]),
  );
}

const INTERVAL_MS = 1_000;
/** `--no-stream` still needs two samples for a CPU figure; this is the gap between them. */
const SINGLE_SAMPLE_GAP_MS = 500;

export function registerStats(program: Command): void {
  const command = program
    .command("stats")
    .description(
      "resource usage of containers (every running one when none is named): a live view, or one sample with --no-stream",
    )
    .argument("[ids...]", "container ids")
    .option("--no-stream", "print one sample and exit")
    .option("--json", "print JSON (one object per container and sample, a line each)");
  addGlobalOptions(command).action(
    async (ids: string[], flags: { stream: boolean; json?: boolean }, self: Command) => {
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        // As docker stats: the containers named (each must run), or every running one.
        const named = ids.length > 0;
        const watched = new Map<string, Task>();
        for (const id of named ? ids : (await client.listContainers()).map((info) => info.id)) {
          try {
            const task = await (await client.loadContainer(id)).task();
            if (named || (await task.status()) === "running") watched.set(id, task);
          } catch (err) {
            if (named || !isErrorCode(err, "not_found")) throw err;
          }
        }
        const json = flags.json ?? false;
        if (!flags.stream) {
          const first = await sample(watched);
          await sleep(SINGLE_SAMPLE_GAP_MS);
          const summaries = [...(await sample(watched))].map(([id, stats]) =>
            summarize(id, stats, first.get(id)),
          );
          if (json) for (const summary of summaries) printJsonLine(summary);
          else process.stdout.write(`${table(summaries)}\n`);
          return;
        }
        await streamStats(watched, json);
      });
    },
  );
}

/**
 * A sample of each task that still runs; one that stopped or went away meanwhile is left out, and
 * no longer watched (a stopped task's cgroup still answers, with numbers that no longer move).
 */
async function sample(watched: Map<string, Task>): Promise<Map<string, Stats>> {
  const samples = new Map<string, Stats>();
  for (const [id, task] of [...watched]) {
    try {
      if ((await task.status()) === "stopped") throw new NotFoundError(`${id} has stopped`);
      samples.set(id, await task.stats());
    } catch (err) {
      if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
      watched.delete(id);
    }
  }
  return samples;
}

/** Until Ctrl-C or no watched task runs: redraws in place on a terminal, lines per sample otherwise. */
async function streamStats(watched: Map<string, Task>, json: boolean): Promise<void> {
  const stop = new AbortController();
  const onInterrupt = (signal: NodeJS.Signals): void => {
    process.exitCode = signalExitCode(signal);
    stop.abort();
  };
  process.once("SIGINT", onInterrupt);
  process.once("SIGTERM", onInterrupt);
  const redraw = process.stdout.isTTY && !json;
  let previous = new Map<string, Stats>();
  let first = true;
  try {
    while (!stop.signal.aborted) {
      const before = new Set(watched.keys());
      const samples = await sample(watched);
      for (const id of before)
        if (!watched.has(id)) process.stderr.write(`ctrd: ${id} is no longer running\n`);
      if (watched.size === 0) return;
      const summaries = [...samples].map(([id, stats]) => summarize(id, stats, previous.get(id)));
      previous = samples;
      if (json) for (const summary of summaries) printJsonLine(summary);
      else if (redraw) process.stdout.write(`\x1b[H\x1b[2J${table(summaries)}\n`);
      else
        process.stdout.write(
          `${table(summaries)
            .split("\n")
            .slice(first ? 0 : 1)
            .join("\n")}\n`,
        );
      first = false;
      await sleep(INTERVAL_MS, undefined, { signal: stop.signal }).catch(() => {});
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onInterrupt);
  }
}
