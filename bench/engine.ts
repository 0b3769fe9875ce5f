// `npm run bench:engine [-- --quick]`: `ctrd serve` against Debian's dockerd, both on one private
// containerd, driven by the same docker CLI (/usr/bin/docker): `docker run --rm --network none IMG true`,
// interleaved, medians; then the RSS of each daemon idle and with 100 running containers. Writes
// bench/engine-results.json and the "Engine API" section of BENCHMARKS.md.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { requireBinary } from "../test/harness/binaries.js";
import { startContainerd } from "../test/harness/containerd.js";
import { busyboxLayer, publishImage } from "../test/harness/images.js";
import { startRegistry } from "../test/harness/registry.js";
import {
  formatMs,
  formatRatio,
  mebibytes,
  median,
  processRssBytes,
  runCommand,
  withConcurrency,
} from "./measure.js";
import { replaceSection } from "./report.js";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 5 : 15;
const RUNNING = quick ? 20 : 100;
const DOCKER = "/usr/bin/docker";
const benchDir = import.meta.dirname;
const repoDir = join(benchDir, "..");

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/_ping" }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

async function daemon(name: string, command: string, args: string[], socket: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    log = (log + chunk).slice(-4000);
  });
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${log}`);
    if (await ping(socket)) return child;
    await sleep(50);
  }
  throw new Error(`${name} never answered /_ping: ${log}`);
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(20_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

const containerd = await startContainerd({ prefix: "lcd-engine-bench-" });
const registry = await startRegistry();
let ctrd: ChildProcess | undefined;
let dockerd: ChildProcess | undefined;
try {
  requireBinary("dockerd");
  const { ref: image } = await publishImage(registry, containerd.dir, "busybox:latest", {
    layers: [busyboxLayer()],
  });
  const ctrdSocket = join(containerd.dir, "ctrd.sock");
  const dockerSocket = join(containerd.dir, "docker.sock");
  ctrd = await daemon(
    "ctrd serve",
    join(repoDir, "dist/cli/main.js"),
    [
      "serve",
      "--containerd",
      containerd.address,
      "--state",
      containerd.stateDir,
      "--root",
      join(containerd.dir, "ctrd-root", "containerd"),
      "--namespace",
      "engine-bench",
      "--data-root",
      join(containerd.dir, "engine"),
      "-H",
      `unix://${ctrdSocket}`,
    ],
    ctrdSocket,
  );
  const dockerDir = join(containerd.dir, "dockerd");
  mkdirSync(dockerDir, { recursive: true });
  dockerd = await daemon(
    "dockerd",
    "dockerd",
    [
      "-H",
      `unix://${dockerSocket}`,
      "--containerd",
      containerd.address,
      "--data-root",
      join(dockerDir, "data"),
      "--exec-root",
      join(dockerDir, "exec"),
      "--pidfile",
      join(dockerDir, "pid"),
      "--bridge",
      "none",
      "--iptables=false",
      "--ip-masq=false",
    ],
    dockerSocket,
  );
  const docker = (socket: string, args: string[]) =>
    runCommand(DOCKER, ["-H", `unix://${socket}`, ...args]).then((result) => {
      if (result.code !== 0) throw new Error(`docker ${args.join(" ")} on ${socket}: ${result.stderr}`);
      return result;
    });
  const sockets = { ctrd: ctrdSocket, dockerd: dockerSocket };
  for (const socket of Object.values(sockets)) await docker(socket, ["pull", "-q", image]);
  const runOnce = async (socket: string): Promise<number> => {
    const t0 = performance.now();
    await docker(socket, ["run", "--rm", "--network", "none", image, "true"]);
    return performance.now() - t0;
  };
  for (const socket of Object.values(sockets)) await runOnce(socket); // warm-up
  const times = { ctrd: [] as number[], dockerd: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    times.ctrd.push(await runOnce(sockets.ctrd));
    times.dockerd.push(await runOnce(sockets.dockerd));
  }
  const rss = (child: ChildProcess | undefined): number => processRssBytes(child?.pid ?? 0);
  const idle = { ctrd: rss(ctrd), dockerd: rss(dockerd) };
  for (const socket of Object.values(sockets)) {
    await withConcurrency(RUNNING, 8, async () => {
      await docker(socket, ["run", "-d", "--network", "none", image, "sleep", "600"]);
    });
  }
  await sleep(2000);
  const loaded = { ctrd: rss(ctrd), dockerd: rss(dockerd) };
  for (const socket of Object.values(sockets)) {
    const ids = (await docker(socket, ["ps", "-aq"])).stdout.split("\n").filter(Boolean);
    for (let i = 0; i < ids.length; i += 50) await docker(socket, ["rm", "-f", ...ids.slice(i, i + 50)]);
  }
  const version = (await docker(dockerSocket, ["version", "--format", "{{.Server.Version}}"])).stdout.trim();
  const results = {
    date: new Date().toISOString(),
    rounds: ROUNDS,
    running: RUNNING,
    dockerdVersion: version,
    runMs: { ctrd: times.ctrd, dockerd: times.dockerd },
    medianMs: { ctrd: median(times.ctrd), dockerd: median(times.dockerd) },
    rssBytes: { idle, loaded },
    loadavgAtEnd: loadavg(),
  };
  writeFileSync(join(benchDir, "engine-results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const ratio = results.medianMs.ctrd / results.medianMs.dockerd;
  const section = [
    "## Engine API (`npm run bench:engine`)",
    "",
    `${results.date}; ${ROUNDS} interleaved runs each, medians; load average at the end ${results.loadavgAtEnd.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    `The same docker CLI (Debian's 20.10) against \`ctrd serve\` and against Debian's dockerd ${version}, both on one`,
    "private containerd (dockerd with `--bridge none --iptables=false`); `--network none` on both so that neither",
    "sets up a network. Goal: ctrd serve at most 0.7 of dockerd's latency.",
    "",
    "| `docker run --rm --network none IMG true` | ms | ratio to dockerd |",
    "|---|---|---|",
    `| ctrd serve | ${formatMs(results.medianMs.ctrd)} | ${formatRatio(ratio)} |`,
    `| dockerd | ${formatMs(results.medianMs.dockerd)} | 1.00 |`,
    "",
    `Daemon RSS (the daemon process alone; containerd and shims not counted), MiB:`,
    "",
    `| daemon | idle | ${RUNNING} running containers |`,
    "|---|---|---|",
    `| ctrd serve (node) | ${mebibytes(idle.ctrd)} | ${mebibytes(loaded.ctrd)} |`,
    `| dockerd | ${mebibytes(idle.dockerd)} | ${mebibytes(loaded.dockerd)} |`,
  ].join("\n");
  const path = join(repoDir, "BENCHMARKS.md");
  writeFileSync(path, replaceSection(readFileSync(path, "utf8"), "bench:engine", section));
  process.stderr.write(`${section}\n`);
} finally {
  await stop(ctrd);
  await stop(dockerd);
  await registry.stop();
  await containerd.stop();
}
