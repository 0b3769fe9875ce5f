// `node --import tsx bench/network-profile.ts [--cycles N] [--ports] [--count]`: where a CNI bridge
// attachment's time and CPU go, without containerd: N attach + detach cycles of the network module
// on a bridge of its own (and one published port with --ports). Prints per cycle: attach and detach
// wall time (medians), this process's CPU (user, system), its minor page faults, and the CPU of the
// programs it ran and waited for (plugins, iptables). With --count it traces itself with strace
// (execve and clone, following children) and prints how many processes each cycle started, by
// program and by who started them: this process, or the plugins (iptables, host-local). With
// --by-plugin it then runs the same chain by hand, one step at a time, and prints each step's wall
// time and CPU (the netns steps are this process's system calls; the plugins' include what they ran).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { NetworkManager } from "../src/network/index.js";
import { deleteLink } from "../src/network/links.js";
import { runProgram } from "../src/network/native.js";
import { createNetns, removeNetns } from "../src/network/netns.js";
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

/**
 * The chain by hand, one step after the other (so each step's CPU is its own): netns file, loopback,
 * bridge (+ host-local), portmap, firewall, then the DELs and the netns removal. Per step: wall ms and
 * CPU ms (ours for the netns steps, the plugin's and its children's otherwise), averaged over the cycles.
 */
async function byPlugin(): Promise<string[]> {
  const plugins = "/usr/lib/cni";
  const subnet = uniqueSubnet();
  const bridge = uniqueBridge("nq");
  const conf = (type: string, extra: Record<string, unknown> = {}) => ({
    cniVersion: "1.0.0",
    name: "profile",
    type,
    ...extra,
  });
  const chain = [
    conf("bridge", {
      bridge,
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: "host-local",
        ranges: [[{ subnet }]],
        routes: [{ dst: "0.0.0.0/0" }],
        dataDir: join(dir, "ipam"),
      },
    }),
    ...(ports.length > 0
      ? [
          conf("portmap", {
            capabilities: { portMappings: true },
            snat: true,
            externalSetMarkChain: "CNI-HOSTPORT-SETMARK",
          }),
        ]
      : []),
    conf("firewall", { backend: "iptables" }),
  ];
  const steps = new Map<string, { wall: number; cpu: number }>();
  const timed = async (name: string, work: () => Promise<unknown>) => {
    const u0 = usage();
    const t0 = performance.now();
    await work();
    const t1 = performance.now();
    const u1 = usage();
    const cpu = name.startsWith("netns")
      ? u1.user + u1.system - u0.user - u0.system
      : u1.children - u0.children;
    const step = steps.get(name) ?? { wall: 0, cpu: 0 };
    steps.set(name, { wall: step.wall + (t1 - t0), cpu: step.cpu + cpu });
  };
  const plugin = async (
    command: "ADD" | "DEL",
    config: Record<string, unknown>,
    id: string,
    netns: string,
    ifName: string,
  ) => {
    const env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: netns,
      CNI_IFNAME: ifName,
      CNI_PATH: plugins,
    };
    const outcome = await runProgram(
      join(plugins, String(config.type)),
      env,
      JSON.stringify(config),
      undefined,
    );
    if (outcome.code !== 0)
      throw new Error(`${String(config.type)} ${command}: ${outcome.stdout} ${outcome.stderr}`);
    return JSON.parse(outcome.stdout || "{}") as Record<string, unknown>;
  };
  for (let i = 0; i <= CYCLES; i++) {
    if (i === 1) steps.clear(); // the first cycle made the bridge: a warm-up
    const id = `byplugin${i}${process.pid}`;
    const netns = join(dir, `netns-${i}`);
    const runtimeConfig = {
      portMappings: [{ hostPort: 20000 + i, containerPort: 80, protocol: "tcp", hostIP: "127.0.0.1" }],
    };
    await timed("netns create", () => createNetns(netns));
    await timed("loopback ADD", () => plugin("ADD", conf("loopback"), id, netns, "lo"));
    let result: Record<string, unknown> | undefined;
    for (const config of chain) {
      const input = {
        ...config,
        ...(result ? { prevResult: result } : {}),
        ...(config.type === "portmap" ? { runtimeConfig } : {}),
      };
      await timed(`${config.type} ADD`, async () => {
        result = await plugin("ADD", input, id, netns, "eth0");
      });
    }
    for (const config of [...chain].reverse()) {
      const input = {
        ...config,
        prevResult: result,
        ...(config.type === "portmap" ? { runtimeConfig } : {}),
      };
      await timed(`${config.type} DEL`, () => plugin("DEL", input, id, netns, "eth0"));
    }
    await timed("netns remove", () => removeNetns(netns));
  }
  await deleteLink(bridge);
  const rows = [...steps].map(
    ([name, step]) =>
      `  ${name.padEnd(14)} ${formatMs(step.wall / CYCLES).padStart(6)} ms wall ${formatMs(step.cpu / CYCLES).padStart(6)} ms CPU`,
  );
  const sum = (pick: (step: { wall: number; cpu: number }) => number) =>
    formatMs([...steps.values()].reduce((total, step) => total + pick(step), 0) / CYCLES);
  return [
    "  the chain by hand, step by step (per cycle):",
    ...rows,
    `  ${"all".padEnd(14)} ${sum((step) => step.wall).padStart(6)} ms wall ${sum((step) => step.cpu).padStart(6)} ms CPU`,
  ];
}

const counts = tracer ? countProcesses() : undefined;
const stepLines = flag("--by-plugin") ? await byPlugin() : [];
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
lines.push(...stepLines);
process.stdout.write(`${lines.join("\n")}\n`);
