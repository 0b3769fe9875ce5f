// `node --import tsx bench/resident-floor.ts [--rounds N] [--warmup N]`: could a resident ctrd (a warm
// process that `ctrd run` hands its command to) make `ctrd run --rm -- /bin/true` as fast as
// `ctr run --rm`? It measures the best such a design could do, without building it: this process plays
// the resident server (one warm library client, an `N`-lifecycle warm-up; a unix socket; each connection
// runs the bench:peer lifecycle and answers its exit code) and the smallest possible client is a Node
// process that connects, sends a line and exits with the answer; no argument parsing, no stdio
// forwarding, no signals. Interleaved round by round with `ctr run --rm` (a whole Go process), `node -e 0`
// (Node's own start) and the same lifecycle in this process. If the floor is above ctr, no resident
// design built on a Node client meets the target.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { startContainerd } from "../test/harness/containerd.js";
import { formatMs, formatRatio, median } from "./measure.js";
import { BenchSubjects, NAMESPACE } from "./subjects.js";

const argValue = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const rounds = argValue("--rounds", 20);
const warmup = argValue("--warmup", 300);

/** A whole process, timed from spawn to exit, without blocking this process (the server) meanwhile. */
function timeProcess(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], env: defaultEnv });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${command} ${args.join(" ")}: exit ${code}`)),
    );
  });
}
// As bench:startup: NODE_EXTRA_CA_CERTS makes Node parse the whole file at its start.
const defaultEnv = { ...process.env };
delete defaultEnv.NODE_EXTRA_CA_CERTS;

const ctrd = await startContainerd({ prefix: "lcd-resident-" });
const subjects = new BenchSubjects(ctrd);
const socket = join(ctrd.dir, "resident.sock");
const server = createServer((connection) => {
  connection.once("data", () => {
    subjects.libraryLifecycle("runc-v2").then(
      () => connection.end("0"),
      (err: unknown) => {
        process.stderr.write(`resident lifecycle failed: ${String(err)}\n`);
        connection.end("1");
      },
    );
  });
});
await new Promise<void>((resolve) => server.listen(socket, resolve));
const client = join(ctrd.dir, "resident-client.cjs");
writeFileSync(
  client,
  `const s = require("node:net").connect(${JSON.stringify(socket)});\n` +
    `s.on("connect", () => s.write("run\\n"));\n` +
    `let answer = "";\ns.on("data", (d) => { answer += d; });\n` +
    `s.on("end", () => process.exit(Number(answer)));\n`,
);
try {
  for (let i = 0; i < warmup; i++) await subjects.libraryLifecycle("runc-v2");
  const subjectsByName: Record<string, () => Promise<number>> = {
    "ctr run --rm /bin/true": () => subjects.ctrLifecycle("runc-v2"),
    "resident: the smallest Node client + a warm server's lifecycle": () => timeProcess("node", [client]),
    "node -e 0": () => timeProcess("node", ["-e", "0"]),
    "the lifecycle alone, in the warm process": () => subjects.libraryLifecycle("runc-v2"),
  };
  const samples = new Map(Object.keys(subjectsByName).map((name) => [name, [] as number[]]));
  const loadStart = loadavg();
  for (let round = 0; round < rounds; round++)
    for (const [name, run] of Object.entries(subjectsByName)) samples.get(name)!.push(await run());
  const loadEnd = loadavg();
  const ctr = median(samples.get("ctr run --rm /bin/true")!);
  console.log(
    `${rounds} interleaved rounds after ${warmup} warm-up lifecycles; load ${loadStart.map((l) => l.toFixed(2)).join(" ")} → ${loadEnd.map((l) => l.toFixed(2)).join(" ")}`,
  );
  console.log("| subject | ms (median) | ratio to ctr |\n|---|---|---|");
  for (const [name, values] of samples)
    console.log(`| ${name} | ${formatMs(median(values))} | ${formatRatio(median(values) / ctr)} |`);
} finally {
  server.close();
  await subjects.client.close();
  await ctrd.stop();
  removeCgroupParents(`/${NAMESPACE}/any`, `/${NAMESPACE}`);
}
