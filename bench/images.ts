// `npm run bench:images [-- --quick]`: pull + unpack of a ~100 MB, 5-layer image from a local
// registry, ours (a resident client, in process) against `ctr images pull --plain-http`, and running
// the image (`/bin/true`) against `ctr run --rm IMAGE`; interleaved, on one containerd, with the
// content store and snapshots emptied (image removed, GC run) before every pull. Writes
// bench/images-results.json and the "Images" section of BENCHMARKS.md.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { formatMs, formatRatio, median, processCpuMs, runToEnd } from "./measure.js";
import { LAYER_MB, startPullFixture } from "./pull-fixture.js";
import { writeBenchSection } from "./report.js";

const quick = process.argv.includes("--quick");
const PULLS = quick ? 3 : 7;
const RUNS = quick ? 5 : 15;
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");

function run(command: string, args: string[]): number {
  const t0 = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${result.status} ${result.stderr}`);
  return performance.now() - t0;
}

const fixture = await startPullFixture("lcd-bimg-", "bench-images");
const { ctrd, client, ref, empty } = fixture;
try {
  const ctrFlags = ["--address", ctrd.address, "-n", fixture.namespace];

  const pulls: Record<string, () => Promise<number>> = {
    "libcontainerd pull (in process)": async () => {
      const t0 = performance.now();
      await client.images.pull(ref);
      return performance.now() - t0;
    },
    "ctr images pull --plain-http": async () =>
      run("ctr", [...ctrFlags, "images", "pull", "--plain-http", ref]),
  };
  const loadAtStart = loadavg();
  const pullSamples = new Map<string, number[]>(Object.keys(pulls).map((k) => [k, []]));
  /** CPU ms per pull: the client (this process, or ctr as a waited child) and containerd. */
  const cpuSamples = new Map<string, { client: number[]; containerd: number[] }>(
    Object.keys(pulls).map((k) => [k, { client: [], containerd: [] }]),
  );
  for (let i = 0; i < PULLS; i++) {
    for (const [name, fn] of Object.entries(pulls)) {
      await empty();
      const self0 = process.cpuUsage();
      const child0 = processCpuMs("self", true);
      const containerd0 = processCpuMs(ctrd.pid);
      pullSamples.get(name)?.push(await fn());
      const self = process.cpuUsage(self0);
      const cpu = cpuSamples.get(name);
      cpu?.client.push((self.user + self.system) / 1000 + processCpuMs("self", true) - child0);
      cpu?.containerd.push(processCpuMs(ctrd.pid) - containerd0);
    }
  }
  // Load drifts on a shared machine: the ratio within each round (pulls seconds apart) says more.
  const [oursByRound, ctrByRound] = [...pullSamples.values()] as [number[], number[]];
  const pairedRatio = median(oursByRound.map((ms, i) => ms / (ctrByRound[i] as number)));
  const cpuMedians = Object.fromEntries(
    [...cpuSamples].map(([k, v]) => [k, { client: median(v.client), containerd: median(v.containerd) }]),
  );

  // The image stays pulled for the runs.
  await client.images.pull(ref);
  let counter = 0;
  const runs: Record<string, () => Promise<number>> = {
    "libcontainerd: image → snapshot → container → task (in process)": async () => {
      const id = `lib-${++counter}`;
      const t0 = performance.now();
      const proc = await client.images.process(ref);
      const snapshot = await client.images.prepareSnapshot(ref, id);
      const container = await client.newContainer(
        id,
        defaultLinuxSpec({ ...proc, rootfs: "rootfs", cgroupsPath: `${ctrd.cgroupParent}/${id}` }),
        { image: ref, snapshot: { snapshotter: snapshot.snapshotter, key: snapshot.key } },
      );
      await runToEnd(container);
      return performance.now() - t0;
    },
    "ctr run --rm IMAGE true": async () =>
      run("ctr", [
        ...ctrFlags,
        "run",
        "--rm",
        "--cgroup",
        `${ctrd.cgroupParent}/ctr-${++counter}`,
        ref,
        `ctr-${counter}`,
        "true",
      ]),
  };
  const runSamples = new Map<string, number[]>(Object.keys(runs).map((k) => [k, []]));
  for (const fn of Object.values(runs)) await fn(); // warm-up
  for (let i = 0; i < RUNS; i++)
    for (const [name, fn] of Object.entries(runs)) runSamples.get(name)?.push(await fn());

  const medians = (samples: Map<string, number[]>) =>
    Object.fromEntries([...samples].map(([k, v]) => [k, median(v)])) as Record<string, number>;
  const pullMedians = medians(pullSamples);
  const runMedians = medians(runSamples);
  const results = {
    date: new Date().toISOString(),
    image: {
      layers: fixture.layers,
      bytes: fixture.bytes,
      registry: "docker-registry 2.8 on 127.0.0.1, plain HTTP",
    },
    pulls: PULLS,
    runs: RUNS,
    cpus: cpus().length,
    loadavgAtStart: loadAtStart,
    loadavgAtEnd: loadavg(),
    samples: { pull: Object.fromEntries(pullSamples), run: Object.fromEntries(runSamples) },
    medians: { pull: pullMedians, run: runMedians, pullCpuMs: cpuMedians },
    pullRatioMedianOfRounds: pairedRatio,
  };
  writeFileSync(join(benchDir, "images-results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const [ourPull, ctrPull] = Object.values(pullMedians) as [number, number];
  const [ourRun, ctrRun] = Object.values(runMedians) as [number, number];
  const [ourCpu, ctrCpu] = Object.values(cpuMedians) as [
    { client: number; containerd: number },
    { client: number; containerd: number },
  ];
  const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  const section = [
    "## Images (`npm run bench:images`)",
    "",
    `${results.date}; one containerd and one local registry (${results.image.registry}); image: ${fixture.layers} layers,`,
    `${(fixture.bytes / 1024 / 1024).toFixed(1)} MiB gzip'd (busybox + 4 × ${LAYER_MB} MiB of random bytes). Pulls: ${PULLS} interleaved each, the`,
    "image removed and containerd's GC run before every pull (nothing cached); runs: " +
      `${RUNS} interleaved each after a warm-up. Medians; ${results.cpus} CPUs, load average at the start ${loads(loadAtStart)}, at the end ${loads(results.loadavgAtEnd)}.`,
    "",
    "| what | ms | peer | ms | ratio (goal) |",
    "|---|---|---|---|---|",
    `| pull + unpack, in process | ${formatMs(ourPull)} | \`ctr images pull --plain-http\` | ${formatMs(ctrPull)} | ${formatRatio(ourPull / ctrPull)} (≤ 0.9) |`,
    `| CPU per pull: the client | ${formatMs(ourCpu.client)} | ctr | ${formatMs(ctrCpu.client)} | ${formatRatio(ourCpu.client / ctrCpu.client)} |`,
    `| CPU per pull: containerd | ${formatMs(ourCpu.containerd)} | for ctr | ${formatMs(ctrCpu.containerd)} | ${formatRatio(ourCpu.containerd / ctrCpu.containerd)} |`,
    `| run the image's \`true\`, in process | ${formatMs(ourRun)} | \`ctr run --rm IMAGE true\` | ${formatMs(ctrRun)} | ${formatRatio(ourRun / ctrRun)} (≤ 0.85) |`,
    "",
    `Pull ratio within each round (the two pulls seconds apart), median over the ${PULLS} rounds: ${formatRatio(pairedRatio)}.`,
  ].join("\n");
  writeBenchSection(repoDir, "bench:images", section);
  process.stderr.write(`${section}\n`);
} finally {
  await fixture.stop();
}
