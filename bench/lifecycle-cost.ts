// `node --import tsx bench/lifecycle-cost.ts [--rounds N] [--per K] [--level N] [--go] [--base DIR]`:
// what one null-IO lifecycle (bench:peer's) costs on BOTH sides of the socket, per subject, on one
// private containerd, subjects alternated round by round:
// - client CPU ms (this process's cpuUsage; the Go client's own rusage),
// - containerd CPU ms (the sum of its threads' /proc/<pid>/task/*/schedstat, in ns),
// - shims + runc CPU ms (a cpuacct cgroup holding containerd and whatever it spawns, minus containerd;
//   runc moves a container's own processes into the container's cgroup, so /bin/true is not in it),
// - RPCs as containerd counts them (its gRPC metrics).
// Subjects: this tree's RemoteClient; `--base DIR` another checkout's (old vs new); `--go` containerd's
// Go client (bench/go-client, built once into /tmp/lifecycle-go/build). `--level N`: N lifecycles at once
// per round instead of K one after another. `--warmup N`: lifecycles each subject runs first (default 5;
// 1500 measures the library once V8 has optimized it). cgroup v1 (a cpuacct hierarchy) or v2 (cpu.stat).
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { RUNC_V2_SHIM } from "../src/runtime/names.js";
import type { RuntimeResolver } from "../src/runtime/types.js";
import { startContainerd } from "../test/harness/containerd.js";
import { GoClient } from "./go-client.js";
import { freePort, median, rpcCounts, runToEnd } from "./measure.js";
import { ServerCpu } from "./server-cpu.js";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    go: { type: "boolean", default: false },
    level: { type: "string", default: "1" },
    per: { type: "string", default: "20" },
    rounds: { type: "string", default: "6" },
    /** Lifecycles each subject runs before the rounds (V8 optimizes our hot path over the first ~1000). */
    warmup: { type: "string", default: "5" },
    /** A subject `flat`: this tree with containers straight under the cgroup root (no parent to make). */
    flat: { type: "boolean", default: false },
    /** A subject `events`: this tree with its event stream subscribed and read (as ctrd serve has it). */
    events: { type: "boolean", default: false },
    /** A subject `plain`: this tree with the runc v2 shim and no shim options (as the Go client). */
    plain: { type: "boolean", default: false },
  },
});
const level = Number(values.level);
const per = level === 1 ? Number(values.per) : level;
const rounds = Number(values.rounds);

interface Sample {
  wallMs: number;
  clientMs: number;
  containerdMs: number;
  shimsMs: number;
  rpcs: Map<string, number>;
}

const port = await freePort();
const ctrd = await startContainerd({
  prefix: "lcd-cost-",
  extraConfig: `\n[metrics]\n  address = "127.0.0.1:${port}"\n`,
});
const metricsUrl = `http://127.0.0.1:${port}/v1/metrics`;
const serverCpu = new ServerCpu(ctrd.pid);

