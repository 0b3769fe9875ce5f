// `node --import tsx bench/cpu-profile.ts [N] [--cpu-only] [--events] [--write FILE.cpuprofile]`: where the
// library's own CPU goes in N sequential null-IO lifecycles (the bench:peer lifecycle).
// - Always: process CPU (user + system) per lifecycle measured WITHOUT the profiler (which inflates
//   it several times at a 100 µs sampling interval), and the RPCs each lifecycle sends (counted at
//   the transport).
// - Unless --cpu-only: V8's sampling profile of another N lifecycles: self time per package (or
//   src/ module), the top functions, and inclusive time of src/ functions, in ms per lifecycle.
//   `--write` keeps the profile for Chrome DevTools.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";
import { runToEnd } from "./measure.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const count = Number(/^\d+$/.test(process.argv[2] ?? "") ? process.argv[2] : 60);
const cpuOnly = process.argv.includes("--cpu-only");
// --events: the client's event stream subscribed and read throughout, as `ctrd serve` has it.
const withEvents = process.argv.includes("--events");
const writeIndex = process.argv.indexOf("--write");
const ctrd = await startContainerd({ prefix: "lcd-cpuprof-" });
const client = new RemoteClient({ address: ctrd.address, namespace: "prof", stateDir: ctrd.stateDir });
if (withEvents)
  void (async () => {
    for await (const _ of client.events());
  })();
let counter = 0;
const lifecycle = async () => {
  const id = `p-${++counter}`;
  const spec = defaultLinuxSpec({ args: ["/bin/true"], rootfs: ctrd.rootfs, cgroupsPath: `/prof/${id}` });
  const container = await client.newContainer(id, spec);
  await runToEnd(container);
};

const placeOf = (url: string, functionName: string) =>
  /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
  /\/(src\/.*|bench\/.*|test\/.*)$/.exec(url)?.[1] ??
  (url.startsWith("node:") ? url : url === "" ? `(${functionName || "program"})` : url);

function report(profile: Profile): void {
  const selfUs = new Map<number, number>();
  for (const [i, nodeId] of profile.samples.entries()) {
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const name = (node: ProfileNode) => {
    const { url, functionName, lineNumber } = node.callFrame;
    return `${functionName || "(anonymous)"} ${placeOf(url, functionName)}:${lineNumber + 1}`;
  };
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const place = placeOf(node.callFrame.url, node.callFrame.functionName);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    byFunction.set(name(node), (byFunction.get(name(node)) ?? 0) + us);
  }
  // Inclusive time: a node's self time plus its subtree's, counted once per function per stack.
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const inclusive = new Map<string, number>();
  const walk = (node: ProfileNode, onStack: Set<string>): number => {
    let total = selfUs.get(node.id) ?? 0;
    const fn = name(node);
    const counted = fn.includes(" src/") && !onStack.has(fn);
    if (counted) onStack.add(fn);
    for (const child of node.children ?? []) total += walk(byId.get(child)!, onStack);
    if (counted) {
      onStack.delete(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + total);
    }
    return total;
  };
  walk(profile.nodes[0]!, new Set());

  const perLifecycle = (us: number) => (us / 1000 / count).toFixed(2).padStart(6);
  console.log("\nself time per place (ms per lifecycle):");
  for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${perLifecycle(us)}  ${place}`);
  }
  console.log("\ntop functions, self time (ms per lifecycle):");
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${perLifecycle(us)}  ${fn}`);
  }
  console.log("\nsrc/ functions, inclusive time (ms per lifecycle):");
  for (const [fn, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${perLifecycle(us)}  ${fn}`);
  }
}

/** CPU ms of each of this process's threads by name (utime + stime from /proc, in clock ticks). */
function threadCpu(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "latin1");
      const name = `${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}${tid === String(process.pid) ? " (main)" : ""}`;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
      byName.set(name, (byName.get(name) ?? 0) + ms);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

try {
  for (let i = 0; i < 5; i++) await lifecycle();
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // CPU per lifecycle in consecutive batches: V8 optimizes a function only after many calls, and a
  // lifecycle calls most of its functions once, so the first thousand lifecycles also pay TurboFan.
  const batch = Math.max(1, Math.floor(count / 10));
  const curve: string[] = [];
  let batchCpu = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    await lifecycle();
    if ((i + 1) % batch === 0) {
      const used = process.cpuUsage(batchCpu);
      curve.push(((used.user + used.system) / 1000 / batch).toFixed(2));
      batchCpu = process.cpuUsage();
    }
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${count} lifecycles, no profiler: process CPU ${((cpu.user + cpu.system) / 1000 / count).toFixed(2)} ms each ` +
      `(user ${(cpu.user / 1000 / count).toFixed(2)}, system ${(cpu.system / 1000 / count).toFixed(2)}); ` +
      `wall ${(wallMs / count).toFixed(1)} ms each`,
  );
  console.log(`CPU ms per lifecycle by batch of ${batch} (after 5 to warm up): ${curve.join(" ")}`);
  // Where the CPU the sampling profile does not see goes: V8's GC and compiler threads, libuv's pool.
  const threads = threadCpu();
  console.log(
    `per thread (ms per lifecycle, 10 ms ticks): ${[...threads]
      .map(([name, ms]) => [name, (ms - (threads0.get(name) ?? 0)) / count] as const)
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
      .join(", ")}`,
  );
  if (!cpuOnly) {
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    for (let i = 0; i < count; i++) await lifecycle();
    const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
    session.disconnect();
    if (writeIndex > 0) writeFileSync(process.argv[writeIndex + 1]!, JSON.stringify(profile));
    report(profile);
  }
} finally {
  await client.close();
  await ctrd.stop();
}
