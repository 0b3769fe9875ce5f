// `npm run bench:logs [-- --quick]`: the log driver. Throughput: a container writing 100 MB of lines
// through `ctr run --log-uri`, raw `file://` (the shim copies bytes) against `binary://` ctrd-logger
// (json-file records, rotation), interleaved, medians. Memory: the RSS of the logger behind each of N
// running containers, idle and under a full-speed writer. Writes bench/logs-results.json and the
// "Log driver" section of BENCHMARKS.md.
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import type { Task } from "../src/libcontainerd/types/client.js";
import { loggerBinary, loggerUri } from "../src/logs/logger-binary.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";
import { formatMs, formatRatio, median, processRssBytes, runCommand } from "./measure.js";
import { writeBenchSection } from "./report.js";

const quick = process.argv.includes("--quick");
const MEGABYTES = quick ? 20 : 100;
const ROUNDS = quick ? 3 : 5;
const CONTAINERS = quick ? 10 : 50;
const LINE = "x".repeat(63); // `yes` adds the newline: 64-byte lines
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");
const NAMESPACE = "logs-bench";

const ctrd = await startContainerd({ prefix: "lcd-logs-bench-" });
const client = new RemoteClient({ address: ctrd.address, namespace: NAMESPACE, stateDir: ctrd.stateDir });
let counter = 0;
const nextId = (prefix: string) => `${prefix}-${++counter}`;

/** One `ctr run --rm` of the writer with its output to `uri`; wall milliseconds to exit and cleanup. */
async function ctrRun(uri: string, id: string): Promise<number> {
  const args = ["--address", ctrd.address, "-n", NAMESPACE, "run", "--rm", "--log-uri", uri];
  const writer = ["/bin/sh", "-c", `PATH=/bin:/usr/bin; yes ${LINE} | head -c ${MEGABYTES * 1024 * 1024}`];
  const t0 = performance.now();
  const result = await runCommand("ctr", [...args, "--rootfs", ctrd.rootfs, id, ...writer]);
  const ms = performance.now() - t0;
  if (result.code !== 0) throw new Error(`ctr run ${id} failed: ${result.stderr}`);
  return ms;
}

function loggerPid(path: string): number {
  const match = /^(\d+) /.exec(readFileSync(`${path}.logger`, "utf8"));
  if (!match) throw new Error(`no logger state at ${path}.logger`);
  return Number(match[1]);
}

