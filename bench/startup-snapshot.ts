// `npm run bench:snapshot [-- --runs N] [-- --other-node PATH]`: would ctrd start faster from a V8
// startup snapshot (node --build-snapshot / --snapshot-blob, Node >= 20.19)? Builds one of the built
// bundle (dist/cli/ctrd.cjs) in a temp dir, with the modules `run` and `ps` need evaluated, and
// measures it against how ctrd starts today (dist/cli/main.js: the bundle with V8's code cache,
// src/cli/code-cache.ts): `ctrd --version`, `ctrd ps`, `ctrd run --rm --network none --rootfs R --
// /bin/true` on a containerd of its own, interleaved, wall-clock medians and mean CPU, without
// NODE_EXTRA_CA_CERTS (and with it too where the caller's environment sets it); and what an empty
// snapshot costs against `node -e 0`. Then what node does with a blob it cannot use (missing, made
// under other V8 flags, not a blob, made by another Node: --other-node PATH), and which process
// state the modules read while the snapshot is built: it would be frozen into it (the build's pid,
// hostname, env, clock). Writes bench/startup-snapshot-results.json.
//
// ctrd does not start from a snapshot (2026-11-30, Node 20.20; three runs of 30 at load 3.7-5): it saved
// 18-34 ms wall / 21-26 ms CPU on `ps` but only 17-27 / 17-20 on `run --rm` (the functions a command runs
// are compiled lazily again, which the code cache spares it: ~10 ms of `run`'s CPU), an empty snapshot
// costs 3-4 ms CPU more than Node's own, and `--version` ~25 more than main.js. The blob must be named on
// node's command line (after `--`), and node fails before any JavaScript runs on a blob it cannot use
// (exit 14 for another Node or other V8 flags, an abort for a damaged one), so only a launcher that is not
// Node could check it first; the package's bin cannot be one: npm starts a bin on POSIX through its
// shebang, and on Windows its shim runs the shebang's program, so one bin for both must be `#!/usr/bin/env
// node` (install-time rewriting, as esbuild does, is skipped by --ignore-scripts and by pnpm's default).
// What would be frozen is listed at the end of the report.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { startContainerd } from "../test/harness/containerd.js";
import { formatMs, median, processCpuMs } from "./measure.js";

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};
const RUNS = Number(option("--runs") ?? 20);
const otherNode = option("--other-node");
const repo = join(import.meta.dirname, "..");
const main = join(repo, "dist/cli/main.js");
const bundle = join(repo, "dist/cli/ctrd.cjs");
/** What the snapshot's build evaluates: `warmUp` in src/cli/program.ts. */
const SNAPSHOT_COMMANDS = ["run", "ps"];

// A default environment has no NODE_EXTRA_CA_CERTS; Node 20 parses that file at start (see bench/startup.ts).
const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
const defaultEnv: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" };
delete defaultEnv.NODE_EXTRA_CA_CERTS;

/**
 * The snapshot's entry: the bundle run as CommonJS in the snapshot builder, whose `require` has only
 * Node's built-ins (ctrd's are all it needs at top level; koffi and the native addons are loaded on
 * first use, with a real require by then), the modules of `commands` evaluated, and a main that runs
 * the command line: with a snapshot, process.argv[1] is the first argument, not a script.
 */
function snapshotEntry(source: string, commands: readonly string[]): string {
  return `"use strict";
const { startupSnapshot } = require("node:v8");
let load = require;
const exported = { exports: {} };
(function (exports, require, module, __filename, __dirname) {
${source}
}).call(exported.exports, exported.exports, (id) => load(id), exported, ${JSON.stringify(bundle)}, ${JSON.stringify(dirname(bundle))});
const ctrd = exported.exports;
${WARM_UP(commands)}
if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(() => {
    load = require("node:module").createRequire(${JSON.stringify(bundle)});
    ctrd.runAndExit(process.argv.slice(1));
  });
}
`;
}

const WARM_UP = (commands: readonly string[]) =>
  `ctrd.warmUp(${JSON.stringify(commands)}).then(() => globalThis.__ctrdWarmedUp?.(), (err) => { process.stderr.write(\`warm-up failed: \${err && err.stack || err}\\n\`); process.exitCode = 1; });`;

/**
 * Run before the entry in a plain node (stack traces do not work in the snapshot builder): notes
 * every read of process state while the modules are evaluated and the warm-up runs, with the
 * functions it came from, and prints them when the warm-up is done. Whatever a module's top level
 * reads so is frozen into a snapshot: the build's value, not the run's.
 */
