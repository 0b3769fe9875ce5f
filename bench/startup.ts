// `npm run bench:startup [-- --quick]`: how long ctrd and `import("libcontainerd")` take to start,
// against ctr on the same containerd, hyperfine-style (repeated whole-process runs, interleaved,
// medians), with the CPU each run took (what a loaded machine distorts least). Writes
// bench/startup-results.json and the "Start-up" section of BENCHMARKS.md. Where the time goes:
// bench/startup-profile.ts (CPU by module and function), bench/startup-modules.ts (the modules a
// command evaluates); two builds side by side: bench/startup-ab.ts.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { startContainerd } from "../test/harness/containerd.js";
import { formatMs, formatRatio, freePort, median, processCpuMs, rpcCounts } from "./measure.js";
import { writeBenchSection } from "./report.js";

const quick = process.argv.includes("--quick");
const RUNS = quick ? 5 : 15;
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");
const ctrdMain = join(repoDir, "dist/cli/main.js");
const libraryEntry = join(repoDir, "dist/index.js");

const cpuSamples = new Map<string, number[]>();
let current = "";

// NODE_EXTRA_CA_CERTS makes Node parse that whole file at start-up, before any of our code runs (Node 20
// does it eagerly: 146 certificates cost 37 ms here, node -e 0 61 ms instead of 24). A default environment
// has no such variable, so the Node subjects run without it; where the caller's environment sets it, the
// rows marked "extra CA certs" show what that costs.
const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
const defaultEnv = { ...process.env };
delete defaultEnv.NODE_EXTRA_CA_CERTS;

function timeCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = defaultEnv,
): { ms: number; stdout: string } {
  const cpu0 = processCpuMs("self", true);
  const t0 = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8", env });
  const ms = performance.now() - t0;
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  cpuSamples.get(current)?.push(processCpuMs("self", true) - cpu0);
  return { ms, stdout: result.stdout };
}

