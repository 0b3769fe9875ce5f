/**
 * client.run() with the services beside the backends: an image from the local registry (pulled when
 * missing, its Cmd/Env/WorkingDir used, the snapshot removed with the container) and a CNI network
 * (attached before, detached after).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createClient, type LibcontainerdClient } from "../../src/libcontainerd/factory.js";
import type { NetworkManager } from "../../src/network/index.js";
import { managerIn, mountsUnder, uniqueBridge, uniqueSubnet } from "../harness/network.js";
import { useRemote } from "../harness/remote.js";
import { publish, useRegistry } from "../images/helpers.js";

const fx = useRemote("runsvc");
const reg = useRegistry();
let client: LibcontainerdClient;
let dir: string;
let manager: NetworkManager;

beforeAll(async () => {
  client = await createClient({
    containerdAddress: fx.ctrd.address,
    namespace: fx.namespace,
    stateDir: fx.ctrd.stateDir,
  });
  dir = mkdtempSync(join(tmpdir(), "run-net-"));
  manager = managerIn(dir, { defaultNetwork: { bridge: uniqueBridge(), subnet: uniqueSubnet() } });
});

afterAll(async () => {
  for (const network of (await manager?.listNetworks().catch(() => [])) ?? [])
    await manager.removeNetwork(network.name).catch(() => {});
  for (const mountPoint of dir ? mountsUnder(dir) : []) spawnSync("umount", ["-l", mountPoint]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  await client?.close();
});

async function snapshotsLeft(): Promise<number> {
  const out = spawnSync("ctr", ["-a", fx.ctrd.address, "-n", fx.namespace, "snapshots", "ls", "-q"], {
    encoding: "utf8",
  });
  return out.stdout.split("\n").filter((line) => line.startsWith("run-")).length;
}

test("image: pulled when missing, its process and env, args replace Cmd, nothing left", async () => {
  const { ref } = await publish(reg, "runme:1");
  const first = await client.run({ image: ref, env: { GREETING: "overridden" } });
  expect(first.exitCode).toBe(0);
  expect(first.stdout).toContain("hello from the image");
  expect(first.stdout).toContain("greeting=overridden cwd=/www id=0:0");
  const second = await client.run({
    image: ref,
    args: ["sh", "-c", "cat /www/index.html; pwd"],
    pull: "never",
  });
  expect(second).toMatchObject({ exitCode: 0, stdout: "hello from the image\n/www\n" });
  await expect(client.run({ image: `${reg.registry.host}/absent:1`, pull: "never" })).rejects.toMatchObject({
    code: "not_found",
  });
  expect(await client.listContainers()).toEqual([]);
  // ctr comes with Debian's containerd package, which the harness requires.
  expect(await snapshotsLeft()).toBe(0);
});

test("network: a named network gives the container eth0; the attachment is gone afterwards", async () => {
  const result = await client.run({
    args: ["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort"],
    rootfs: fx.ctrd.rootfs,
    network: "bridge",
    networkManager: manager,
  });
  expect(result).toMatchObject({ exitCode: 0, stdout: "eth0\nlo\n" });
  const records = join(dir, "net-state", "attachments", fx.namespace);
  expect(existsSync(records) ? readdirSync(records) : []).toEqual([]);
  expect(await client.listContainers()).toEqual([]);
});

test("an abort at any point of a run with an image and a published port: CanceledError, nothing left", async () => {
  const { ref } = await publish(reg, "abortable:1");
  await client.images.pull(ref);
  const records = join(dir, "net-state", "attachments", fx.namespace);
  const netnsDirs = join(dir, "net-state", "containers", fx.namespace);
  // From before the image is looked at to after the process started, in steps of a few ms: the abort
  // lands in each step once (pull check, snapshot, iptables, each CNI plugin, create, start, wait).
  for (let delayMs = 0; delayMs < 160; delayMs += 4) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), delayMs);
    const outcome = await client
      .run({
        image: ref,
        args: ["sleep", "10"],
        network: "bridge",
        ports: ["127.0.0.1::80"],
        networkManager: manager,
        signal: controller.signal,
      })
      .catch((err: unknown) => err);
    clearTimeout(timer);
    expect(outcome, `aborted after ${delayMs} ms`).toMatchObject({ code: "canceled" });
  }
  expect(await client.listContainers()).toEqual([]);
  expect(await snapshotsLeft()).toBe(0);
  expect(existsSync(records) ? readdirSync(records) : []).toEqual([]);
  expect(existsSync(netnsDirs) ? readdirSync(netnsDirs) : []).toEqual([]);
  expect(mountsUnder(dir)).toEqual([]);
});