const AUDIT = `"use strict";
const PRELUDE_LINES = @PRELUDE_LINES@;
Error.stackTraceLimit = 60;
const reads = new Map();
let noting = false;
const note = (what) => {
  if (noting) return;
  noting = true;
  try {
    const holder = {};
    Error.captureStackTrace(holder, note);
    // Frames of the bundle, not of this prelude nor of esbuild's module wrappers.
    const frames = String(holder.stack).split("\\n").slice(1)
      .map((line) => /^\\s*at (?:(.*) \\()?(.*):(\\d+):\\d+\\)?$/.exec(line))
      .filter((m) => m !== null && m[2] === __filename && Number(m[3]) > PRELUDE_LINES)
      .map((m) => m[1] ?? "<top level>")
      .filter((name) => !/^(__init|__require)$/.test(name));
    const key = what + "  <-  " + frames.slice(0, 5).join(" < ");
    reads.set(key, (reads.get(key) ?? 0) + 1);
  } finally {
    noting = false;
  }
};
const env = process.env;
process.env = new Proxy(env, {
  get: (target, key) => (typeof key === "string" && note("process.env." + key), target[key]),
  has: (target, key) => (note("process.env has " + String(key)), key in target),
  ownKeys: (target) => (note("process.env keys"), Reflect.ownKeys(target)),
});
const wrap = (object, label, names) => {
  for (const name of names) {
    const own = Object.getOwnPropertyDescriptor(object, name);
    const original = object[name];
    if (typeof original !== "function" || (own && !own.configurable)) continue;
    const wrapped = Object.assign(function (...args) {
      const shown = args.map((a) => (typeof a === "string" ? a : typeof a)).join(", ");
      note(label + "." + name + "(" + shown.slice(0, 80) + ")");
      return original.apply(this, args);
    }, original);
    Object.defineProperty(object, name, { value: wrapped, configurable: true, writable: true, enumerable: own ? own.enumerable : false });
  }
};
wrap(process, "process", ["cwd", "umask", "getuid", "geteuid", "getgid", "getegid", "hrtime", "uptime", "cpuUsage", "memoryUsage"]);
wrap(process.hrtime, "process.hrtime", ["bigint"]);
wrap(Date, "Date", ["now"]);
wrap(Math, "Math", ["random"]);
wrap(require("node:os"), "os", ["tmpdir", "homedir", "hostname", "userInfo", "cpus", "networkInterfaces", "release", "availableParallelism", "totalmem", "freemem", "uptime", "loadavg"]);
wrap(require("node:crypto"), "crypto", ["randomBytes", "randomUUID", "getRandomValues", "randomInt"]);
const fs = require("node:fs");
wrap(fs, "fs", Object.keys(fs).filter((name) => name.endsWith("Sync")));
for (const name of ["pid", "ppid", "argv", "execPath", "execArgv", "title", "stdout", "stderr", "stdin"]) {
  const own = Object.getOwnPropertyDescriptor(process, name);
  if (!own || !own.configurable) continue;
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: own.enumerable,
    get() { note("process." + name); return own.get ? own.get.call(process) : own.value; },
    set(value) { if (own.set) own.set.call(process, value); else own.value = value; },
  });
}
const RealDate = Date;
globalThis.Date = new Proxy(RealDate, {
  construct: (target, args, newTarget) => (args.length === 0 && note("new Date()"), Reflect.construct(target, args, newTarget)),
});
globalThis.__ctrdWarmedUp = () => {
  noting = true;
  process.stdout.write(JSON.stringify([...reads].sort()));
};
`;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  cpuMs: number;
}

function node(args: string[], env: NodeJS.ProcessEnv = defaultEnv, execPath = process.execPath): Run {
  const cpu0 = processCpuMs("self", true);
  const t0 = performance.now();
  // In the temp dir: a node that aborts on a damaged blob may leave a core file where it ran.
  const result = spawnSync(execPath, args, { env, encoding: "utf8", cwd: dir });
  const ms = performance.now() - t0;
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    ms,
    cpuMs: processCpuMs("self", true) - cpu0,
  };
}

function buildSnapshot(entryFile: string, blob: string, execPath = process.execPath) {
  const t0 = performance.now();
  const built = node(["--snapshot-blob", blob, "--build-snapshot", entryFile], defaultEnv, execPath);
  if (built.status !== 0) throw new Error(`building ${blob} failed (${built.status}): ${built.stderr}`);
  // Node 20 says which built-ins it has not verified in a snapshot.
  const unverified = [...built.stderr.matchAll(/built-in module "([^"]+)"/g)].map((m) => m[1] ?? "");
  return { ms: performance.now() - t0, bytes: statSync(blob).size, unverified };
}

/** How node ends with a blob it cannot use: its status (or signal) and its first line on stderr. */
function outcome(run: Run): string {
  const how = run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
  const line = run.stderr.split("\n").find((l) => l.trim() !== "" && !l.startsWith("#")) ?? "";
  return `${how}: ${line.trim().slice(0, 140)}`;
}

