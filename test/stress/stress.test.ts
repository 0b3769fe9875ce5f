// The 300 lifecycles at once through a managed createClient(): none fails, containerd is
// never restarted, nothing is left. About 30 s on 2 cores shared with a load average of 27; set
// STRESS_LIFECYCLES for another size.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createClient, type LibcontainerdClient } from "../../src/libcontainerd/factory.js";
import { requireBinary } from "../harness/binaries.js";
import { buildBusyboxRootfs } from "../harness/rootfs.js";
import { processesUnder, type ScratchDir, scratchDir } from "../harness/temp-dirs.js";
import { leftovers, runConcurrentLifecycles } from "./lifecycles.js";

requireBinary("containerd");

const COUNT = Number(process.env.STRESS_LIFECYCLES ?? 300);
const NAMESPACE = "stress";
let scratch: ScratchDir;
let client: LibcontainerdClient;

beforeAll(async () => {
  scratch = scratchDir("lcd-stress-");
  client = await createClient({
    platform: { os: "linux" },
    namespace: NAMESPACE,
    root: join(scratch.dir, "root"),
    stateDir: join(scratch.dir, "state"),
  });
});

afterAll(async () => {
  try {
    await client?.close();
  } finally {
    await scratch?.cleanup();
  }
});

test(`${COUNT} lifecycles at once through a managed containerd: 0 failures, 0 restarts, nothing left`, async () => {
  const containerdPid = client.managedContainerd!.pid;
  const run = await runConcurrentLifecycles(client, {
    count: COUNT,
    rootfs: buildBusyboxRootfs(join(scratch.dir, "rootfs")),
    cgroupParent: scratch.cgroupParent,
  });
  console.log(
    `stress: ${COUNT} lifecycles in ${(run.ms / 1000).toFixed(1)} s, ${run.failures.length} failed, ${run.restarts} restarts, ${run.busyVerdicts} busy verdicts`,
  );
  expect(run.failures.map((f) => `${f.id}: ${String(f.error)}`)).toEqual([]);
  expect(run.restarts).toBe(0);
  expect(client.managedContainerd!.pid).toBe(containerdPid);
  expect(await leftovers(client, join(scratch.dir, "state"), NAMESPACE)).toEqual({
    containers: [],
    fifoDirs: [],
  });
  // Shims exit a moment after their task is deleted; only containerd itself stays.
  for (let i = 0; i < 100 && processesUnder(scratch.dir).length > 1; i++) await sleep(100);
  expect(processesUnder(scratch.dir)).toEqual([containerdPid]);
}, 600_000);
