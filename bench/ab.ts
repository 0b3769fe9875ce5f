// `node --import tsx bench/ab.ts --base DIR [--level N] [--rounds N]`: this tree's RemoteClient
// against another checkout's (e.g. `git worktree add /tmp/base main`, with node_modules linked), in
// one process on one private containerd, round by round in alternating order: wall time of N
// null-IO lifecycles at once (`--level 1`: 20 one after another), medians and their ratio. On a
// shared machine the two sides see the same load, which separate runs do not. Also the process's
// CPU per lifecycle of each side (both run in this one process, one round at a time).
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";
import { median, runToEnd } from "./measure.js";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    level: { type: "string", default: "1" },
    rounds: { type: "string", default: "8" },
  },
});
if (!values.base) throw new Error("--base DIR (a checkout to compare against) is required");
const level = Number(values.level);
const rounds = Number(values.rounds);
const baseModule = (await import(
  pathToFileURL(join(resolve(values.base), "src/libcontainerd/remote/client.ts")).href
)) as typeof import("../src/libcontainerd/remote/client.js");

const ctrd = await startContainerd({ prefix: "lcd-ab-" });
const clients = {
  base: new baseModule.RemoteClient({ address: ctrd.address, namespace: "ab-base", stateDir: ctrd.stateDir }),
  this: new RemoteClient({ address: ctrd.address, namespace: "ab-this", stateDir: ctrd.stateDir }),
};
type Side = keyof typeof clients;
let counter = 0;
const lifecycle = async (side: Side): Promise<void> => {
  const id = `${side}-${++counter}`;
  const spec = defaultLinuxSpec({
    args: ["/bin/true"],
    rootfs: ctrd.rootfs,
    cgroupsPath: `/ab-${side}/${id}`,
  });
  const container = await clients[side].newContainer(id, spec);
  await runToEnd(container);
};
const round = async (side: Side): Promise<void> => {
  if (level === 1) for (let i = 0; i < 20; i++) await lifecycle(side);
  else await Promise.all(Array.from({ length: level }, () => lifecycle(side)));
};

const ms: Record<Side, number[]> = { base: [], this: [] };
/** This process's CPU (user + system) per lifecycle in each round: the client's own cost, load aside. */
const cpuMs: Record<Side, number[]> = { base: [], this: [] };
const perRound = level === 1 ? 20 : level;
try {
  for (const side of ["base", "this"] as const) await round(side);
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? (["base", "this"] as const) : (["this", "base"] as const)) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await round(side);
      ms[side].push(performance.now() - t0);
      const cpu = process.cpuUsage(cpu0);
      cpuMs[side].push((cpu.user + cpu.system) / 1000 / perRound);
    }
  }
  const what = level === 1 ? "20 lifecycles one after another" : `${level} lifecycles at once`;
  console.log(`${what}, ${rounds} rounds (ms): base ${ms.base.map((v) => v.toFixed(0)).join(" ")}`);
  console.log(
    `${" ".repeat(what.length + rounds.toString().length + 14)}this ${ms.this.map((v) => v.toFixed(0)).join(" ")}`,
  );
  console.log(`median this / base: ${(median(ms.this) / median(ms.base)).toFixed(3)}`);
  console.log(
    `client CPU per lifecycle (ms, median of rounds): base ${median(cpuMs.base).toFixed(2)}, ` +
      `this ${median(cpuMs.this).toFixed(2)}; this / base ${(median(cpuMs.this) / median(cpuMs.base)).toFixed(3)}`,
  );
} finally {
  await clients.base.close();
  await clients.this.close();
  await ctrd.stop();
}