const dir = mkdtempSync(join(tmpdir(), "lcd-snapshot-"));
const containerd = await startContainerd({ prefix: "lcd-snapshot-" });
try {
  const source = readFileSync(bundle, "utf8");
  const entry = join(dir, "entry.cjs");
  writeFileSync(entry, snapshotEntry(source, SNAPSHOT_COMMANDS));
  const blob = join(dir, "ctrd.blob");
  const build = buildSnapshot(entry, blob);
  const emptyEntry = join(dir, "empty.cjs");
  writeFileSync(emptyEntry, 'require("node:v8").startupSnapshot.setDeserializeMainFunction(() => {});\n');
  const emptyBlob = join(dir, "empty.blob");
  const emptyBuild = buildSnapshot(emptyEntry, emptyBlob);

  // What the modules read while the snapshot is built: a plain node runs the same entry, audited.
  const auditFile = join(dir, "audit.cjs");
  const prelude = AUDIT.replace("@PRELUDE_LINES@", String(AUDIT.split("\n").length));
  writeFileSync(auditFile, prelude + snapshotEntry(source, SNAPSHOT_COMMANDS));
  const audit = node([auditFile]);
  if (audit.status !== 0) throw new Error(`audit failed (${audit.status}): ${audit.stderr}`);
  // Paths relative to the repo: the same report from any checkout.
  const reads = (JSON.parse(audit.stdout) as [string, number][]).map(
    ([what, count]) => [what.replaceAll(`${repo}/`, ""), count] as const,
  );

  // A blob node cannot use: it fails before any JavaScript runs, so ctrd itself cannot fall back.
  const notABlob = join(dir, "not-a-blob");
  writeFileSync(notABlob, "ctrd\n".repeat(100));
  const failures: Record<string, string> = {
    "missing blob": outcome(node(["--snapshot-blob", join(dir, "missing.blob"), "--", "--version"])),
    "other V8 flags (NODE_OPTIONS=--max-old-space-size=512)": outcome(
      node(["--snapshot-blob", blob, "--", "--version"], {
        ...defaultEnv,
        NODE_OPTIONS: "--max-old-space-size=512",
      }),
    ),
    "not a blob": outcome(node(["--snapshot-blob", notABlob, "--", "--version"])),
    "ctrd's arguments without `--` before them": outcome(
      node(["--snapshot-blob", blob, "--containerd", containerd.address, "ps"]),
    ),
  };
  if (otherNode) {
    const foreign = join(dir, "foreign.blob");
    buildSnapshot(emptyEntry, foreign, otherNode);
    const version = spawnSync(otherNode, ["--version"], { encoding: "utf8" }).stdout.trim();
    failures[`made by Node ${version}`] = outcome(node(["--snapshot-blob", foreign, "--", "x"]));
  }

  const flags = [
    "--containerd",
    containerd.address,
    "--state",
    containerd.stateDir,
    "--namespace",
    "snapshot",
  ];
  const runArgs = [
    ...flags,
    "run",
    "--rm",
    "--network",
    "none",
    "--rootfs",
    containerd.rootfs,
    "--",
    "/bin/true",
  ];
  const snapshot = (args: string[]) => ["--snapshot-blob", blob, "--", ...args];
  const subjects: Record<string, { args: string[]; env?: NodeJS.ProcessEnv }> = {
    "node -e 0": { args: ["-e", "0"] },
    "node, empty snapshot": { args: ["--snapshot-blob", emptyBlob, "--", "x"] },
    "ctrd --version, code cache": { args: [main, "--version"] },
    "ctrd --version, snapshot": { args: snapshot(["--version"]) },
    "ctrd ps, code cache": { args: [main, ...flags, "ps"] },
    "ctrd ps, snapshot": { args: snapshot([...flags, "ps"]) },
    "ctrd run --rm, code cache": { args: [main, ...runArgs] },
    "ctrd run --rm, snapshot": { args: snapshot(runArgs) },
  };
  if (extraCaCerts) {
    const withCerts = { ...defaultEnv, NODE_EXTRA_CA_CERTS: extraCaCerts };
    subjects["ctrd ps, code cache, extra CA certs"] = { args: [main, ...flags, "ps"], env: withCerts };
    subjects["ctrd ps, snapshot, extra CA certs"] = { args: snapshot([...flags, "ps"]), env: withCerts };
    subjects["ctrd run --rm, code cache, extra CA certs"] = { args: [main, ...runArgs], env: withCerts };
    subjects["ctrd run --rm, snapshot, extra CA certs"] = { args: snapshot(runArgs), env: withCerts };
  }
  const once = (name: string): Run => {
    const { args, env } = subjects[name]!;
    const run = node(args, env);
    if (run.status !== 0) throw new Error(`${name} failed (${run.status}): ${run.stderr}`);
    return run;
  };
  // Warm the page cache and the code cache (saved again by a command's first run), and check that
  // both say the same.
  for (const name of Object.keys(subjects)) once(name);
  const ps = [once("ctrd ps, code cache").stdout, once("ctrd ps, snapshot").stdout];
  if (ps[0] !== ps[1]) throw new Error(`ctrd ps says otherwise from the snapshot:\n${ps[0]}\n---\n${ps[1]}`);

  const wall = new Map<string, number[]>(Object.keys(subjects).map((name) => [name, []]));
  const cpu = new Map<string, number[]>(Object.keys(subjects).map((name) => [name, []]));
  const loadavgAtStart = loadavg();
  for (let run = 0; run < RUNS; run++) {
    for (const name of Object.keys(subjects)) {
      const { ms, cpuMs } = once(name);
      wall.get(name)!.push(ms);
      cpu.get(name)!.push(cpuMs);
    }
  }
  const loadavgAtEnd = loadavg();
  const medians = Object.fromEntries([...wall].map(([name, values]) => [name, median(values)]));
  // The kernel counts children's CPU in 10 ms ticks: a mean over the runs, not a median.
  const cpuMeans = Object.fromEntries(
    [...cpu].map(([name, values]) => [name, values.reduce((a, b) => a + b, 0) / values.length]),
  );
  const results = {
    date: new Date().toISOString(),
    node: process.version,
    runs: RUNS,
    loadavgAtStart,
    loadavgAtEnd,
    snapshotCommands: SNAPSHOT_COMMANDS,
    build: { ...build, emptyBytes: emptyBuild.bytes },
    medians,
    cpuMeans,
    failures,
    reads: Object.fromEntries(reads),
  };
  writeFileSync(
    join(import.meta.dirname, "startup-snapshot-results.json"),
    `${JSON.stringify(results, null, 2)}\n`,
  );

  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  const saved = (what: string, suffix = "") => {
    const base = `${what}, code cache${suffix}`;
    const snap = `${what}, snapshot${suffix}`;
    return `| ${what}${suffix} | ${formatMs(medians[base]!)} / ${formatMs(cpuMeans[base]!)} | ${formatMs(medians[snap]!)} / ${formatMs(cpuMeans[snap]!)} | ${formatMs(medians[base]! - medians[snap]!)} / ${formatMs(cpuMeans[base]! - cpuMeans[snap]!)} |`;
  };
  const report = [
    `${results.date}, Node ${process.version}; ${RUNS} interleaved runs each, wall-clock medians / mean CPU (user + system) ms; load average ${load(loadavgAtStart)} at the start, ${load(loadavgAtEnd)} at the end.`,
    `Snapshot of dist/cli/ctrd.cjs with ${SNAPSHOT_COMMANDS.join(" and ")}'s modules evaluated: ${(build.bytes / 2 ** 20).toFixed(1)} MiB (an empty one: ${(emptyBuild.bytes / 2 ** 20).toFixed(1)} MiB), built in ${formatMs(build.ms)}; built-ins Node has not verified in a snapshot: ${build.unverified.join(", ") || "none"}.`,
    "",
    "| command | code cache (today) | snapshot | saved |",
    "|---|---|---|---|",
    `| node -e 0 / an empty snapshot | ${formatMs(medians["node -e 0"]!)} / ${formatMs(cpuMeans["node -e 0"]!)} | ${formatMs(medians["node, empty snapshot"]!)} / ${formatMs(cpuMeans["node, empty snapshot"]!)} | ${formatMs(medians["node -e 0"]! - medians["node, empty snapshot"]!)} / ${formatMs(cpuMeans["node -e 0"]! - cpuMeans["node, empty snapshot"]!)} |`,
    saved("ctrd --version"),
    saved("ctrd ps"),
    saved("ctrd run --rm"),
    ...(extraCaCerts
      ? [saved("ctrd ps", ", extra CA certs"), saved("ctrd run --rm", ", extra CA certs")]
      : []),
    "",
    "A blob node cannot use (it fails before any JavaScript runs):",
    ...Object.entries(failures).map(([what, how]) => `- ${what}: ${how}`),
    "",
    "Process state read while the snapshot is built (frozen into it; count, what, where from):",
    ...reads.map(([what, count]) => `- ${count}× ${what}`),
  ].join("\n");
  process.stdout.write(`${report}\n`);
} finally {
  await containerd.stop();
  removeCgroupParents("/snapshot/any", "/snapshot");
  rmSync(dir, { recursive: true, force: true });
}
