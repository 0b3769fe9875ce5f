// createClient on Linux without an address: a managed containerd, adopted by the next client on the
// same dirs, and (with leaveRunning) kept with its containers across a client restart.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  type CreateClientOptions,
  createClient,
  type LibcontainerdClient,
} from "../../src/libcontainerd/factory.js";
import { findContainerdProcesses, isProcessAlive } from "../../src/libcontainerd/supervisor/process-info.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { requireBinary } from "../harness/binaries.js";
import { buildBusyboxRootfs } from "../harness/rootfs.js";
import { type ScratchDir, scratchDir } from "../harness/temp-dirs.js";

requireBinary("containerd");

let scratch: ScratchDir;
let rootfs: string;
const clients: LibcontainerdClient[] = [];

beforeAll(() => {
  scratch = scratchDir("lcd-fac-");
  rootfs = buildBusyboxRootfs(join(scratch.dir, "rootfs"));
});

afterAll(async () => {
  try {
    await Promise.allSettled(clients.map((c) => c.close()));
  } finally {
    await scratch?.cleanup();
  }
});

function options(extra: Partial<CreateClientOptions> = {}): CreateClientOptions {
  return {
    platform: { os: "linux" },
    namespace: "factory",
    root: join(scratch.dir, "root"),
    stateDir: join(scratch.dir, "state"),
    ...extra,
    managedContainerd: { healthIntervalMs: 200, shutdownTimeoutMs: 5_000, ...extra.managedContainerd },
  };
}

async function client(extra: Partial<CreateClientOptions> = {}): Promise<LibcontainerdClient> {
  const c = await createClient(options(extra));
  clients.push(c);
  return c;
}

test("no address on Linux: a managed containerd, adopted by a second createClient, one process", async () => {
  const configFile = join(scratch.dir, "state", "containerd.toml");
  const first = await client();
  expect(first.backend).toBe("remote");
  expect(first.choice).toMatchObject({ backend: "remote", containerd: "managed" });
  expect(first.choice.reason).toMatch(/managed containerd/);
  const supervisor = first.managedContainerd!;
  expect(supervisor.adopted).toBe(false);
  expect((await first.version()).version).toMatch(/^1\.6\./);

  const second = await client({ managedContainerd: { leaveRunning: true } });
  expect(second.managedContainerd!.adopted).toBe(true);
  expect(second.managedContainerd!.pid).toBe(supervisor.pid);
  expect(findContainerdProcesses(configFile)).toEqual([supervisor.pid]);
  expect((await second.version()).version).toMatch(/^1\.6\./);

  // The second leaves containerd running, so the first keeps working on it.
  await second.close();
  expect(isProcessAlive(supervisor.pid)).toBe(true);
  expect((await first.version()).version).toMatch(/^1\.6\./);

  const pid = supervisor.pid;
  await first.close();
  expect(isProcessAlive(pid)).toBe(false);
  expect(findContainerdProcesses(configFile)).toEqual([]);
  for (const file of ["containerd.pid", "containerd.sock"]) {
    expect(existsSync(join(scratch.dir, "state", file)), file).toBe(false);
  }
});

test("a client that closes stops the containerd it shares, and the other client's supervisor starts it again", async () => {
  const longLived = await client();
  const supervisor = longLived.managedContainerd!;
  const restarted = new Promise<number>((resolve) => supervisor.once("restarted", (e) => resolve(e.pid)));
  const script = await client();
  expect(script.managedContainerd!.adopted).toBe(true);
  // Closing without leaveRunning stops containerd; only `ctrd daemon stop` means it to stay stopped.
  await script.close();
  expect(await restarted).not.toBe(script.managedContainerd!.pid);
  expect((await longLived.version()).version).toMatch(/^1\.6\./);
  await longLived.close();
});

test("leaveRunning keeps containerd and its containers across a client restart", async () => {
  const before = await client({ managedContainerd: { leaveRunning: true } });
  const containerdPid = before.managedContainerd!.pid;
  const container = await before.newContainer(
    "survivor",
    defaultLinuxSpec({ args: ["sleep", "600"], rootfs, cgroupsPath: `${scratch.cgroupParent}/survivor` }),
  );
  const task = await container.newTask();
  await task.start();
  const containerPid = task.pid;
  await before.close();
  expect(isProcessAlive(containerdPid)).toBe(true);
  expect(isProcessAlive(containerPid)).toBe(true);

  const after = await client();
  expect(after.managedContainerd!.adopted).toBe(true);
  expect(after.managedContainerd!.pid).toBe(containerdPid);
  const reloaded = await (await after.loadContainer("survivor")).task();
  expect(reloaded.pid).toBe(containerPid);
  expect(await reloaded.status()).toBe("running");
  const exited = reloaded.wait();
  await reloaded.kill("SIGKILL");
  expect((await exited).exitCode).toBe(137);
  await reloaded.delete();
  await (await after.loadContainer("survivor")).delete();
  await after.close();
  expect(isProcessAlive(containerdPid)).toBe(false);
});
