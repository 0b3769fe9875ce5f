/**
 * client.run() on a real containerd + runc: the sandbox scenario (untrusted snippets, each with 64 MB,
 * half a CPU, a pids cap, no network, a read-only rootfs, a timeout and capped output), and the calls
 * that keep a crashed program from leaving litter: replace, force remove, reaping dead owners.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, expect, test, vi } from "vitest";
import { createClient, type LibcontainerdClient } from "../../src/libcontainerd/factory.js";
import { CGROUP_PARENT_LINGER_MS } from "../../src/libcontainerd/remote/cgroup-parents.js";
import { OWNER_PID_LABEL } from "../../src/run/owner.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("run");
let client: LibcontainerdClient;
const MiB = 1024 * 1024;

beforeAll(async () => {
  client = await createClient({
    containerdAddress: fx.ctrd.address,
    namespace: fx.namespace,
    stateDir: fx.ctrd.stateDir,
  });
});
afterAll(async () => {
  await client?.close();
});

/**
 * Nothing left: no container, no FIFO dir, and the namespace's cgroup parent gone once the client
 * has kept it for a next container long enough (CGROUP_PARENT_LINGER_MS).
 */
afterEach(async () => {
  expect(await client.listContainers()).toEqual([]);
  const fifoRoot = join(fx.ctrd.stateDir, fx.namespace);
  expect(existsSync(fifoRoot) ? readdirSync(fifoRoot) : []).toEqual([]);
  await vi.waitFor(
    () =>
      expect(
        existsSync(`/sys/fs/cgroup/memory/${fx.namespace}`) || existsSync(`/sys/fs/cgroup/${fx.namespace}`),
      ).toBe(false),
    { timeout: CGROUP_PARENT_LINGER_MS + 10_000, interval: 100 },
  );
});

const sandbox = {
  resources: { memory: "64m", cpus: 0.5, pids: 32 },
  readonlyRootfs: true,
  network: "none",
  maxOutputBytes: MiB,
  tmpfs: { "/tmp": "size=8m" },
} as const;

test("the sandbox: 20 snippets at once, each contained, each cleaned up", async () => {
  const snippets = [
    { name: "loop", script: "while :; do :; done", timeoutMs: 2000 },
    { name: "oom", script: "tail /dev/zero" },
    { name: "flood", script: "head -c 5000000 /dev/zero | tr '\\0' x" },
    { name: "net", script: "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '" },
    { name: "rofs", script: "touch /oops" },
    { name: "tmp", script: "echo ok > /tmp/f && cat /tmp/f" },
    { name: "forkbomb", script: "for i in $(seq 1 60); do sleep 5 & done 2>&1; wait; echo done" },
    { name: "stdin", script: "tr a-z A-Z", stdin: "shout\n" },
    { name: "exit", script: "echo to-stderr >&2; exit 7" },
  ];
  while (snippets.length < 20)
    snippets.push({ name: `echo${snippets.length}`, script: `echo ${snippets.length}` });
  const results = await Promise.all(
    snippets.map((s) =>
      client.run({
        ...sandbox,
        args: ["sh", "-c", s.script],
        rootfs: fx.ctrd.rootfs,
        timeoutMs: s.timeoutMs ?? 60_000,
        ...(s.stdin !== undefined ? { stdin: s.stdin } : {}),
      }),
    ),
  );
  const by = Object.fromEntries(snippets.map((s, i) => [s.name, results[i]]));
  expect(by.loop).toMatchObject({ timedOut: true, exitCode: 137, oomKilled: false });
  expect(by.oom).toMatchObject({ timedOut: false, exitCode: 137, oomKilled: true });
  expect(by.flood?.stdout.length).toBe(MiB);
  expect(by.flood?.truncated).toEqual({ stdout: true, stderr: false });
  expect(by.flood?.exitCode).toBe(0);
  expect(by.net?.stdout).toBe("lo\n");
  expect(by.rofs?.exitCode).not.toBe(0);
  expect(by.rofs?.stderr).toMatch(/Read-only file system/);
  expect(by.tmp).toMatchObject({ exitCode: 0, stdout: "ok\n" });
  expect(by.forkbomb?.stdout).toContain("can't fork");
  expect(by.stdin).toMatchObject({ exitCode: 0, stdout: "SHOUT\n" });
  expect(by.exit).toMatchObject({ exitCode: 7, stdout: "", stderr: "to-stderr\n", oomKilled: false });
  for (let i = 9; i < 20; i++)
    expect(results[i]).toMatchObject({ exitCode: 0, stdout: `${i}\n`, timedOut: false });
});

