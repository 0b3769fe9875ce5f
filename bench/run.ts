// `npm run bench [-- --quick]`: the library against `ctr` on one private containerd, interleaved,
// medians reported as ratios; writes BENCHMARKS.md, bench/charts/*.svg and bench/results.json.
// `--only exec,events` runs just those parts and prints them (see `only`).
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import type { Container, Task } from "../src/libcontainerd/types/client.js";
import type { LibcontainerdEvent } from "../src/libcontainerd/types/events.js";
import { processesUnder, startContainerd, type TestContainerd } from "../test/harness/containerd.js";
import { collectGarbage, machineFacts } from "./machine.js";
import {
  median,
  openFdCount,
  percentile,
  processRssBytes,
  rssBytes,
  runToEnd,
  timed,
  withConcurrency,
} from "./measure.js";
import {
  type BenchResults,
  BOUNDED_IN_FLIGHT,
  EVENT_CONCURRENCY,
  TRACK_CONCURRENCY,
  writeReport,
} from "./report.js";
import { BenchSubjects, NAMESPACE, type Phases, RUNTIME_LABELS, type RuntimeKey } from "./subjects.js";

const quick = process.argv.includes("--quick");
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");

const SIZES: Record<
  | "sequentialRounds"
  | "concurrentRounds"
  | "execRounds"
  | "eventContainers"
  | "idleEventContainers"
  | "trackedContainers",
  number
> = quick
  ? {
      sequentialRounds: 8,
      concurrentRounds: 1,
      execRounds: 10,
      eventContainers: 200,
      idleEventContainers: 30,
      trackedContainers: 100,
    }
  : {
      sequentialRounds: 40,
      concurrentRounds: 3,
      execRounds: 60,
      eventContainers: 1000,
      idleEventContainers: 100,
      trackedContainers: 1000,
    };
const CONCURRENCY_LEVELS = [50, 200];

const startedAt = performance.now();
function log(message: string): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`bench [${seconds}s] ${message}\n`);
}

async function probeRuntimes(subjects: BenchSubjects): Promise<BenchResults["runtimeFailures"]> {
  const failures: BenchResults["runtimeFailures"] = {};
  for (const runtime of Object.keys(RUNTIME_LABELS) as RuntimeKey[]) {
    try {
      await subjects.libraryLifecycle(runtime);
      await subjects.ctrLifecycle(runtime);
    } catch (err) {
      failures[runtime] = err instanceof Error ? err.message : String(err);
      log(`runtime ${runtime} cannot run here: ${failures[runtime]}`);
    }
  }
  return failures;
}

async function sequentialLifecycles(
  subjects: BenchSubjects,
  runtimes: RuntimeKey[],
): Promise<BenchResults["sequential"]> {
  const samples = new Map<string, number[]>();
  const phases = new Map<RuntimeKey, Phases[]>();
  const record = (key: string, ms: number) => samples.set(key, [...(samples.get(key) ?? []), ms]);
  for (const runtime of runtimes) {
    phases.set(runtime, []);
    for (let i = 0; i < 3; i++) {
      await subjects.libraryLifecycle(runtime);
      await subjects.ctrLifecycle(runtime);
    }
  }
  for (let round = 0; round < SIZES.sequentialRounds; round++) {
    // Alternate which side goes first, so neither always runs on a containerd the other just warmed.
    for (const runtime of runtimes) {
      const order = round % 2 === 0 ? (["library", "ctr"] as const) : (["ctr", "library"] as const);
      for (const side of order) {
        const ms =
          side === "library"
            ? await subjects.libraryLifecycle(runtime, ["/bin/true"], phases.get(runtime))
            : await subjects.ctrLifecycle(runtime);
        record(`${side}:${runtime}`, ms);
      }
    }
    if (round % 10 === 9) log(`sequential: ${round + 1}/${SIZES.sequentialRounds} rounds`);
  }
  return runtimes.map((runtime) => {
    const library = samples.get(`library:${runtime}`) ?? [];
    const ctr = samples.get(`ctr:${runtime}`) ?? [];
    const runtimePhases = phases.get(runtime) ?? [];
    const phaseMedian = (pick: (p: Phases) => number) => median(runtimePhases.map(pick));
    return {
      runtime,
      library,
      ctr,
      phases: {
        createContainer: phaseMedian((p) => p.createContainer),
        createTask: phaseMedian((p) => p.createTask),
        start: phaseMedian((p) => p.start),
        startToExit: phaseMedian((p) => p.startToExit),
        deleteTask: phaseMedian((p) => p.deleteTask),
        deleteContainer: phaseMedian((p) => p.deleteContainer),
      },
    };
  });
}

