// `node --import tsx bench/startup-modules.ts [--runs N] [--all] [-- ctrd args…]`: which modules of the built
// ctrd (dist/cli/ctrd.cjs) a command evaluates, and what each one's top level costs. Runs a copy of
// the bundle whose esbuild module wrappers (__esm, __commonJS) time every module's initialisation,
// on a containerd of its own, and prints them by self CPU time (process.cpuUsage around the module's
// own top level, its imports' excluded; the median of N runs, 5 by default), plus when the bundle started and when the command
// ended (ms since the process began, medians).
// The copy runs as the built ctrd does, from its bin, with a code cache of its own saved by the
// warm-up and a first run of the command (src/cli/code-cache.ts). Without args: `ps`; ROOTFS stands
// for the test rootfs.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startContainerd } from "../test/harness/containerd.js";
import { median } from "./measure.js";

const argv = process.argv.slice(2);
const dashDash = argv.indexOf("--");
const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
const ctrdArgs = dashDash >= 0 ? argv.slice(dashDash + 1) : ["ps"];
const repo = join(import.meta.dirname, "..");
const runsAt = own.indexOf("--runs");
const runs = runsAt >= 0 ? Number(own[runsAt + 1]) : 5;

const TIMED_WRAPPERS = `
var __ctrdTrace = [], __ctrdStack = [];
process.on("exit", () => {
  const end = performance.now();
  process.stderr.write("@@modules " + JSON.stringify({ start: __ctrdStart, end, modules: __ctrdTrace }) + "\\n");
});
var __ctrdStart = performance.now();
var __ctrdCpuMs = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
var __ctrdTimed = (name, run) => {
  const t0 = __ctrdCpuMs();
  __ctrdStack.push(0);
  try {
    return run();
  } finally {
    const total = __ctrdCpuMs() - t0;
    const children = __ctrdStack.pop();
    if (__ctrdStack.length > 0) __ctrdStack[__ctrdStack.length - 1] += total;
    __ctrdTrace.push([name, total, total - children]);
  }
};
var __esm = (fn, res, err) => function __init() {
  if (err) throw err[0];
  if (!fn) return res;
  const name = Object.getOwnPropertyNames(fn)[0];
  try {
    return __ctrdTimed(name, () => (res = (0, fn[name])(fn = 0), res));
  } catch (e) {
    throw err = [e], e;
  }
};
var __commonJS = (cb, mod) => function __require() {
  if (mod) return mod.exports;
  const name = Object.getOwnPropertyNames(cb)[0];
  try {
    return __ctrdTimed(name, () => ((0, cb[name])((mod = { exports: {} }).exports, mod), mod.exports));
  } catch (e) {
    throw mod = 0, e;
  }
};
`;

const bundle = readFileSync(join(repo, "dist/cli/ctrd.cjs"), "utf8");
// esbuild's helpers come in this order, minified or not.
const esm = /var __esm ?=[\s\S]*?(?=var __commonJS ?=)/;
const commonJs = /var __commonJS ?=[\s\S]*?(?=var __export ?=)/;
if (!esm.test(bundle) || !commonJs.test(bundle))
  throw new Error("esbuild's __esm/__commonJS not found in ctrd.cjs");
const timed = bundle.replace(esm, "").replace(commonJs, TIMED_WRAPPERS);

const containerd = await startContainerd({ prefix: "lcd-startmod-" });
const dir = mkdtempSync(join(tmpdir(), "lcd-startmod-"));
let report = "";
try {
  // Beside a package.json link, so that packagePath() finds native/ from the copy.
  symlinkSync(join(repo, "package.json"), join(dir, "package.json"));
  symlinkSync(join(repo, "native"), join(dir, "native"));
  mkdirSync(join(dir, "cli"));
  const file = join(dir, "cli/ctrd.cjs");
  writeFileSync(file, timed);
  const args = [
    "--containerd",
    containerd.address,
    "--state",
    containerd.stateDir,
    "--namespace",
    "startmod",
    ...ctrdArgs.map((arg) => (arg === "ROOTFS" ? containerd.rootfs : arg)),
  ];
  // Started as the built ctrd is: its bin (main.js) and a code cache of the copy, from the warm-up
  // (as scripts/build.js) and then from a first run of the command (as code-cache.ts saves it).
  for (const name of ["main.js", "package.json"])
    copyFileSync(join(repo, "dist/cli", name), join(dir, "cli", name));
  const main = join(dir, "cli/main.js");
  const warm = spawnSync(process.execPath, [main], { env: { ...process.env, CTRD_WRITE_CODE_CACHE: "1" } });
  if (warm.status !== 0) throw new Error(`warm-up failed: ${warm.stderr}`);
  const first = spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });
  if (first.status !== 0) throw new Error(`ctrd failed (${first.status}): ${first.stderr}`);
  const starts: number[] = [];
  const ends: number[] = [];
  const selfMs = new Map<string, number[]>();
  for (let run = 0; run < runs; run++) {
    const result = spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });
    const line = result.stderr.split("\n").find((l) => l.startsWith("@@modules "));
    if (result.status !== 0 || !line) throw new Error(`ctrd failed (${result.status}): ${result.stderr}`);
    const { start, end, modules } = JSON.parse(line.slice("@@modules ".length)) as {
      start: number;
      end: number;
      modules: [string, number, number][];
    };
    starts.push(start);
    ends.push(end);
    for (const [name, , self] of modules) selfMs.set(name, [...(selfMs.get(name) ?? []), self]);
  }
  const modules = [...selfMs].map(([name, values]) => [name, median(values)] as const);
  const sum = modules.reduce((s, [, self]) => s + self, 0);
  const shown = own.includes("--all") ? modules : modules.filter(([, self]) => self >= 0.2);
  report = [
    `ctrd ${ctrdArgs.join(" ")}: bundle started at ${median(starts).toFixed(1)} ms, command ended at ${median(ends).toFixed(1)} ms; ${modules.length} modules evaluated, ${sum.toFixed(1)} ms CPU in top-level code (medians of ${runs} runs)`,
    ...shown.sort((a, b) => b[1] - a[1]).map(([name, self]) => `${self.toFixed(2).padStart(7)}  ${name}`),
  ].join("\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
  await containerd.stop();
}
process.stdout.write(`${report}\n`);
