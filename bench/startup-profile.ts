// `node --import tsx bench/startup-profile.ts [--runs N] [--library] [-- ctrd args…]`: where a ctrd
// command's start goes. Runs the built ctrd (dist/cli, bundled) under V8's sampling profiler on a
// containerd of its own and reports CPU ms per source module (src/… and each npm package, found
// through esbuild's `// path` comments in the bundle) and for Node's own internals (module loading,
// built-ins compiled on first use), summed over N runs and divided by N. `--library` profiles
// `import("libcontainerd")` (dist/index.js) instead. Without args: `ps`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startContainerd } from "../test/harness/containerd.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
  positionTicks?: { line: number; ticks: number }[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const dashDash = argv.indexOf("--");
const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
const runsIndex = own.indexOf("--runs");
const runs = runsIndex >= 0 ? Number(own[runsIndex + 1]) : 5;
const library = own.includes("--library");
const ctrdArgs = dashDash >= 0 ? argv.slice(dashDash + 1) : ["ps"];
const repo = join(import.meta.dirname, "..");

/** Bundle file → for each line, the source module esbuild put there (its `// path` comment). */
const moduleLines = new Map<string, string[]>();
function moduleAt(url: string, line: number): string {
  const path = url.startsWith("file:") ? fileURLToPath(url) : url;
  let lines = moduleLines.get(path);
  if (!lines) {
    lines = [];
    let current = "";
    try {
      for (const text of readFileSync(path, "utf8").split("\n")) {
        const match = /^\/\/ ((?:src|node_modules)\/\S+)$/.exec(text);
        if (match) current = match[1]!;
        lines.push(current);
      }
    } catch {}
    moduleLines.set(path, lines);
  }
  return lines[line] || (path.includes("/dist/") ? path.slice(path.indexOf("/dist/") + 1) : path);
}

function group(module: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(module);
  if (pkg) return pkg[1]!;
  if (module.startsWith("src/gen/")) return "src/gen (descriptors)";
  return module.replace(/\.(ts|js)$/, "");
}

function attribute(profile: Profile, totals: Map<string, number>): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  /** Node's own code runs for someone: the nearest caller in ours (or a package's) names it. */
  const causedBy = (node: ProfileNode): string => {
    for (let up = parentOf.get(node.id); up; up = parentOf.get(up.id)) {
      const { url, lineNumber } = up.callFrame;
      if (url.startsWith("file:")) return group(moduleAt(url, lineNumber));
    }
    return "loading modules";
  };
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    let key: string;
    if (functionName === "(idle)") continue;
    if (functionName === "(garbage collector)") key = "(gc)";
    else if (functionName === "(program)" || url === "") key = "(V8: compile, native)";
    else if (url.startsWith("node:")) key = `(node internals) for ${causedBy(node)}`;
    else {
      // Top-level code of a chunk is one function: split it by the lines its ticks fell on.
      const ticks = node.positionTicks ?? [];
      const total = ticks.reduce((sum, tick) => sum + tick.ticks, 0);
      if (lineNumber === 0 && total > 0) {
        for (const tick of ticks) {
          const k = group(moduleAt(url, tick.line - 1));
          totals.set(k, (totals.get(k) ?? 0) + (ms * tick.ticks) / total);
        }
        continue;
      }
      key = group(moduleAt(url, lineNumber));
    }
    totals.set(key, (totals.get(key) ?? 0) + ms);
  }
}

const report: string[] = [];
const containerd = library ? undefined : await startContainerd({ prefix: "lcd-startprof-" });
const dir = mkdtempSync(join(tmpdir(), "lcd-startprof-"));
try {
  const libraryEntry = process.env.LIBRARY_ENTRY ?? join(repo, "dist/index.js");
  const command = library
    ? ["--input-type=module", "-e", `await import(${JSON.stringify(libraryEntry)});`]
    : [
        join(repo, "dist/cli/main.js"),
        "--containerd",
        containerd!.address,
        "--state",
        containerd!.stateDir,
        "--namespace",
        "startprof",
        ...ctrdArgs.map((arg) => (arg === "ROOTFS" ? containerd!.rootfs : arg)),
      ];
  const totals = new Map<string, number>();
  for (let run = 0; run < runs; run++) {
    const profDir = join(dir, String(run));
    const result = spawnSync(
      process.execPath,
      ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "200", ...command],
      { encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`run failed (${result.status}): ${result.stderr}`);
    for (const file of readdirSync(profDir))
      attribute(JSON.parse(readFileSync(join(profDir, file), "utf8")) as Profile, totals);
  }
  const rows = [...totals].map(([key, ms]) => [key, ms / runs] as const).sort((a, b) => b[1] - a[1]);
  const sum = rows.reduce((s, [, ms]) => s + ms, 0);
  report.push(
    `${library ? 'import("libcontainerd")' : `ctrd ${ctrdArgs.join(" ")}`}: ${sum.toFixed(1)} ms CPU per run (${runs} runs, sampled every 200 µs; idle excluded)`,
    ...rows.filter(([, ms]) => ms >= 0.5).map(([key, ms]) => `${ms.toFixed(1).padStart(7)}  ${key}`),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await containerd?.stop();
}
// Printed after containerd is stopped: a reader that goes away early (| head) cannot leave it running.
process.stdout.write(`${report.join("\n")}\n`);
