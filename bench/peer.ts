// `npm run bench:peer [-- --quick]`: the library against containerd's own Go client (in process, as
// dockerd and nerdctl use it) and `ctr`, on one private containerd, interleaved round by round.
// Measures what issue #19 asks: sequential lifecycle, 50 and 200 at once, client CPU per lifecycle,
// and RPCs per lifecycle counted by containerd itself (its gRPC metrics), so both sides are counted
// the same way. Writes bench/peer-results.json and the "Go client" section of BENCHMARKS.md.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";
import { GoClient, type GoSample } from "./go-client.js";
import { machineFacts } from "./machine.js";
import { formatMs, formatRatio, freePort, median, rpcCounts, runCommand, runToEnd } from "./measure.js";
import { writeBenchSection } from "./report.js";
import { ServerCpu, type ServerCpuMs } from "./server-cpu.js";
import { BenchSubjects, NAMESPACE } from "./subjects.js";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 10 : 40;
const RPC_ROUNDS = quick ? 5 : 10;
const CONCURRENT_ROUNDS = quick ? 1 : 2;
/**
 * Library lifecycles run before the warm sequential rounds (on top of the rounds before them). V8
 * optimizes a function after many calls, and a lifecycle calls most of ours once: over the first
 * ~1000 lifecycles the library also pays TurboFan (bench/cpu-profile.ts prints the curve). The Go
 * client is compiled ahead of time; it has nothing to warm.
 */
const WARMUP = quick ? 300 : 1200;
const LEVELS = [50, 200];
const benchDir = import.meta.dirname;

const started = performance.now();
function log(message: string): void {
  process.stderr.write(
    `peer [${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}\n`,
  );
}

type Sample = GoSample;

function perLifecycle(
  before: Map<string, number>,
  after: Map<string, number>,
  n: number,
): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) result[key] = delta / n;
  }
  return result;
}