async function concurrentLifecycles(subjects: BenchSubjects): Promise<BenchResults["concurrent"]> {
  const results: BenchResults["concurrent"] = [];
  const sides = ["library", "ctr", "library-bounded"] as const;
  for (const count of CONCURRENCY_LEVELS) {
    const wall: Record<(typeof sides)[number], number[]> = { library: [], ctr: [], "library-bounded": [] };
    for (let round = 0; round < SIZES.concurrentRounds; round++) {
      // Rotate the order every round, so no side always follows the same one.
      const order = sides.map((_, index) => sides[(index + round) % sides.length]!);
      for (const side of order) {
        const limit = side === "library-bounded" ? BOUNDED_IN_FLIGHT : count;
        const { ms } = await timed(() =>
          withConcurrency(count, limit, () =>
            side === "ctr" ? subjects.ctrLifecycle("runc-v2") : subjects.libraryLifecycle("runc-v2"),
          ),
        );
        wall[side].push(ms);
        log(`concurrent ${count}: ${side} ${(ms / 1000).toFixed(2)} s`);
      }
    }
    results.push({
      count,
      libraryWallMs: wall.library,
      ctrWallMs: wall.ctr,
      libraryBoundedWallMs: wall["library-bounded"],
    });
  }
  return results;
}

async function execLatency(subjects: BenchSubjects): Promise<BenchResults["exec"]> {
  const id = subjects.nextId("exec-host");
  const container = await subjects.client.newContainer(id, subjects.spec(id, ["sleep", "3600"]));
  const task = await container.newTask();
  await task.start();
  const libraryExec = async () => {
    const start = performance.now();
    const process = await task.exec(
      subjects.nextId("lib-exec"),
      { args: ["/bin/true"], cwd: "/", user: { uid: 0, gid: 0 } },
      { stdio: { stdout: true, stderr: true } },
    );
    const status = await process.wait();
    await process.delete();
    if (status.exitCode !== 0) throw new Error(`exec exited ${status.exitCode}`);
    return performance.now() - start;
  };
  const library: number[] = [];
  const ctr: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      await libraryExec();
      await subjects.ctrExec(id);
    }
    for (let round = 0; round < SIZES.execRounds; round++) {
      if (round % 2 === 0) {
        library.push(await libraryExec());
        ctr.push(await subjects.ctrExec(id));
      } else {
        ctr.push(await subjects.ctrExec(id));
        library.push(await libraryExec());
      }
    }
  } finally {
    await task.forceDelete();
    await container.delete();
  }
  return { library, ctr };
}

