// `node --import tsx bench/soak.ts [--minutes N] [--concurrency C]`: continuous create → start →
// exec → kill → delete at bounded concurrency for N minutes (10 by default) on a private containerd,
// sampling the client's RSS, heap and open fds and containerd's containers, tasks and shims. Writes
// the "Soak" section of BENCHMARKS.md, bench/charts/soak.svg and bench/soak-results.json.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Tasks } from "../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { createContainerdTransport, serviceClient } from "../src/libcontainerd/grpc/transport.js";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { processesUnder, startContainerd } from "../test/harness/containerd.js";
import { collectGarbage } from "./machine.js";
import { mebibytes, openFdCount, processRssBytes } from "./measure.js";
import { replaceSection } from "./report.js";
import { lineChart } from "./svg.js";

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!(value > 0)) throw new Error(`${name} needs a positive number`);
  return value;
}

const minutes = argument("--minutes", 10);
const concurrency = argument("--concurrency", 8);
const SAMPLE_EVERY_MS = 10_000;
const NAMESPACE = "soak";
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");

interface Sample {
  seconds: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
  containers: number;
  tasks: number;
  shims: number;
  fifoDirs: number;
  containerdRssMiB: number;
  cycles: number;
  exits: number;
}

const ctrd = await startContainerd({ prefix: "lcd-soak-" });
const client = new RemoteClient({ address: ctrd.address, namespace: NAMESPACE, stateDir: ctrd.stateDir });
const rawTasks = serviceClient(
  Tasks,
  createContainerdTransport({ address: ctrd.address, namespace: NAMESPACE }),
);
let exits = 0;
client.setBackend({
  processEvent(_id, type) {
    if (type === "exit") exits += 1;
  },
});

let cycles = 0;
const failures: string[] = [];
const startedAt = performance.now();
const deadline = startedAt + minutes * 60_000;
let workerSerial = 0;

async function cycle(worker: number, n: number): Promise<void> {
  const id = `soak-${worker}-${n}`;
  const container = await client.newContainer(
    id,
    defaultLinuxSpec({ args: ["sleep", "60"], rootfs: ctrd.rootfs, cgroupsPath: `/${NAMESPACE}/${id}` }),
  );
  const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
  const exited = task.wait();
  await task.start();
  const exec = await task.exec(
    "probe",
    { args: ["sh", "-c", "echo soak"], cwd: "/", user: { uid: 0, gid: 0 } },
    { stdio: { stdout: true, stderr: true } },
  );
  let output = "";
  exec.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const execStatus = await exec.wait();
  await exec.delete();
  if (execStatus.exitCode !== 0) throw new Error(`${id}: exec exited ${execStatus.exitCode}`);
  await task.kill("SIGKILL");
  const status = await exited;
  if (status.exitCode !== 137) throw new Error(`${id}: exit ${status.exitCode}, expected 137`);
  await task.delete();
  await container.delete();
  if (output !== "" && output !== "soak\n") throw new Error(`${id}: exec printed ${JSON.stringify(output)}`);
}

async function worker(): Promise<void> {
  const me = workerSerial++;
  for (let n = 0; performance.now() < deadline; n++) {
    try {
      await cycle(me, n);
      cycles += 1;
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
      if (failures.length > 50) throw new Error(`too many failures: ${failures.slice(0, 5).join("; ")}`);
    }
  }
}

async function sample(): Promise<Sample> {
  collectGarbage();
  const memory = process.memoryUsage();
  const { tasks } = await rawTasks.list({}, { timeoutMs: 10_000 });
  const fifoRoot = join(ctrd.stateDir, NAMESPACE);
  return {
    seconds: (performance.now() - startedAt) / 1000,
    rssMiB: memory.rss / 2 ** 20,
    heapMiB: memory.heapUsed / 2 ** 20,
    fds: openFdCount(),
    containers: (await client.listContainers()).length,
    tasks: tasks.length,
    shims: processesUnder(ctrd.dir).filter((pid) => pid !== ctrd.pid).length,
    fifoDirs: existsSync(fifoRoot) ? readdirSync(fifoRoot).length : 0,
    containerdRssMiB: processRssBytes(ctrd.pid) / 2 ** 20,
    cycles,
    exits,
  };
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((a, [x]) => a + x, 0) / n;
  const meanY = points.reduce((a, [, y]) => a + y, 0) / n;
  const covariance = points.reduce((a, [x, y]) => a + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((a, [x]) => a + (x - meanX) ** 2, 0);
  return variance === 0 ? 0 : covariance / variance;
}

const samples: Sample[] = [];
try {
  samples.push(await sample());
  const workers = Array.from({ length: concurrency }, () => worker());
  const sampler = (async () => {
    while (performance.now() < deadline) {
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(SAMPLE_EVERY_MS, Math.max(0, deadline - performance.now()))),
      );
      const s = await sample();
      samples.push(s);
      process.stderr.write(
        `soak [${s.seconds.toFixed(0)}s] cycles ${s.cycles}, rss ${s.rssMiB.toFixed(1)} MiB, heap ${s.heapMiB.toFixed(1)} MiB, fds ${s.fds}, containers ${s.containers}, tasks ${s.tasks}, shims ${s.shims}\n`,
      );
    }
  })();
  await Promise.all([...workers, sampler]);
  // Let the last exits and shim shutdowns settle, then the quiescent sample.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const final = await sample();
  samples.push(final);
  writeResults(samples, final);
} finally {
  await client.close();
  await ctrd.stop();
}

