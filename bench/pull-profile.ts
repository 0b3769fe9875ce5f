// `node --import tsx bench/pull-profile.ts [--pulls N] [--base DIR] [--no-ctr] [--cpu-prof FILE]
// [--concurrency N[,M…]] [--json FILE]`:
// where a pull's time and CPU go, on the bench:images image (bench/pull-fixture.ts). Sides alternate
// round by round, the store emptied before each pull: this checkout's client (in process), with
// `--base DIR` another checkout's (an A/B of two versions on one containerd and registry; DIR needs
// node_modules), and `ctr images pull --plain-http`. Per pull: wall ms; CPU ms of this process, of
// containerd, of the registry and of ctr (rusage of the waited child); for the in-process sides a
// per-layer timeline from the progress events (ms since the pull began: download start, written,
// extraction start, unpacked), and the median of the per-round wall ratios to the last side.
// `--cpu-prof FILE` keeps a V8 profile of this checkout's pulls; `--json FILE` the samples.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import type { PullProgress } from "../src/images/pull.js";
import type { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { processesUnder } from "../test/harness/temp-dirs.js";
import { median, processCpuMs } from "./measure.js";
import { startPullFixture } from "./pull-fixture.js";

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const pulls = Number(arg("--pulls") ?? 5);
const base = arg("--base");
const cpuProf = arg("--cpu-prof");
const withCtr = !process.argv.includes("--no-ctr");
const jsonFile = arg("--json");
const concurrency = arg("--concurrency");

type Pull = (ref: string, onProgress: (e: PullProgress) => void) => Promise<void>;
interface Sample {
  wall: number;
  self: number;
  /** Of `self`: V8's garbage collection (main-thread pauses as PerformanceObserver reports them). */
  gc: number;
  containerd: number;
  registry: number;
  ctr: number;
  timeline: string;
}

const fixture = await startPullFixture("lcd-pprof-", "pull-profile");
const { ctrd, registry, client, ref } = fixture;
const registryPids = processesUnder(registry.dir);
const sides: Record<string, Pull> = {};
// `--concurrency 2,8`: one side per value, this checkout fetching that many layers at once.
for (const c of concurrency?.split(",") ?? [""]) {
  sides[c ? `this c=${c}` : "this"] = (r, onProgress) =>
    client.images.pull(r, { onProgress, ...(c ? { concurrency: Number(c) } : {}) }).then(() => {});
}
let baseClient: { close(): Promise<void> } | undefined;
if (base) {
  const mod = (await import(resolve(base, "src/libcontainerd/remote/client.ts"))) as {
    RemoteClient: typeof RemoteClient;
  };
  const c = new mod.RemoteClient({
    address: ctrd.address,
    namespace: fixture.namespace,
    stateDir: ctrd.stateDir,
  });
  baseClient = c;
  sides.base = (r, onProgress) => c.images.pull(r, { onProgress }).then(() => {});
}
if (withCtr) {
  sides.ctr = async (r) => {
    const res = spawnSync("ctr", [
      "--address",
      ctrd.address,
      "-n",
      fixture.namespace,
      "images",
      "pull",
      "--plain-http",
      r,
    ]);
    if (res.status !== 0) throw new Error(`ctr pull: ${res.stderr}`);
  };
}

let session: Session | undefined;
if (cpuProf) {
  session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ["gc"] });

const samples = new Map<string, Sample[]>(Object.keys(sides).map((k) => [k, []]));
try {
  for (let round = 0; round < pulls; round++) {
    for (const [name, pull] of Object.entries(sides)) {
      await fixture.empty();
      const events: [number, PullProgress][] = [];
      const self0 = process.cpuUsage();
      const gc0 = gcMs;
      const c0 = processCpuMs(ctrd.pid);
      const r0 = registryPids.reduce((s, p) => s + processCpuMs(p), 0);
      const k0 = processCpuMs("self", true);
      if (session && name.startsWith("this")) await session.post("Profiler.start");
      const t0 = performance.now();
      await pull(ref, (e) => events.push([performance.now() - t0, e]));
      const wall = performance.now() - t0;
      if (session && name.startsWith("this") && round === pulls - 1) {
        const { profile } = await session.post("Profiler.stop");
        writeFileSync(cpuProf as string, JSON.stringify(profile));
      } else if (session && name.startsWith("this")) await session.post("Profiler.stop");
      const self = process.cpuUsage(self0);
      const sample: Sample = {
        wall,
        self: (self.user + self.system) / 1000,
        gc: gcMs - gc0,
        containerd: processCpuMs(ctrd.pid) - c0,
        registry: registryPids.reduce((s, p) => s + processCpuMs(p), 0) - r0,
        ctr: processCpuMs("self", true) - k0,
        timeline: timeline(events),
      };
      samples.get(name)?.push(sample);
      process.stderr.write(
        `${round} ${name.padEnd(9)} ${sample.wall.toFixed(0)} ms; CPU ms: self ${sample.self.toFixed(0)} (GC ${sample.gc.toFixed(0)}) containerd ${sample.containerd.toFixed(0)} registry ${sample.registry.toFixed(0)} ctr ${sample.ctr.toFixed(0)}; load ${loadavg()[0]?.toFixed(2)}\n${sample.timeline}`,
      );
    }
  }
  const rows = [...samples].map(([name, s]) => {
    const m = (k: keyof Omit<Sample, "timeline">) => median(s.map((x) => x[k])).toFixed(0);
    return `${name.padEnd(10)} wall ${m("wall")} ms; CPU ms: self ${m("self")} (GC ${m("gc")}), containerd ${m("containerd")}, registry ${m("registry")}, ctr ${m("ctr")}`;
  });
  process.stderr.write(
    `medians of ${pulls} (load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}):\n${rows.join("\n")}\n`,
  );
  // Load drifts: the ratio within each round (pulls seconds apart) says more than the medians'.
  const reference = [...samples.keys()].at(-1) as string;
  const referenceWalls = (samples.get(reference) ?? []).map((x) => x.wall);
  const paired = [...samples]
    .filter(([name]) => name !== reference)
    .map(
      ([name, s]) => `${name} ${median(s.map((x, i) => x.wall / (referenceWalls[i] as number))).toFixed(2)}`,
    );
  if (paired.length > 0)
    process.stderr.write(`median of per-round wall ratios to ${reference}: ${paired.join(", ")}\n`);
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(Object.fromEntries(samples), null, 2)}\n`);
} finally {
  session?.disconnect();
  await baseClient?.close();
  await fixture.stop();
}

/** Per layer: ms at which its download started, its write committed, extraction began, it was unpacked. */
function timeline(events: [number, PullProgress][]): string {
  const layers = new Map<string, Partial<Record<PullProgress["state"], number>>>();
  for (const [t, e] of events) {
    if (e.kind !== "layer") continue;
    const seen = layers.get(e.digest) ?? {};
    seen[e.state] ??= t;
    layers.set(e.digest, seen);
  }
  const f = (t: number | undefined) => (t === undefined ? "-" : t.toFixed(0)).padStart(5);
  return [...layers.values()]
    .map(
      (l, i) =>
        `  L${i + 1} queued${f(l.waiting)} downloading${f(l.downloading)} written${f(l.downloaded ?? l.exists)} extracting${f(l.extracting)} unpacked${f(l.unpacked ?? l.done)}\n`,
    )
    .join("");
}