async function main(): Promise<void> {
  const port = await freePort();
  const ctrd = await startContainerd({
    prefix: "lcd-peer-",
    extraConfig: `\n[metrics]\n  address = "127.0.0.1:${port}"\n`,
  });
  const metricsUrl = `http://127.0.0.1:${port}/v1/metrics`;
  // What each side makes containerd, the shims and runc spend: on 2 cores it is taken from everyone.
  const serverCpu = new ServerCpu(ctrd.pid);
  const subjects = new BenchSubjects(ctrd);
  const client = new RemoteClient({ address: ctrd.address, namespace: "bench-lib", stateDir: ctrd.stateDir });
  let counter = 0;
  const library = async (): Promise<void> => {
    const id = `lib-${++counter}`;
    const spec = defaultLinuxSpec({
      args: ["/bin/true"],
      rootfs: ctrd.rootfs,
      cgroupsPath: `/bench-lib/${id}`,
    });
    const container = await client.newContainer(id, spec);
    const status = await runToEnd(container); // null IO, as cio.NullIO on the Go side
    if (status.exitCode !== 0) throw new Error(`${id} exited ${status.exitCode}`);
  };
  const measureLibrary = async (run: () => Promise<unknown>): Promise<Sample> => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
  };

  log("building the Go client (Debian's golang-go + containerd 1.6 sources)");
  const go = await GoClient.start(join(ctrd.dir, "go"), ctrd.address, "bench-go", ctrd.rootfs);
  try {
    log("warming up");
    for (let i = 0; i < 3; i++) {
      await library();
      await go.run("one");
      await subjects.ctrLifecycle("runc-v2");
    }

    const sequential = async () => {
      const seq = { library: [] as Sample[], go: [] as Sample[], ctr: [] as number[] };
      for (let round = 0; round < ROUNDS; round++) {
        const order = [0, 1, 2].map((k) => (k + round) % 3);
        for (const k of order) {
          if (k === 0) seq.library.push(await measureLibrary(library));
          else if (k === 1) seq.go.push(await go.run("one"));
          else seq.ctr.push(await subjects.ctrLifecycle("runc-v2"));
        }
      }
      return {
        libraryMs: median(seq.library.map((s) => s.ms)),
        goMs: median(seq.go.map((s) => s.ms)),
        ctrMs: median(seq.ctr),
        libraryCpuMs: median(seq.library.map((s) => s.cpuMs)),
        goCpuMs: median(seq.go.map((s) => s.cpuMs)),
      };
    };
    log(`sequential: ${ROUNDS} rounds, library / Go client / ctr interleaved`);
    const cold = await sequential();

    log(`RPCs and containerd-side CPU per lifecycle: ${RPC_ROUNDS} each, counted by containerd`);
    const server: Record<string, { library: ServerCpuMs; go: ServerCpuMs }> = {};
    const m0 = await rpcCounts(metricsUrl);
    const libraryServer = await serverCpu.measure(async () => {
      for (let i = 0; i < RPC_ROUNDS; i++) await library();
    }, RPC_ROUNDS);
    const m1 = await rpcCounts(metricsUrl);
    const goServer = await serverCpu.measure(async () => {
      for (let i = 0; i < RPC_ROUNDS; i++) await go.run("one");
    }, RPC_ROUNDS);
    const m2 = await rpcCounts(metricsUrl);
    server.sequential = { library: libraryServer, go: goServer };
    const rpcs = { library: perLifecycle(m0, m1, RPC_ROUNDS), go: perLifecycle(m1, m2, RPC_ROUNDS) };

    const atOnce = async (when: string) => {
      const concurrent: Record<number, { library: Sample[]; go: Sample[] }> = {};
      for (const level of LEVELS) {
        concurrent[level] = { library: [], go: [] };
        for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
          log(`${level} at once, ${when}, round ${round + 1}`);
          const lib = () =>
            serverCpu.measure(
              () => measureLibrary(() => Promise.all(Array.from({ length: level }, library))),
              level,
            );
          const goPar = () => serverCpu.measure(() => go.run(`par ${level}`), level);
          const goFirst = round % 2 === 1;
          const goEarly = goFirst ? await goPar() : undefined;
          const libSample = await lib();
          const goSample = goEarly ?? (await goPar());
          concurrent[level]!.library.push(libSample.value);
          concurrent[level]!.go.push(goSample.value);
          // The first round's: one number per level, as the RPC counts.
          server[`${level} at once, ${when}`] ??= { library: libSample, go: goSample };
        }
      }
      return Object.fromEntries(
        LEVELS.map((level) => {
          const c = concurrent[level]!;
          return [
            `${level}, ${when}`,
            {
              libraryWallMs: median(c.library.map((s) => s.ms)),
              goWallMs: median(c.go.map((s) => s.ms)),
              libraryCpuMsPerLifecycle: median(c.library.map((s) => s.cpuMs)) / level,
              goCpuMsPerLifecycle: median(c.go.map((s) => s.cpuMs)) / level,
            },
          ];
        }),
      );
    };
    const concurrentCold = await atOnce("cold");

    log(`${WARMUP} more library lifecycles, then sequential and at once again, warm`);
    for (let i = 0; i < WARMUP; i++) await library();
    const warm = await sequential();
    const concurrentWarm = await atOnce("warm");

    const facts = await machineFacts(
      (await client.version()).version,
      (await runCommand("ctr", ["--version"])).stdout.trim(),
    );
    const results = {
      date: new Date().toISOString(),
      quick,
      loadavgAtEnd: loadavg(),
      machine: facts,
      sequential: cold,
      sequentialWarm: warm,
      warmup: WARMUP,
      rpcs,
      serverCpu: Object.fromEntries(
        Object.entries(server).map(([what, { library, go }]) => [
          what,
          {
            library: { containerdMs: library.containerdMs, shimsMs: library.shimsMs },
            go: { containerdMs: go.containerdMs, shimsMs: go.shimsMs },
          },
        ]),
      ),
      concurrent: { ...concurrentCold, ...concurrentWarm },
    };
    writeFileSync(join(benchDir, "peer-results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeSection(results);
    log("wrote bench/peer-results.json and BENCHMARKS.md");
  } finally {
    go.close();
    await client.close();
    await ctrd.stop();
    await serverCpu.remove();
    // The Go client and ctr (BenchSubjects, namespace `bench`) leave their containers' cgroup parent
    // behind (the library removes its own).
    removeCgroupParents("/bench-go/any", "/bench-go");
    removeCgroupParents(`/${NAMESPACE}/any`, `/${NAMESPACE}`);
  }
}

type Sequential = Record<"libraryMs" | "goMs" | "ctrMs" | "libraryCpuMs" | "goCpuMs", number>;
type Results = {
  date: string;
  quick: boolean;
  loadavgAtEnd: number[];
  machine: { cpu: string; cores: number; containerd: string; runc: string };
  sequential: Sequential;
  sequentialWarm: Sequential;
  warmup: number;
  rpcs: { library: Record<string, number>; go: Record<string, number> };
  serverCpu: Record<string, { library: ServerCpuMs; go: ServerCpuMs }>;
  concurrent: Record<
    string,
    Record<"libraryWallMs" | "goWallMs" | "libraryCpuMsPerLifecycle" | "goCpuMsPerLifecycle", number>
  >;
};