const metricsPort = await freePort();
const ctrd = await startContainerd({
  prefix: "lcd-startup-",
  extraConfig: `\n[metrics]\n  address = "127.0.0.1:${metricsPort}"\n`,
});
const metricsUrl = `http://127.0.0.1:${metricsPort}/v1/metrics`;
try {
  const ctrdFlags = ["--containerd", ctrd.address, "--state", ctrd.stateDir, "--namespace", "startup"];
  const ctrFlags = ["--address", ctrd.address, "-n", "startup"];
  let counter = 0;
  const runArgs = () => [
    ctrdMain,
    ...ctrdFlags,
    "run",
    "--rm",
    // --network none: as `ctr run`, which sets up no network (ctrd's default is the CNI bridge).
    "--network",
    "none",
    "--rootfs",
    ctrd.rootfs,
    "--",
    "/bin/true",
  ];
  const subjects: Record<string, () => number> = {
    "node -e 0": () => timeCommand("node", ["-e", "0"]).ms,
    "ctrd --version": () => timeCommand("node", [ctrdMain, "--version"]).ms,
    "ctr --version": () => timeCommand("ctr", ["--version"]).ms,
    "ctrd ps": () => timeCommand("node", [ctrdMain, ...ctrdFlags, "ps"]).ms,
    "ctr containers ls": () => timeCommand("ctr", [...ctrFlags, "containers", "ls"]).ms,
    "ctrd run --rm -- /bin/true": () => timeCommand("node", runArgs()).ms,
    "ctr run --rm /bin/true": () =>
      timeCommand("ctr", [
        ...ctrFlags,
        "run",
        "--rm",
        "--rootfs",
        ctrd.rootfs,
        `ctr-${++counter}`,
        "/bin/true",
      ]).ms,
    // In-process: from the first line of a fresh process to the module being usable.
    'import("libcontainerd")': () =>
      Number(
        timeCommand("node", [
          "--input-type=module",
          "-e",
          `const t = performance.now(); await import(${JSON.stringify(libraryEntry)}); console.log(performance.now() - t);`,
        ]).stdout,
      ),
  };
  if (extraCaCerts) {
    subjects[`node -e 0, extra CA certs`] = () => timeCommand("node", ["-e", "0"], process.env).ms;
    subjects[`ctrd run --rm -- /bin/true, extra CA certs`] = () =>
      timeCommand("node", runArgs(), process.env).ms;
  }
  const samples = new Map<string, number[]>(Object.keys(subjects).map((name) => [name, []]));
  for (const fn of Object.values(subjects)) fn(); // warm the page cache and the default rootfs
  // The RPCs one run of each makes, as containerd counts them (its gRPC metrics).
  const rpcs: Record<string, number> = {};
  for (const [name, fn] of Object.entries(subjects)) {
    const before = await rpcCounts(metricsUrl);
    fn();
    const after = await rpcCounts(metricsUrl);
    rpcs[name] = [...after].reduce((sum, [key, n]) => sum + n - (before.get(key) ?? 0), 0);
  }
  const loadavgAtStart = loadavg();
  for (const name of Object.keys(subjects)) cpuSamples.set(name, []);
  for (let run = 0; run < RUNS; run++) {
    for (const [name, fn] of Object.entries(subjects)) {
      current = name;
      samples.get(name)!.push(fn());
    }
  }
  const medians = Object.fromEntries([...samples].map(([name, values]) => [name, median(values)]));
  // The kernel counts children's CPU in 10 ms ticks: a mean over the runs, not a median.
  const cpuMeans = Object.fromEntries(
    [...cpuSamples].map(([name, values]) => [name, values.reduce((a, b) => a + b, 0) / values.length]),
  );
  const results = {
    date: new Date().toISOString(),
    runs: RUNS,
    loadavgAtStart,
    loadavgAtEnd: loadavg(),
    medians,
    cpuMeans,
    rpcs,
  };
  writeFileSync(join(benchDir, "startup-results.json"), `${JSON.stringify(results, null, 2)}\n`);

  const row = (name: string, peer?: string) =>
    `| ${name} | ${formatMs(medians[name]!)} | ${formatMs(cpuMeans[name]!)} | ${rpcs[name]} | ${peer ? `${peer} ${formatMs(medians[peer]!)} (${rpcs[peer]} RPCs)` : ""} | ${peer ? formatRatio(medians[name]! / medians[peer]!) : ""} |`;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  const section = [
    "## Start-up (`npm run bench:startup`)",
    "",
    `${results.date}; ${RUNS} interleaved runs each, wall-clock medians and the mean CPU (user + system) of the process; load average ${load(loadavgAtStart)} at the start, ${load(results.loadavgAtEnd)} at the end. ctrd and the library are the esbuild bundles \`npm run build\` writes; \`ctr\`'s CPU leaves out containerd's, the shim's and runc's, as ctrd's does. For \`import("libcontainerd")\` ms is the import alone, CPU the whole process's. RPCs: what containerd handled for one run (its gRPC metrics).`,
    "",
    "| command | ms | CPU ms | RPCs | peer | ratio |",
    "|---|---|---|---|---|---|",
    row("node -e 0"),
    row("ctrd --version", "ctr --version"),
    row("ctrd ps", "ctr containers ls"),
    row("ctrd run --rm -- /bin/true", "ctr run --rm /bin/true"),
    row('import("libcontainerd")'),
    ...(extraCaCerts
      ? [
          row("node -e 0, extra CA certs"),
          row("ctrd run --rm -- /bin/true, extra CA certs", "ctr run --rm /bin/true"),
          "",
          `"extra CA certs": with NODE_EXTRA_CA_CERTS=${extraCaCerts} as the environment this ran in sets it; Node 20 parses that file at start-up, before any JavaScript runs. The other Node rows run without it, as a default environment has them.`,
        ]
      : []),
  ].join("\n");
  writeBenchSection(repoDir, "bench:startup", section);
  process.stderr.write(`${section}\n`);
} finally {
  await ctrd.stop();
  // ctr leaves the parent runc made for its containers (/<namespace>).
  removeCgroupParents("/startup/any", "/startup");
}