/** Proportional set size: the logger's share of its pages (a static binary: nearly all its own). */
function pssBytes(pid: number): number {
  const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

const kib = (bytes: number) => (bytes / 1024).toFixed(0);

try {
  loggerBinary(); // fails early when it is not built
  const logDir = join(ctrd.dir, "bench-logs");
  // Throughput, interleaved.
  const raw: number[] = [];
  const logged: number[] = [];
  let recordBytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const rawPath = join(logDir, `raw-${round}.log`);
    const jsonPath = join(logDir, `json-${round}.log`);
    raw.push(await ctrRun(`file://${rawPath}`, nextId("raw")));
    logged.push(await ctrRun(loggerUri({ path: jsonPath }), nextId("json")));
    const rawBytes = statSync(rawPath).size;
    if (rawBytes !== MEGABYTES * 1024 * 1024) throw new Error(`file:// wrote ${rawBytes} bytes`);
    const lines = readFileSync(jsonPath, "utf8").split("\n").length - 1;
    if (lines !== (MEGABYTES * 1024 * 1024) / 64) throw new Error(`the logger wrote ${lines} records`);
    recordBytes = statSync(jsonPath).size;
    rmSync(rawPath);
    rmSync(jsonPath);
  }

  // RSS of the loggers behind running containers: idle, then one of them under a full-speed writer.
  const tasks: Task[] = [];
  const paths: string[] = [];
  for (let i = 0; i < CONTAINERS; i++) {
    const id = nextId("idle");
    const path = join(logDir, id, `${id}-json.log`);
    const container = await client.newContainer(
      id,
      defaultLinuxSpec({
        args: ["sh", "-c", "echo hello; sleep 600"],
        rootfs: ctrd.rootfs,
        cgroupsPath: `${ctrd.cgroupParent}/${id}`,
      }),
    );
    const task = await container.newTask({
      stdio: { log: { path, maxSize: 10 * 1024 * 1024, maxFiles: 3 } },
    });
    await task.start();
    tasks.push(task);
    paths.push(path);
  }
  const idleRss = paths.map((path) => processRssBytes(loggerPid(path)));
  const idlePss = paths.map((path) => pssBytes(loggerPid(path)));
  const busyId = nextId("busy");
  const busyPath = join(logDir, busyId, `${busyId}-json.log`);
  const busy = await client.newContainer(
    busyId,
    defaultLinuxSpec({
      args: ["sh", "-c", `yes ${LINE} | head -c ${MEGABYTES * 1024 * 1024}; sleep 600`],
      rootfs: ctrd.rootfs,
      cgroupsPath: `${ctrd.cgroupParent}/${busyId}`,
    }),
  );
  const busyTask = await busy.newTask({
    stdio: { log: { path: busyPath, maxSize: 10 * 1024 * 1024, maxFiles: 3 } },
  });
  await busyTask.start();
  tasks.push(busyTask);
  const busyPid = loggerPid(busyPath);
  let busyRss = 0;
  for (let sample = 0; sample < 100; sample++) {
    busyRss = Math.max(busyRss, processRssBytes(busyPid));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const containerdRss = processRssBytes(ctrd.pid);
  for (const task of tasks) await task.forceDelete();

  const results = {
    date: new Date().toISOString(),
    megabytes: MEGABYTES,
    rounds: ROUNDS,
    containers: CONTAINERS,
    loadavgAtEnd: loadavg(),
    throughput: { rawMs: raw, loggedMs: logged, rawMedianMs: median(raw), loggedMedianMs: median(logged) },
    recordBytes,
    loggerRss: {
      idleMedian: median(idleRss),
      idleMax: Math.max(...idleRss),
      idlePssMedian: median(idlePss),
      busyMax: busyRss,
    },
    containerdRss,
  };
  writeFileSync(join(benchDir, "logs-results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const ratio = results.throughput.loggedMedianMs / results.throughput.rawMedianMs;
  const mbps = (ms: number) => (MEGABYTES / (ms / 1000)).toFixed(0);
  const section = [
    "## Log driver (`npm run bench:logs`)",
    "",
    `${results.date}; load average at the end ${results.loadavgAtEnd.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    `Throughput: \`ctr run --rm\` of a container writing ${MEGABYTES} MB of 64-byte lines, wall time to exit and`,
    `cleanup, ${ROUNDS} interleaved runs each, medians. Raw \`file://\` is the shim copying bytes into a file;`,
    `ctrd-logger turns them into json-file records (${(recordBytes / 1024 / 1024).toFixed(0)} MB written, a timestamp and stream per line).`,
    "",
    "| output | ms | MB/s | ratio |",
    "|---|---|---|---|",
    `| \`file://\` (raw) | ${formatMs(results.throughput.rawMedianMs)} | ${mbps(results.throughput.rawMedianMs)} | 1.00 |`,
    `| \`binary://\` ctrd-logger | ${formatMs(results.throughput.loggedMedianMs)} | ${mbps(results.throughput.loggedMedianMs)} | ${formatRatio(ratio)} |`,
    "",
    "Why the logger is not slower although it writes twice the bytes: with `file://` the container writes into a",
    "pipe the shim drains with 4 KiB reads (containerd 1.6 pkg/process bufPool, 'aligned with PIPE_BUF') and one",
    "write per read; with `binary://` the container's pipe goes straight to ctrd-logger, which reads 64 KiB and",
    "writes 256 KiB batches. The machine is shared (see the load average): compare the ratio, not the times.",
    "",
    `Memory: the logger behind each of ${CONTAINERS} running containers (one process each, no Node), KiB.`,
    "",
    "| logger | KiB |",
    "|---|---|",
    `| RSS, idle, median | ${kib(results.loggerRss.idleMedian)} |`,
    `| RSS, idle, max | ${kib(results.loggerRss.idleMax)} |`,
    `| PSS, idle, median | ${kib(results.loggerRss.idlePssMedian)} |`,
    `| RSS, peak under a full-speed writer (rotating at 10 MB) | ${kib(results.loggerRss.busyMax)} |`,
  ].join("\n");
  writeBenchSection(repoDir, "bench:logs", section);
  process.stderr.write(`${section}\n`);
} finally {
  await client.close();
  await ctrd.stop();
}