function writeSection(r: Results): void {
  const s = r.sequential;
  const w = r.sequentialWarm;
  // The library's lifecycles before the warm sequential rounds: warm-up, cold rounds, RPC count, at once, warm-up.
  const beforeWarm =
    3 + ROUNDS + RPC_ROUNDS + CONCURRENT_ROUNDS * LEVELS.reduce((a, b) => a + b, 0) + r.warmup;
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  const methods = [...new Set([...Object.keys(r.rpcs.library), ...Object.keys(r.rpcs.go)])].sort();
  const lines = [
    "## Against containerd's Go client (`npm run bench:peer`)",
    "",
    `${r.date}${r.quick ? " (--quick)" : ""}; ${r.machine.cpu}, ${r.machine.cores} cores; containerd ${r.machine.containerd};`,
    `${r.machine.runc}; load average at the end ${r.loadavgAtEnd.map((l) => l.toFixed(2)).join(" ")}.`,
    "One private containerd; the library (null IO), containerd's Go client in process (bench/go-client, null IO,",
    "what dockerd and nerdctl pay) and `ctr run --rm` interleaved round by round; runc v2 shim, `/bin/true`.",
    "",
    "| sequential lifecycle (median) | library | Go client | ctr | library / Go | library / ctr |",
    "|---|---|---|---|---|---|",
    `| wall ms, cold | ${formatMs(s.libraryMs)} | ${formatMs(s.goMs)} | ${formatMs(s.ctrMs)} | ${formatRatio(s.libraryMs / s.goMs)} | ${formatRatio(s.libraryMs / s.ctrMs)} |`,
    `| client CPU ms, cold | ${formatMs(s.libraryCpuMs)} | ${formatMs(s.goCpuMs)} | | ${formatRatio(s.libraryCpuMs / s.goCpuMs)} | |`,
    `| wall ms, warm | ${formatMs(w.libraryMs)} | ${formatMs(w.goMs)} | ${formatMs(w.ctrMs)} | ${formatRatio(w.libraryMs / w.goMs)} | ${formatRatio(w.libraryMs / w.ctrMs)} |`,
    `| client CPU ms, warm | ${formatMs(w.libraryCpuMs)} | ${formatMs(w.goCpuMs)} | | ${formatRatio(w.libraryCpuMs / w.goCpuMs)} | |`,
    "",
    `Cold: the library's lifecycles 4 to ${3 + ROUNDS} in this process. Warm: after ${beforeWarm} of them, once V8 has optimized`,
    "the library's code (over the first ~1000 lifecycles it also pays TurboFan's compiling; bench/cpu-profile.ts prints the curve).",
    "The Go client is compiled ahead of time and has nothing to warm; ctr is a new process each time. At once: cold right",
    "after the cold sequential rounds, warm after the warm ones.",
    "",
    "| at once | library wall ms | Go wall ms | library / Go (throughput: Go / library) | client CPU ms per lifecycle, library / Go |",
    "|---|---|---|---|---|",
    ...Object.entries(r.concurrent).map(
      ([level, c]) =>
        `| ${level} | ${formatMs(c.libraryWallMs)} | ${formatMs(c.goWallMs)} | ${formatRatio(c.libraryWallMs / c.goWallMs)} | ${formatMs(c.libraryCpuMsPerLifecycle)} / ${formatMs(c.goCpuMsPerLifecycle)} |`,
    ),
    "",
    "| containerd-side CPU ms per lifecycle: containerd / shims + runc | library | Go client |",
    "|---|---|---|",
    ...Object.entries(r.serverCpu).map(
      ([what, { library, go }]) =>
        `| ${what} | ${formatMs(library.containerdMs)} / ${formatMs(library.shimsMs)} | ${formatMs(go.containerdMs)} / ${formatMs(go.shimsMs)} |`,
    ),
    "",
    `RPCs per lifecycle as containerd counts them: library ${total(r.rpcs.library).toFixed(1)}, Go client ${total(r.rpcs.go).toFixed(1)}.`,
    "",
    "| RPC | library | Go client |",
    "|---|---|---|",
    ...methods.map(
      (m) => `| ${m} | ${r.rpcs.library[m]?.toFixed(1) ?? "0"} | ${r.rpcs.go[m]?.toFixed(1) ?? "0"} |`,
    ),
  ];
  writeBenchSection(join(benchDir, ".."), "bench:peer", lines.join("\n"));
}

await main();
