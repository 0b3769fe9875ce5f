// `node --import tsx bench/startup-profile.ts [--runs N] [--library] [--functions] [-- ctrd args…]`: where a ctrd
// command's start goes. Runs the built ctrd (dist/cli, bundled) under V8's sampling profiler on a
// containerd of its own and reports CPU ms per source module (src/… and each npm package, found
// through the bundle's source map) and for Node's own internals (module loading,
// built-ins compiled on first use), summed over N runs and divided by N. `--library` profiles
// `import("libcontainerd")` (dist/index.js) instead. `--functions` adds the functions with the most
// self time, and the callers through which protobuf-es is reached. Without args: `ps`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startContainerd } from "../test/harness/containerd.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
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
const functions = own.includes("--functions");
const ctrdArgs = dashDash >= 0 ? argv.slice(dashDash + 1) : ["ps"];
const repo = join(import.meta.dirname, "..");

/** Bundle file → its source map (esbuild's linked one, FILE.map), to name the module of a position. */
const sourceMaps = new Map<string, SourceMap | undefined>();
function moduleAt(url: string, line: number, column: number): string {
  const path = url.startsWith("file:") ? fileURLToPath(url) : url;
  if (!sourceMaps.has(path)) {
    let map: SourceMap | undefined;
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")) as SourceMapPayload);
    } catch {
      map = undefined;
    }
    sourceMaps.set(path, map);
  }
  const entry = sourceMaps.get(path)?.findEntry(line, column);
  if (entry && "originalSource" in entry)
    return relative(repo, resolve(dirname(path), entry.originalSource)).replace(/^(\.\.\/)+/, "");
  return path.includes("/dist/") ? path.slice(path.indexOf("/dist/") + 1) : path;
}

function group(module: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(module);
  if (pkg) return pkg[1]!;
  if (module.startsWith("src/gen/")) return "src/gen (descriptors)";
  return module.replace(/\.(ts|js)$/, "");
}

/** Self ms per function (name and module), and per first caller outside protobuf-es of its functions. */
const byFunction = new Map<string, number>();
const protobufCallers = new Map<string, number>();

function attribute(profile: Profile, totals: Map<string, number>): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  /** Node's own code runs for someone: the nearest caller in ours (or a package's) names it. */
  const causedBy = (node: ProfileNode): string => {
    for (let up = parentOf.get(node.id); up; up = parentOf.get(up.id)) {
      const { url, lineNumber, columnNumber } = up.callFrame;
      if (url.startsWith("file:")) return group(moduleAt(url, lineNumber, columnNumber));
    }
    return "loading modules";
  };
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
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
          const k = group(moduleAt(url, tick.line - 1, 0));
          totals.set(k, (totals.get(k) ?? 0) + (ms * tick.ticks) / total);
        }
        continue;
      }
      key = group(moduleAt(url, lineNumber, columnNumber));
    }
    totals.set(key, (totals.get(key) ?? 0) + ms);
    if (!functions) continue;
    const name = `${functionName || "(anonymous)"} ${key}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    if (key === "@bufbuild/protobuf") {
      const moduleOf = (node: ProfileNode): string | undefined =>
        node.callFrame.url.startsWith("file:")
          ? group(moduleAt(node.callFrame.url, node.callFrame.lineNumber, node.callFrame.columnNumber))
          : undefined;
      let up = parentOf.get(id);
      while (up && moduleOf(up) === key) up = parentOf.get(up.id);
      const caller = up
        ? `${up.callFrame.functionName || "(anonymous)"} ${moduleOf(up) ?? up.callFrame.url}`
        : "(root)";
      protobufCallers.set(caller, (protobufCallers.get(caller) ?? 0) + ms);
    }
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
  const top = (map: Map<string, number>, title: string) => {
    report.push(title);
    for (const [key, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, 25))
      report.push(`${(ms / runs).toFixed(2).padStart(7)}  ${key}`);
  };
  if (functions) {
    top(byFunction, "functions by self time:");
    top(protobufCallers, "protobuf-es self time by its caller:");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await containerd?.stop();
}
// Printed after containerd is stopped: a reader that goes away early (| head) cannot leave it running.
process.stdout.write(`${report.join("\n")}\n`);
