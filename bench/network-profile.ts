// `node --import tsx bench/network-profile.ts [--cycles N] [--ports] [--count]`: where a CNI bridge
// attachment's time and CPU go, without containerd: N attach + detach cycles of the network module
// on a bridge of its own (and one published port with --ports). Prints per cycle: attach and detach
// wall time (medians), this process's CPU (user, system), its minor page faults, and the CPU of the
// programs it ran and waited for (plugins, iptables). With --count it traces itself with strace
// (execve and clone, following children) and prints how many processes each cycle started, by
// program and by who started them: this process, or the plugins (iptables, host-local).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { NetworkManager } from "../src/network/index.js";
import { uniqueBridge, uniqueSubnet } from "../test/harness/network.js";
import { formatMs, median } from "./measure.js";

const flag = (name: string) => process.argv.includes(name);
const cyclesAt = process.argv.indexOf("--cycles");
const CYCLES = cyclesAt > 0 ? Number(process.argv[cyclesAt + 1]) : 30;
const ports = flag("--ports") ? ["127.0.0.1::80"] : [];

interface Usage {
  user: number;
  system: number;
  minorFaults: number;
  children: number;
}
function usage(): Usage {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  const cpu = process.cpuUsage();
  // minflt is field 10, cutime and cstime 16 and 17 (1-based, counting pid and comm).
  return {
    user: cpu.user / 1000,
    system: cpu.system / 1000,
    minorFaults: fields[7] ?? 0,
    children: ((fields[13] ?? 0) + (fields[14] ?? 0)) * 10,
  };
}

const dir = mkdtempSync(join(tmpdir(), "bench-netprof-"));
const network = { bridge: uniqueBridge("np"), subnet: uniqueSubnet() };
const manager = new NetworkManager({
  stateDir: join(dir, "state"),
  dataDir: join(dir, "data"),
  defaultNetwork: network,
});
const traceFile = join(dir, "strace.txt");
let tracer: ReturnType<typeof spawn> | undefined;

const attachTimes: number[] = [];
const detachTimes: number[] = [];
let before: Usage | undefined;
let after: Usage | undefined;
try {
  const cycle = async (id: string) => {
    const t0 = performance.now();
    await manager.attach({ namespace: "profile", containerId: id, network: "bridge", ports });
    const t1 = performance.now();
    await manager.detach("profile", id);
    return { attach: t1 - t0, detach: performance.now() - t1 };
  };
  await cycle("warm-up"); // the bridge device and the network's own rules, once
  if (flag("--count")) {
    // -ff: a file per task (traceFile.TID), so that no call is split by another task's.
    tracer = spawn(
      "strace",
      [
        "-ff",
        "-qq",
        "-e",
        "trace=execve,clone,clone3,vfork,fork",
        "-o",
        traceFile,
        "-p",
        String(process.pid),
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 500 && !existsSync(`${traceFile}.${process.pid}`); i++) await sleep(10);
    await sleep(300);
  }
  before = usage();
  for (let i = 0; i < CYCLES; i++) {
    const times = await cycle(`c${i}`);
    attachTimes.push(times.attach);
    detachTimes.push(times.detach);
  }
  after = usage();
} finally {
  if (tracer) {
    tracer.kill("SIGINT");
    await new Promise((resolve) => tracer?.once("exit", resolve));
  }
  await manager.removeNetwork("bridge").catch(() => {});
}

/** From strace -ff: processes started, by program, and whether this process or one of its children started them. */
function countProcesses(): { ours: Map<string, number>; theirs: Map<string, number> } {
  const ourTasks = new Set([process.pid]);
  const parentOf = new Map<number, number>();
  const execs: { tid: number; argv: string[] }[] = [];
  const prefix = `${traceFile.split("/").pop()}.`;
  const files = readdirSync(dir).filter((name) => name.startsWith(prefix));
  // Task ids only grow (short of a wrap): reading in order sees each thread's creator first.
  files.sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
  for (const file of files) {
    const tid = Number(file.slice(prefix.length));
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      const match = /^(clone3?|vfork|fork|execve)\((.*)\) += (\d+)/.exec(line);
      if (!match) continue;
      const [call, args, result] = [match[1], match[2] ?? "", Number(match[3])];
      if (call === "execve")
        execs.push({ tid, argv: [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? "") });
      else if (/CLONE_THREAD/.test(args)) {
        if (ourTasks.has(tid)) ourTasks.add(result);
      } else parentOf.set(result, tid);
    }
  }
  const ours = new Map<string, number>();
  const theirs = new Map<string, number>();
  for (const { tid, argv } of execs) {
    let name = (argv[0] ?? "?").split("/").pop() ?? "?";
    if (/^ip6?tables$/.test(name))
      name += ` ${argv.find((a) => /^-[A-Z]$|^--version$/.test(a)) ?? ""}`.trimEnd();
    const map = ourTasks.has(parentOf.get(tid) ?? -1) ? ours : theirs;
    map.set(name, (map.get(name) ?? 0) + 1);
  }
  return { ours, theirs };
}

const counts = tracer ? countProcesses() : undefined;
rmSync(dir, { recursive: true, force: true });
const per = (value: number) => formatMs(value / CYCLES);
const lines = [
  `network-profile: ${CYCLES} attach+detach cycles on a bridge${ports.length ? " with one published port" : ""}, load average ${(loadavg()[0] ?? 0).toFixed(1)}`,
  `  attach median ${formatMs(median(attachTimes))} ms, detach median ${formatMs(median(detachTimes))} ms`,
];
if (before && after) {
  lines.push(
    `  per cycle: our CPU ${per(after.user - before.user)} ms user + ${per(after.system - before.system)} ms system, ` +
      `${formatMs((after.minorFaults - before.minorFaults) / CYCLES)} minor faults; the programs we ran: ${per(after.children - before.children)} ms CPU`,
  );
}
if (counts) {
  const show = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${formatMs(n / CYCLES)}`)
      .join(", ") || "none";
  const total = (map: Map<string, number>) => formatMs([...map.values()].reduce((a, b) => a + b, 0) / CYCLES);
  lines.push(`  processes per cycle started by this process (${total(counts.ours)}): ${show(counts.ours)}`);
  lines.push(`  started by those (${total(counts.theirs)}): ${show(counts.theirs)}`);
}
process.stdout.write(`${lines.join("\n")}\n`);