test("abort: the container is killed and removed, and run rejects with CanceledError", async () => {
  const abort = new AbortController();
  const running = client.run({
    args: ["sleep", "600"],
    rootfs: fx.ctrd.rootfs,
    signal: abort.signal,
    stdout: "discard",
  });
  // Aborted once the container exists (so the kill path runs, not the early exit).
  await expect.poll(async () => (await client.listContainers()).length).toBe(1);
  abort.abort();
  await expect(running).rejects.toMatchObject({ code: "canceled" });
});

test("init, stdin from a stream, stdout to a stream, and the container carries its owner", async () => {
  const sink = new PassThrough();
  let seen = "";
  sink.on("data", (chunk: Buffer) => {
    seen += chunk.toString();
  });
  const result = await client.run({
    args: ["sh", "-c", "cat; echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ')"],
    rootfs: fx.ctrd.rootfs,
    init: true,
    stdin: Readable.from(["a\n", "b\n"]),
    stdout: sink,
    labels: { app: "t" },
  });
  expect(result).toMatchObject({ exitCode: 0, stdout: "" });
  expect(seen).toMatch(/^a\nb\npid1=\/run\/ctrd-init -- sh -c/);
});

test("a stdin stream that fails midway ends the container's input: what came before it is read", async () => {
  async function* failing() {
    yield "before the failure\n";
    throw new Error("the source broke");
  }
  const result = await client.run({ args: ["cat"], rootfs: fx.ctrd.rootfs, stdin: Readable.from(failing()) });
  expect(result).toMatchObject({ exitCode: 0, stdout: "before the failure\n", timedOut: false });
});

test("a stdout stream that fails midway (its reader went away): the rest is drained, run returns the exit", async () => {
  let writes = 0;
  const sink = new Writable({
    highWaterMark: 1024,
    write(_chunk, _encoding, callback) {
      writes++;
      if (writes === 2) callback(new Error("the reader went away"));
      else setImmediate(callback);
    },
  });
  const result = await client.run({
    args: ["sh", "-c", "head -c 5000000 /dev/zero; echo done >&2"],
    rootfs: fx.ctrd.rootfs,
    stdout: sink,
  });
  expect(result).toMatchObject({ exitCode: 0, stderr: "done\n", timedOut: false });
  expect(sink.destroyed).toBe(true);
});

test("a stdin stream the process never reads is closed once the process is gone (its file not held open)", async () => {
  const file = join(fx.ctrd.dir, `stdin-${process.pid}.bin`);
  writeFileSync(file, Buffer.alloc(4 * MiB));
  const source = createReadStream(file);
  const closed = once(source, "close");
  const result = await client.run({ args: ["true"], rootfs: fx.ctrd.rootfs, stdin: source });
  expect(result.exitCode).toBe(0);
  await closed;
  expect(source.destroyed).toBe(true);
});

test("a stdin stream that waits for more when the process is gone is closed; no listener piles up on a large one", async () => {
  const slow = new PassThrough();
  slow.write("first\n");
  const closed = once(slow, "close");
  const result = await client.run({ args: ["true"], rootfs: fx.ctrd.rootfs, stdin: slow });
  expect(result.exitCode).toBe(0);
  await closed;
  expect(slow.destroyed).toBe(true);

  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on("warning", onWarning);
  try {
    const large = Readable.from(Array.from({ length: 512 }, () => Buffer.alloc(64 * 1024, 0x61)));
    const counted = await client.run({
      args: ["sh", "-c", "wc -c"],
      rootfs: fx.ctrd.rootfs,
      stdin: large,
    });
    expect(String(counted.stdout).trim()).toBe(String(512 * 64 * 1024));
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", onWarning);
  }
  expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
});

