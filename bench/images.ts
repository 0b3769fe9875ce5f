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
import { formatMs, formatRatio, median } from "./measure.js";
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
  const pullSamples = new Map<string, number[]>(Object.keys(pulls).map((k) => [k, []]));
  for (let i = 0; i < PULLS; i++) {
    for (const [name, fn] of Object.entries(pulls)) {
      await empty();
      pullSamples.get(name)?.push(await fn());
    }
  }

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
      const task = await container.newTask();
      const exited = task.wait();
      await task.start();
      await exited;
      await task.delete();
      await container.delete();
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
    loadavgAtEnd: loadavg(),
    samples: { pull: Object.fromEntries(pullSamples), run: Object.fromEntries(runSamples) },
    medians: { pull: pullMedians, run: runMedians },
  };
  writeFileSync(join(benchDir, "images-results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const [ourPull, ctrPull] = Object.values(pullMedians) as [number, number];
  const [ourRun, ctrRun] = Object.values(runMedians) as [number, number];
  const section = [
    "## Images (`npm run bench:images`)",
    "",
    `${results.date}; one containerd and one local registry (${results.image.registry}); image: ${fixture.layers} layers,`,
    `${(fixture.bytes / 1024 / 1024).toFixed(1)} MiB gzip'd (busybox + 4 × ${LAYER_MB} MiB of random bytes). Pulls: ${PULLS} interleaved each, the`,
    "image removed and containerd's GC run before every pull (nothing cached); runs: " +
      `${RUNS} interleaved each after a warm-up. Medians; ${results.cpus} CPUs, load average at the end ${results.loadavgAtEnd.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    "| what | ms | peer | ms | ratio (goal) |",
    "|---|---|---|---|---|",
    `| pull + unpack, in process | ${formatMs(ourPull)} | \`ctr images pull --plain-http\` | ${formatMs(ctrPull)} | ${formatRatio(ourPull / ctrPull)} (≤ 0.9) |`,
    `| run the image's \`true\`, in process | ${formatMs(ourRun)} | \`ctr run --rm IMAGE true\` | ${formatMs(ctrRun)} | ${formatRatio(ourRun / ctrRun)} (≤ 0.85) |`,
  ].join("\n");
  writeBenchSection(repoDir, "bench:images", section);
  process.stderr.write(`${section}\n`);
} finally {
  await fixture.stop();
}
