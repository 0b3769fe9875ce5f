// `node --import tsx bench/cpu-profile.ts [N] [--cpu-only] [--events] [--write FILE.cpuprofile]`: where the
// library's own CPU goes in N sequential null-IO lifecycles (the bench:peer lifecycle).
// - Always: process CPU (user + system) per lifecycle measured WITHOUT the profiler (which inflates
//   it several times at a 100 µs sampling interval), and the RPCs each lifecycle sends (counted at
//   the transport).
// - Unless --cpu-only: V8's sampling profile of another N lifecycles: self time per package (or
//   src/ module), the top functions, and inclusive time of src/ functions, in ms per lifecycle.
//   `--write` keeps the profile for Chrome DevTools.
import { writeFileSync } from "node:fs";
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

try {
  for (let i = 0; i < 5; i++) await lifecycle();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await lifecycle();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${count} lifecycles, no profiler: process CPU ${((cpu.user + cpu.system) / 1000 / count).toFixed(2)} ms each ` +
      `(user ${(cpu.user / 1000 / count).toFixed(2)}, system ${(cpu.system / 1000 / count).toFixed(2)}); ` +
      `wall ${(wallMs / count).toFixed(1)} ms each`,
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