test("refusals: a network name without a manager, bad options, a command that does not exist", async () => {
  await expect(
    client.run({ args: ["true"], rootfs: fx.ctrd.rootfs, network: "bridge" }),
  ).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringContaining("networkManager"),
  });
  await expect(client.run({ args: [], rootfs: fx.ctrd.rootfs })).rejects.toMatchObject({
    code: "invalid_argument",
  });
  await expect(
    client.run({ args: ["true"], rootfs: fx.ctrd.rootfs, resources: { memory: "1k" } }),
  ).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringContaining("resources.memory"),
  });
  // A command that does not exist: the typed error, and nothing left behind.
  await expect(client.run({ args: ["no-such-command"], rootfs: fx.ctrd.rootfs })).rejects.toMatchObject({
    code: "not_found",
  });
});

test("replace: a rerun after a crash takes over the id; removeContainer refuses a running one unless forced", async () => {
  const id = uniqueId("svc");
  const first = await client.newContainer(id, fx.spec(["sleep", "600"]));
  await (await first.newTask()).start();
  await expect(client.newContainer(id, fx.spec(["true"]))).rejects.toMatchObject({ code: "already_exists" });
  const second = await client.newContainer(id, fx.spec(["sleep", "600"]), { replace: true });
  const task = await second.newTask();
  await task.start();
  await expect(client.removeContainer(id)).rejects.toMatchObject({ code: "failed_precondition" });
  await client.removeContainer(id, { force: true });
  await expect(client.loadContainer(id)).rejects.toMatchObject({ code: "not_found" });
  await expect(client.removeContainer(id)).rejects.toMatchObject({ code: "not_found" });

  // A stopped container goes without force, task and all.
  const stopped = await client.newContainer(id, fx.spec(["true"]));
  const done = await stopped.newTask();
  const exited = done.wait();
  await done.start();
  await exited;
  await client.removeContainer(id);
});

test("a run whose container is removed with force meanwhile returns the kill's exit (137)", async () => {
  for (let i = 0; i < 3; i++) {
    const id = uniqueId("removed");
    const out = new PassThrough();
    const ready = new Promise((resolve) => out.once("data", resolve));
    const running = client
      .run({ id, args: ["sh", "-c", "echo ready; exec sleep 600"], rootfs: fx.ctrd.rootfs, stdout: out })
      .catch((err: unknown) => err);
    await ready;
    await client.removeContainer(id, { force: true });
    expect(await running).toMatchObject({ id, exitCode: 137, timedOut: false });
  }
});

test("reaping: the containers of an owner that was SIGKILLed are removed; a live owner's are kept", async () => {
  const id = uniqueId("owned");
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/fixtures/owner-client.ts",
      fx.ctrd.address,
      fx.namespace,
      fx.ctrd.stateDir,
      fx.ctrd.rootfs,
      id,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`owner exited ${code} before it was ready`)));
    });
    const [info] = await client.listContainers();
    expect(info?.labels[OWNER_PID_LABEL]).toBe(String(child.pid));
    // The owner lives: nothing to reap.
    expect(await client.reap()).toEqual([]);
    child.kill("SIGKILL");
    await exited;
    expect(await client.reap()).toEqual([id]);
    // Its cgroup parent went with it.
    expect(existsSync(`/sys/fs/cgroup/memory/${fx.namespace}-owned`)).toBe(false);
  } finally {
    child.kill("SIGKILL");
    await exited;
    await client.removeContainer(id, { force: true }).catch(() => {});
  }
});

test("reapOnExit: a client's close() removes its own containers", async () => {
  const own = await createClient({
    containerdAddress: fx.ctrd.address,
    namespace: fx.namespace,
    stateDir: fx.ctrd.stateDir,
    reapOnExit: true,
  });
  const container = await own.newContainer(uniqueId("mine"), fx.spec(["sleep", "600"]));
  await (await container.newTask()).start();
  expect((await client.listContainers()).map((c) => c.id)).toEqual([container.id]);
  await own.close();
});
