// `node --import tsx bench/cpu-profile.ts [N]`: where the library's own CPU goes in N sequential
// null-IO lifecycles (the bench:peer lifecycle), from V8's sampling profiler: self time per package
// (or src/ module) and the top functions, in ms per lifecycle. Add `--write FILE.cpuprofile` to keep
// the profile for Chrome DevTools.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const count = Number(process.argv[2] ?? 60);
const writeIndex = process.argv.indexOf("--write");
const ctrd = await startContainerd({ prefix: "lcd-cpuprof-" });
const client = new RemoteClient({ address: ctrd.address, namespace: "prof", stateDir: ctrd.stateDir });
let counter = 0;
const lifecycle = async () => {
  const id = `p-${++counter}`;
  const spec = defaultLinuxSpec({ args: ["/bin/true"], rootfs: ctrd.rootfs, cgroupsPath: `/prof/${id}` });
  const container = await client.newContainer(id, spec);
  const task = await container.newTask();
  const exited = task.wait();
  await task.start();
  await exited;
  await task.delete();
  await container.delete();
};

try {
  for (let i = 0; i < 5; i++) await lifecycle();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < count; i++) await lifecycle();
  const cpu = process.cpuUsage(cpu0);
  const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
  session.disconnect();
  if (writeIndex > 0) writeFileSync(process.argv[writeIndex + 1]!, JSON.stringify(profile));

  const selfUs = new Map<number, number>();
  for (const [i, nodeId] of profile.samples.entries()) {
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }

  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { url, functionName, lineNumber } = node.callFrame;
    const place =
      /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
      /\/(src\/.*|bench\/.*|test\/.*)$/.exec(url)?.[1] ??
      (url.startsWith("node:") ? url : url === "" ? `(${functionName || "program"})` : url);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    const fn = `${functionName || "(anonymous)"} ${place}:${lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const perLifecycle = (us: number) => (us / 1000 / count).toFixed(2).padStart(6);
  console.log(
    `${count} lifecycles; process CPU ${((cpu.user + cpu.system) / 1000 / count).toFixed(2)} ms each`,
  );
  console.log("\nself time per place (ms per lifecycle):");
  for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${perLifecycle(us)}  ${place}`);
  }
  console.log("\ntop functions (ms per lifecycle):");
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${perLifecycle(us)}  ${fn}`);
  }
} finally {
  await client.close();
  await ctrd.stop();
}
