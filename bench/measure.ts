import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { performance } from "node:perf_hooks";
import type { Container, ExitStatus } from "../src/index.js";

export function sortedCopy(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Linear-interpolated quantile, q in [0, 1]. */
export function percentile(values: number[], q: number): number {
  const sorted = sortedCopy(values);
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

export const median = (values: number[]) => percentile(values, 0.5);

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export function rssBytes(): number {
  return process.memoryUsage().rss;
}

export function openFdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/**
 * CPU ms a process used so far (utime + stime from /proc; 10 ms ticks), or with `children` that of
 * its waited-for children (cutime + cstime: a spawnSync'd command). 0 if the process is gone.
 */
export function processCpuMs(pid: number | "self", children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    const ticks = children ? (f[13] ?? 0) + (f[14] ?? 0) : (f[11] ?? 0) + (f[12] ?? 0);
    return ticks * 10;
  } catch {
    return 0;
  }
}

/** Resident memory of a process from /proc, in bytes (0 if it is gone). */
export function processRssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing its output; never rejects on a non-zero exit. */
export function runCommand(command: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `tasks` with at most `limit` in flight, preserving result order. */
export async function withConcurrency<T>(
  count: number,
  limit: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

export const formatMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
export const formatRatio = (ratio: number) => ratio.toFixed(2);
export const mebibytes = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

/**
 * The measured lifecycle after newContainer, as bench:peer's Go peer does it: a null-IO task, its
 * wait() asked before start() (so no exit can be missed), then the task and the container deleted.
 */
export async function runToEnd(container: Container): Promise<ExitStatus> {
  const task = await container.newTask();
  const exited = task.wait();
  await task.start();
  const status = await exited;
  await task.delete();
  await container.delete();
  return status;
}

/** A TCP port free on 127.0.0.1 right now (for containerd's metrics endpoint). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** grpc_server_handled_total from containerd's metrics endpoint, summed per service/method. */
export async function rpcCounts(metricsUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^grpc_server_handled_total\{([^}]*)\} (\d+)/gm)) {
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const key = `${String(labels.grpc_service).split(".").at(-1)}.${labels.grpc_method}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(match[2]));
  }
  return counts;
}