function writeResults(all: Sample[], final: Sample): void {
  const first = all[0]!;
  // The first minute is warm-up (JIT, pools, HTTP/2 windows); flatness is judged after it.
  const steady = all.filter((s) => s.seconds >= 60 && s !== final);
  const perMinute = (pick: (s: Sample) => number) => slope(steady.map((s) => [s.seconds / 60, pick(s)]));
  const minutesRun = (final.seconds / 60).toFixed(1);
  writeFileSync(
    join(benchDir, "soak-results.json"),
    `${JSON.stringify({ minutes, concurrency, failures, samples: all }, null, 2)}\n`,
  );
  writeFileSync(
    join(benchDir, "charts", "soak.svg"),
    lineChart({
      title: `Soak: ${final.cycles} cycles in ${minutesRun} min, ${concurrency} at a time`,
      xUnit: "s",
      yUnit: "MiB / count",
      series: [
        { label: "client RSS MiB", points: all.map((s) => [s.seconds, s.rssMiB]) },
        { label: "client heap MiB", points: all.map((s) => [s.seconds, s.heapMiB]) },
        { label: "client fds", points: all.map((s) => [s.seconds, s.fds]) },
        { label: "shims", points: all.map((s) => [s.seconds, s.shims]) },
      ],
    }),
  );
  const rows = all
    .filter((s, index) => index === 0 || s === final || Math.round(s.seconds) % 60 < SAMPLE_EVERY_MS / 1000)
    .map(
      (s) =>
        `| ${s === final ? "after drain" : s.seconds.toFixed(0)} | ${s.cycles} | ${s.rssMiB.toFixed(1)} | ${s.heapMiB.toFixed(1)} | ${s.fds} | ${s.containers} | ${s.tasks} | ${s.shims} | ${s.fifoDirs} | ${s.containerdRssMiB.toFixed(1)} |`,
    );
  const body = [
    "## Soak",
    "",
    `\`node --import tsx bench/soak.ts --minutes ${minutes} --concurrency ${concurrency}\`, run ${new Date().toISOString()}: ` +
      `${concurrency} workers loop create → start (\`sleep 60\`, stdout/stderr FIFOs) → exec \`sh -c 'echo soak'\` →`,
    "wait → delete exec → SIGKILL → wait (137) → delete task → delete container, with an exit callback",
    `registered. It ran **${minutesRun} minutes**: ${final.cycles} cycles (${(final.cycles / final.seconds).toFixed(1)}/s), ` +
      `${failures.length} failed${failures.length ? ` (first: ${failures[0]})` : ""}; ${final.exits} exit events for ` +
      `${final.cycles * 2} exits (init + exec per cycle).`,
    "Samples every 10 s after a full GC; the table shows about one a minute.",
    "",
    "| s | cycles | client RSS MiB | client heap MiB | client fds | containers | tasks | shims | FIFO dirs | containerd RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    `Trend after the first minute (least squares): client RSS ${perMinute((s) => s.rssMiB).toFixed(2)} MiB/min, ` +
      `heap ${perMinute((s) => s.heapMiB).toFixed(2)} MiB/min, fds ${perMinute((s) => s.fds).toFixed(2)}/min, ` +
      `containerd RSS ${perMinute((s) => s.containerdRssMiB).toFixed(2)} MiB/min. After draining: ${final.containers} containers, ` +
      `${final.tasks} tasks, ${final.shims} shims, ${final.fifoDirs} FIFO dirs; client fds ${final.fds} (before: ${first.fds}), ` +
      `RSS ${mebibytes(final.rssMiB * 2 ** 20)} MiB (before: ${first.rssMiB.toFixed(1)}).`,
    "",
    "![soak](bench/charts/soak.svg)",
  ].join("\n");
  const path = join(repoDir, "BENCHMARKS.md");
  const markdown = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  writeFileSync(path, replaceSection(markdown, "soak", body));
}
