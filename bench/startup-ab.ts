// `node --import tsx bench/startup-ab.ts --base DIR [--runs N] [--only NAME]`: this tree's built ctrd
// (dist/cli/main.js) against another build's (DIR/dist/cli/main.js, e.g. a copy of dist/ taken
// before a change, with package.json and native/ linked beside it), whole-process runs alternated
// run by run on one private containerd, so that both see the same load. Per command: wall-clock
// median, mean CPU (user + system, the kernel's 10 ms ticks of the waited-for child) and the RPCs
// containerd handled per run (its gRPC metrics), by method.
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { startContainerd } from "../test/harness/containerd.js";
import { formatMs, freePort, median, processCpuMs, rpcCounts } from "./measure.js";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    runs: { type: "string", default: "15" },
    only: { type: "string" },
  },
});
if (!values.base) throw new Error("--base DIR (a build to compare against) is required");
const runs = Number(values.runs);
const builds = {
  base: join(resolve(values.base), "dist/cli/main.js"),
  this: join(import.meta.dirname, "../dist/cli/main.js"),
};
type Side = keyof typeof builds;

const port = await freePort();
const ctrd = await startContainerd({
  prefix: "lcd-startab-",
  extraConfig: `\n[metrics]\n  address = "127.0.0.1:${port}"\n`,
});
const metricsUrl = `http://127.0.0.1:${port}/v1/metrics`;
const lines: string[] = [];
try {
  const global = ["--containerd", ctrd.address, "--state", ctrd.stateDir, "--namespace", "startab"];
  const commands: Record<string, string[]> = {
    "--version": ["--version"],
    ps: [...global, "ps"],
    "run --rm": [...global, "run", "--rm", "--network", "none", "--rootfs", ctrd.rootfs, "--", "/bin/true"],
  };
  const chosen = Object.entries(commands).filter(([name]) => !values.only || name === values.only);
  const once = (side: Side, args: string[]): { ms: number; cpuMs: number } => {
    const cpu0 = processCpuMs("self", true);
    const t0 = performance.now();
    const result = spawnSync(process.execPath, [builds[side], ...args], { encoding: "utf8" });
    const ms = performance.now() - t0;
    if (result.status !== 0) throw new Error(`${side} ctrd ${args.join(" ")} failed: ${result.stderr}`);
    return { ms, cpuMs: processCpuMs("self", true) - cpu0 };
  };
  const load0 = loadavg();
  for (const [name, args] of chosen) {
    const rpcs = new Map<Side, Map<string, number>>();
    for (const side of ["base", "this"] as const) {
      once(side, args); // warm the page cache
      const before = await rpcCounts(metricsUrl);
      once(side, args);
      const after = await rpcCounts(metricsUrl);
      rpcs.set(side, new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)])));
    }
    const samples: Record<Side, { ms: number; cpuMs: number }[]> = { base: [], this: [] };
    for (let run = 0; run < runs; run++) {
      for (const side of run % 2 === 0 ? (["base", "this"] as const) : (["this", "base"] as const))
        samples[side].push(once(side, args));
    }
    const stat = (side: Side) => {
      const s = samples[side];
      const rpc = [...rpcs.get(side)!].filter(([, n]) => n > 0);
      const total = rpc.reduce((sum, [, n]) => sum + n, 0);
      return `${side}: ${formatMs(median(s.map((x) => x.ms)))} ms, CPU ${formatMs(s.reduce((a, x) => a + x.cpuMs, 0) / s.length)} ms, ${total} RPCs (${rpc
        .sort()
        .map(([k, n]) => `${k}${n > 1 ? `×${n}` : ""}`)
        .join(" ")})`;
    };
    const ratio = median(samples.this.map((x) => x.ms)) / median(samples.base.map((x) => x.ms));
    lines.push(
      `ctrd ${name}: ${stat("base")}`,
      `ctrd ${name}: ${stat("this")}`,
      `  this/base ${ratio.toFixed(2)}`,
    );
    process.stderr.write(`${lines.slice(-3).join("\n")}\n`);
  }
  lines.push(
    `${runs} alternated runs each; load average ${load0.map((x) => x.toFixed(2)).join(" ")} → ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await ctrd.stop();
}
process.stdout.write(`${lines.join("\n")}\n`);