async function eventDelivery(subjects: BenchSubjects): Promise<BenchResults["events"]> {
  const exitsByContainer = new Map<string, number>();
  const latencyByContainer = new Map<string, number>();
  let wrongExitCodes = 0;
  subjects.client.setBackend({
    processEvent(containerId: string, type: string, event: LibcontainerdEvent) {
      if (type !== "exit" || !containerId.startsWith("ev-")) return;
      latencyByContainer.set(
        containerId,
        performance.timeOrigin + performance.now() - event.timestamp.getTime(),
      );
      exitsByContainer.set(containerId, (exitsByContainer.get(containerId) ?? 0) + 1);
      if (event.exitCode !== 0) wrongExitCodes += 1;
    },
  });
  const runOne = async (id: string) => {
    const container = await subjects.client.newContainer(id, subjects.spec(id, ["/bin/true"]));
    await runToEnd(container);
  };
  // One at a time first (the latency of the path itself), then the rest under load.
  const idleIds = Array.from({ length: SIZES.idleEventContainers }, () => subjects.nextId("ev"));
  const loadedIds = Array.from({ length: SIZES.eventContainers - idleIds.length }, () =>
    subjects.nextId("ev"),
  );
  for (const id of idleIds) await runOne(id);
  const { ms } = await timed(() =>
    withConcurrency(loadedIds.length, EVENT_CONCURRENCY, (index) => runOne(loadedIds[index]!)),
  );
  const ids = [...idleIds, ...loadedIds];
  // Exits travel containerd → stream → callback after Wait already answered; give stragglers a moment.
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && ids.some((id) => !exitsByContainer.has(id))) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  subjects.client.setBackend({ processEvent() {} });
  const latencies = (list: string[]) =>
    list.map((id) => latencyByContainer.get(id)).filter((v): v is number => v !== undefined);
  return {
    containers: ids.length,
    idleContainers: idleIds.length,
    loadedWallMs: ms,
    lost: ids.filter((id) => !exitsByContainer.has(id)).length,
    duplicated: ids.filter((id) => (exitsByContainer.get(id) ?? 0) > 1).length,
    wrongExitCodes,
    idleLatencyMs: latencies(idleIds),
    loadedLatencyMs: latencies(loadedIds),
  };
}

async function trackedMemory(ctrd: TestContainerd, subjects: BenchSubjects): Promise<BenchResults["memory"]> {
  // A client of its own, so what the earlier figures left in the heap is not counted.
  const client = await RemoteClient.connect({
    address: ctrd.address,
    namespace: "bench-memory",
    stateDir: ctrd.stateDir,
  });
  collectGarbage();
  const baselineRss = rssBytes();
  const baselineHeap = process.memoryUsage().heapUsed;
  const baselineFds = openFdCount();
  const tracked: { container: Container; task: Task; exited: Promise<unknown> }[] = [];
  const { ms: createMs } = await timed(() =>
    withConcurrency(SIZES.trackedContainers, TRACK_CONCURRENCY, async (index) => {
      const id = `mem-${index}`;
      const container = await client.newContainer(id, subjects.spec(id, ["sleep", "3600"]));
      const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
      const exited = task.wait();
      await task.start();
      tracked.push({ container, task, exited });
      if ((index + 1) % 250 === 0) log(`memory: ${index + 1} containers running`);
    }),
  );
  collectGarbage();
  const trackedRss = rssBytes();
  const trackedHeap = process.memoryUsage().heapUsed;
  const trackedFds = openFdCount();
  const shimPids = processesUnder(ctrd.dir).filter((pid) => pid !== ctrd.pid);
  const shimRss = shimPids.reduce((sum, pid) => sum + processRssBytes(pid), 0);
  const containerdRss = processRssBytes(ctrd.pid);
  const { ms: teardownMs } = await timed(() =>
    withConcurrency(tracked.length, TRACK_CONCURRENCY, async (index) => {
      const entry = tracked[index]!;
      await entry.task.forceDelete();
      await entry.exited;
      await entry.container.delete();
    }),
  );
  await client.close();
  return {
    containers: tracked.length,
    baselineRss,
    trackedRss,
    baselineHeap,
    trackedHeap,
    baselineFds,
    trackedFds,
    shimCount: shimPids.length,
    shimRss,
    containerdRss,
    createMs,
    teardownMs,
  };
}

