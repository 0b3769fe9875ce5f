// `node --import tsx bench/syscalls.ts [N]`: the system calls one null-IO lifecycle (bench:peer's) costs
// the client, the library against containerd's Go client, counted by `strace -c -f` attached to each
// process for N lifecycles (after a warm-up), per lifecycle.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { removeCgroupParents } from "../src/libcontainerd/remote/cgroup-parents.js";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { startContainerd } from "../test/harness/containerd.js";
import { GoClient } from "./go-client.js";
import { runToEnd } from "./measure.js";

const n = Number(process.argv[2] ?? 200);
const ctrd = await startContainerd({ prefix: "lcd-sys-" });
let go: GoClient | undefined;
const client = new RemoteClient({ address: ctrd.address, namespace: "sys", stateDir: ctrd.stateDir });
let counter = 0;
const one = async () => {
  const id = `sys-${++counter}`;
  const spec = defaultLinuxSpec({ args: ["/bin/true"], rootfs: ctrd.rootfs, cgroupsPath: `/sys/${id}` });
  await runToEnd(await client.newContainer(id, spec));
};
async function traced(pid: number, file: string, run: () => Promise<void>): Promise<string> {
  const strace = spawn("strace", ["-c", "-f", "-o", file, "-p", String(pid)], { stdio: "ignore" });
  await sleep(500);
  await run();
  const ended = new Promise((resolve) => strace.once("exit", resolve));
  strace.kill("SIGINT");
  await ended;
  return readFileSync(file, "utf8");
}
function perLifecycle(summary: string): string {
  const rows: string[] = [];
  for (const line of summary.split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
    if (m) rows.push(`${(Number(m[1]) / n).toFixed(2).padStart(8)}  ${m[2]}`);
  }
  return rows.join("\n");
}
try {
  go = await GoClient.start("/tmp/lifecycle-go/build", ctrd.address, "sys-go", ctrd.rootfs);
  for (let i = 0; i < 30; i++) {
    await go.run("one");
    await one();
  }
  const goPid = go.pid;
  const goSummary = await traced(goPid, "/tmp/sys/go.txt", async () => {
    for (let i = 0; i < n; i++) await go!.run("one");
  });
  const libSummary = await traced(process.pid, "/tmp/sys/lib.txt", async () => {
    for (let i = 0; i < n; i++) await one();
  });
  console.log(
    `system calls per lifecycle, ${n} lifecycles\n--- Go client\n${perLifecycle(goSummary)}\n--- library\n${perLifecycle(libSummary)}`,
  );
} finally {
  go?.close();
  await client.close();
  await ctrd.stop();
  // The Go client leaves its namespace's cgroup parent, as containerd's clients do.
  removeCgroupParents("/sys-go/any", "/sys-go");
}