type Run = (n: number) => Promise<number>; // runs n lifecycles, returns the client CPU ms they took
const subjects = new Map<string, Run>();
const clients: { close(): Promise<void> }[] = [];
let counter = 0;
const libraryRun = (name: string, Client: typeof RemoteClient, runtimes?: RuntimeResolver): Run => {
  const client = new Client({
    address: ctrd.address,
    namespace: `cost-${name}`,
    stateDir: ctrd.stateDir,
    ...(runtimes ? { runtimes } : {}),
  });
  clients.push(client);
  if (name === "events") void drain(client.events());
  const one = async () => {
    const id = `${name}-${++counter}`;
    const spec = defaultLinuxSpec({
      args: ["/bin/true"],
      rootfs: ctrd.rootfs,
      cgroupsPath: name === "flat" ? `/${id}` : `/cost-${name}/${id}`,
    });
    const status = await runToEnd(await client.newContainer(id, spec));
    if (status.exitCode !== 0) throw new Error(`${id} exited ${status.exitCode}`);
  };
  return async (n) => {
    const cpu0 = process.cpuUsage();
    if (level === 1) for (let i = 0; i < n; i++) await one();
    else await Promise.all(Array.from({ length: n }, one));
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / 1000;
  };
};
async function drain(events: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of events);
}
let go: GoClient | undefined;
try {
  subjects.set("this", libraryRun("this", RemoteClient));
  if (values.flat) subjects.set("flat", libraryRun("flat", RemoteClient));
  if (values.events) subjects.set("events", libraryRun("events", RemoteClient));
  if (values.plain) {
    const plain = {
      defaultRuntime: RUNC_V2_SHIM,
      resolve: async () => ({ name: RUNC_V2_SHIM, shim: RUNC_V2_SHIM }),
    };
    subjects.set("plain", libraryRun("plain", RemoteClient, plain));
  }
  if (values.base) {
    const base = (await import(
      pathToFileURL(join(resolve(values.base), "src/libcontainerd/remote/client.ts")).href
    )) as typeof import("../src/libcontainerd/remote/client.js");
    subjects.set("base", libraryRun("base", base.RemoteClient));
  }
  if (values.go) {
    go = await GoClient.start("/tmp/lifecycle-go/build", ctrd.address, "cost-go", ctrd.rootfs);
    const client = go;
    subjects.set("go", async (n) => {
      if (level !== 1) return (await client.run(`par ${n}`)).cpuMs;
      let ms = 0;
      for (let i = 0; i < n; i++) ms += (await client.run("one")).cpuMs;
      return ms;
    });
  }

  const measure = async (run: Run): Promise<Sample> => {
    const rpc0 = await rpcCounts(metricsUrl);
    const t0 = performance.now();
    const { value: clientMs, containerdMs, shimsMs } = await serverCpu.measure(() => run(per));
    const wallMs = performance.now() - t0;
    const rpc1 = await rpcCounts(metricsUrl);
    const rpcs = new Map<string, number>();
    for (const [key, count] of rpc1) {
      const delta = count - (rpc0.get(key) ?? 0);
      if (delta > 0) rpcs.set(key, delta);
    }
    return { wallMs, clientMs, containerdMs, shimsMs, rpcs };
  };

  const names = [...subjects.keys()];
  const warmup = Number(values.warmup);
  for (const name of names)
    for (let done = 0; done < warmup; done += per) await subjects.get(name)!(Math.min(per, warmup - done));
  const samples = new Map<string, Sample[]>(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = names.map((_, k) => names[(k + round) % names.length]!);
    for (const name of order) samples.get(name)!.push(await measure(subjects.get(name)!));
  }

  const what = `${level === 1 ? `${per} lifecycles one after another` : `${level} lifecycles at once`}, after ${warmup} each to warm up`;
  console.log(
    `${what}, ${rounds} rounds; medians per lifecycle; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log("subject   wall ms   client CPU ms   containerd CPU ms   shims+runc CPU ms   RPCs");
  for (const [name, list] of samples) {
    const m = (pick: (s: Sample) => number) => median(list.map(pick)) / per;
    const rpcs = new Map<string, number>();
    for (const s of list)
      for (const [k, v] of s.rpcs) rpcs.set(k, (rpcs.get(k) ?? 0) + v / per / list.length);
    const total = [...rpcs.values()].reduce((a, b) => a + b, 0);
    console.log(
      `${name.padEnd(8)} ${m((s) => s.wallMs)
        .toFixed(1)
        .padStart(8)} ${m((s) => s.clientMs)
        .toFixed(2)
        .padStart(15)} ` +
        `${m((s) => s.containerdMs)
          .toFixed(2)
          .padStart(19)} ${m((s) => s.shimsMs)
          .toFixed(2)
          .padStart(19)}   ${total.toFixed(1)}`,
    );
    console.log(
      `         ${[...rpcs]
        .sort()
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(", ")}`,
    );
  }
} finally {
  go?.close();
  for (const client of clients) await client.close();
  await ctrd.stop();
  await serverCpu.remove();
  // The Go client leaves its containers' cgroup parent behind (the library removes its own).
  removeCgroupParents("/cost-go/any", "/cost-go");
}