async function main(): Promise<void> {
  log(`starting (${quick ? "quick" : "full"} run)`);
  const ctrd = await startContainerd({ prefix: "lcd-bench-" });
  const subjects = new BenchSubjects(ctrd);
  try {
    const version = await subjects.client.version();
    const loadAtStart = loadavg();
    const facts = await machineFacts(version.version, await subjects.ctrVersion());
    const runtimeFailures = await probeRuntimes(subjects);
    const runnable = (Object.keys(RUNTIME_LABELS) as RuntimeKey[]).filter((r) => !runtimeFailures[r]);
    log(`sequential lifecycles for ${runnable.join(", ")}`);
    const sequential = await sequentialLifecycles(subjects, runnable);
    log("concurrent lifecycles");
    const concurrent = await concurrentLifecycles(subjects);
    log("exec latency");
    const exec = await execLatency(subjects);
    log(`event delivery over ${SIZES.eventContainers} containers`);
    const events = await eventDelivery(subjects);
    log(`client memory with ${SIZES.trackedContainers} running containers`);
    const memory = await trackedMemory(ctrd, subjects);
    const leftovers = (await subjects.client.listContainers()).length;
    const results: BenchResults = {
      quick,
      date: new Date().toISOString(),
      durationMs: performance.now() - startedAt,
      facts,
      loadAverage: { start: loadAtStart, end: loadavg() },
      sizes: SIZES,
      runtimeFailures,
      sequential,
      concurrent,
      exec,
      events,
      memory,
      leftoverContainers: leftovers,
      namespace: NAMESPACE,
    };
    writeFileSync(join(benchDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeReport(results, repoDir);
    log(
      `done; BENCHMARKS.md and bench/charts written (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`,
    );
  } finally {
    await subjects.client.close();
    await ctrd.stop();
    // ctr, like containerd's Go client, leaves the parent runc made for its containers (/<namespace>).
    removeCgroupParents(`/${NAMESPACE}/any`, `/${NAMESPACE}`);
  }
}

/**
 * `--only exec,events`: just those parts, on a containerd of their own, printed (nothing written):
 * for checking one figure after a change without the whole run.
 */
async function only(parts: string[]): Promise<void> {
  const ctrd = await startContainerd({ prefix: "lcd-bench-" });
  const subjects = new BenchSubjects(ctrd);
  try {
    log(
      `only ${parts.join(", ")}; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    if (parts.includes("exec")) {
      const exec = await execLatency(subjects);
      const library = median(exec.library);
      const ctr = median(exec.ctr);
      console.log(
        `exec round trip: library ${library.toFixed(1)} ms, ctr ${ctr.toFixed(1)} ms, ratio ${(library / ctr).toFixed(2)} (${exec.library.length} rounds)`,
      );
    }
    if (parts.includes("events")) {
      const events = await eventDelivery(subjects);
      const row = (values: number[]) =>
        `p50 ${percentile(values, 0.5).toFixed(2)} ms, p99 ${percentile(values, 0.99).toFixed(2)} ms, max ${Math.max(...values).toFixed(2)} ms (${values.length})`;
      console.log(`exit events one at a time: ${row(events.idleLatencyMs)}`);
      console.log(`exit events under load: ${row(events.loadedLatencyMs)}`);
      console.log(
        `lost ${events.lost}, duplicated ${events.duplicated}, wrong exit codes ${events.wrongExitCodes}`,
      );
    }
    log(
      `done; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
  } finally {
    await subjects.client.close();
    await ctrd.stop();
    // ctr, like containerd's Go client, leaves the parent runc made for its containers (/<namespace>).
    removeCgroupParents(`/${NAMESPACE}/any`, `/${NAMESPACE}`);
  }
}

const onlyIndex = process.argv.indexOf("--only");
if (onlyIndex > 0) {
  await only((process.argv[onlyIndex + 1] ?? "").split(","));
} else if (process.argv.includes("--report-only")) {
  // Re-renders BENCHMARKS.md and the charts from the last results.json (after editing the report code).
  writeReport(JSON.parse(readFileSync(join(benchDir, "results.json"), "utf8")) as BenchResults, repoDir);
} else {
  await main();
}
