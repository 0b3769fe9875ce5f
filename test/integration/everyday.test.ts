/**
 * The everyday API on a real containerd + runc: docker-style limits land in the real cgroup, OOM is in
 * the exit status, `init` makes a shell stop on SIGTERM, and containerd's untyped state errors come
 * back typed.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("everyday");

/** A cgroup v1 controller file, or its cgroup v2 equivalent, of a container's cgroupsPath. */
function cgroupFile(cgroupsPath: string, v1: string, v2: string): string {
  const unified = existsSync("/sys/fs/cgroup/cgroup.controllers");
  return readFileSync(
    unified
      ? join("/sys/fs/cgroup", cgroupsPath, v2)
      : join("/sys/fs/cgroup", v1.split("/")[0] ?? "", cgroupsPath, v1.split("/")[1] ?? ""),
    "utf8",
  ).trim();
}

test("cpus: 0.5 is a CFS quota of 50000 per 100000 in the container's cgroup; limits update docker-style", async () => {
  const spec = fx.spec(["sleep", "100"], {
    resources: { cpus: 0.5, memory: "64m", pids: 32, cpuShares: 512, blkioWeight: 300 },
  });
  const cgroupsPath = spec.linux?.cgroupsPath ?? "";
  const container = await fx.client.newContainer(uniqueId("cpus"), spec);
  const task = await container.newTask();
  try {
    await task.start();
    if (existsSync("/sys/fs/cgroup/cgroup.controllers")) {
      expect(cgroupFile(cgroupsPath, "", "cpu.max")).toBe("50000 100000");
    } else {
      expect(cgroupFile(cgroupsPath, "cpu/cpu.cfs_quota_us", "")).toBe("50000");
      expect(cgroupFile(cgroupsPath, "cpu/cpu.cfs_period_us", "")).toBe("100000");
      expect(cgroupFile(cgroupsPath, "memory/memory.limit_in_bytes", "")).toBe(String(64 * 1024 * 1024));
      expect(cgroupFile(cgroupsPath, "pids/pids.max", "")).toBe("32");
      expect(cgroupFile(cgroupsPath, "cpu/cpu.shares", "")).toBe("512");
      // runc writes blkio.weight, or BFQ's blkio.bfq.weight where that is the scheduler's file.
      const weightFile = existsSync(join("/sys/fs/cgroup/blkio", cgroupsPath, "blkio.weight"))
        ? "blkio/blkio.weight"
        : "blkio/blkio.bfq.weight";
      expect(cgroupFile(cgroupsPath, weightFile, "")).toMatch(/\b300$/);
    }
    await task.updateResources({ cpus: 1.5, memory: "128m", memorySwap: "256m" });
    if (!existsSync("/sys/fs/cgroup/cgroup.controllers")) {
      expect(cgroupFile(cgroupsPath, "cpu/cpu.cfs_quota_us", "")).toBe("150000");
      expect(cgroupFile(cgroupsPath, "memory/memory.limit_in_bytes", "")).toBe(String(128 * 1024 * 1024));
    }
    const stats = await task.stats();
    expect(stats.memory.limit).toBe(128 * 1024 * 1024);
    expect(stats.pids).toEqual({ current: 1, limit: 32 });
    // A bad value is refused before containerd sees it, naming the field; a raw cpuset too.
    await expect(task.updateResources({ cpus: 0.001 })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("resources.cpus"),
    });
    await expect(task.updateResources({ linux: { cpu: { cpus: "0.5" } } })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  } finally {
    await task.forceDelete();
    await container.delete();
  }
});

test("a raw cpuset that looks like --cpus is an InvalidArgumentError at newContainer, not a runc failure", async () => {
  const spec = fx.spec(["true"]);
  spec.linux = { ...spec.linux, resources: { ...spec.linux?.resources, cpu: { cpus: "0.5" } } };
  await expect(fx.client.newContainer(uniqueId("cpuset"), spec)).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringContaining("cpu.cpus"),
  });
});

test("start() twice, and start() after the task was killed, are FailedPreconditionError", async () => {
  const container = await fx.client.newContainer(uniqueId("twice"), fx.spec(["sleep", "100"]));
  const task = await container.newTask();
  try {
    await task.start();
    await expect(task.start()).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("cannot start a running process"),
    });
    const exited = task.wait();
    await task.kill("SIGKILL");
    await exited;
    await expect(task.start()).rejects.toMatchObject({ code: "failed_precondition" });
    await expect(task.pause()).rejects.toMatchObject({ code: "failed_precondition" });
  } finally {
    await task.forceDelete();
    await container.delete();
  }
});

test("OOM: a process over its memory limit exits 137 with oomKilled from wait() and delete()", async () => {
  const container = await fx.client.newContainer(
    uniqueId("oom"),
    fx.spec(["tail", "/dev/zero"], { resources: { memory: "16m" } }),
  );
  const task = await container.newTask();
  const exited = task.wait();
  await task.start();
  expect(await exited).toMatchObject({ exitCode: 137, oomKilled: true });
  expect(await task.delete()).toMatchObject({ exitCode: 137, oomKilled: true });
  await container.delete();
});

test("an ordinary exit, or a SIGKILL that is not the kernel's, is not oomKilled", async () => {
  const container = await fx.client.newContainer(
    uniqueId("nooom"),
    fx.spec(["sleep", "100"], { resources: { memory: "16m" } }),
  );
  const task = await container.newTask();
  const exited = task.wait();
  await task.start();
  await task.kill("SIGKILL");
  expect(await exited).toMatchObject({ exitCode: 137, oomKilled: false });
  expect(await task.delete()).toMatchObject({ exitCode: 137, oomKilled: false });
  await container.delete();
});

test("init: SIGTERM stops sh through tini (exit 143, SIGTERM's path); without init sh as PID 1 ignores it", async () => {
  const loop = ["sh", "-c", "echo ready; while true; do sleep 1; done"];
  const withInit = await fx.client.newContainer(uniqueId("init"), fx.spec(loop, { init: true }));
  const task = await withInit.newTask({ stdio: { stdout: true } });
  const exited = task.wait();
  await task.start();
  // tini handles signals once it has started sh: a SIGTERM before that reaches a PID 1 with no handler,
  // which the kernel drops (seen under load: the test then waited out its timeout).
  await firstLine(task.stdout);
  await task.kill("SIGTERM");
  // tini exits 128 + the signal that killed its child: 143 is SIGTERM, 137 would be a SIGKILL.
  expect((await exited).exitCode).toBe(143);
  await task.delete();
  await withInit.delete();

  const bare = await fx.client.newContainer(uniqueId("noinit"), fx.spec(loop));
  const bareTask = await bare.newTask();
  const bareExited = bareTask.wait();
  await bareTask.start();
  await bareTask.kill("SIGTERM");
  // Still running after the SIGTERM was delivered: only the SIGKILL ends it.
  await bareTask.kill("SIGKILL");
  expect((await bareExited).exitCode).toBe(137);
  await bareTask.delete();
  await bare.delete();
});

/** Resolves with the first line the stream carries (then keeps draining it). */
function firstLine(stream: NodeJS.ReadableStream | null | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!stream) return reject(new Error("no stdout"));
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) resolve(text.slice(0, text.indexOf("\n")));
    });
    stream.once("end", () => reject(new Error(`stdout ended before a line: ${JSON.stringify(text)}`)));
  });
}

/** Children of `parent` (host pids) by state: "Z" zombies, and the live ones' command lines. */
function childrenOf(parent: number): { zombies: number; live: string[] } {
  const found = { zombies: 0, live: [] as string[] };
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) !== parent) continue;
      if (state === "Z") found.zombies += 1;
      else found.live.push(readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim());
    } catch {}
  }
  return found;
}

test("init reaps orphans: without it an orphan that exits stays a zombie of PID 1", async () => {
  // The subshell exits at once, orphaning `sleep 2`: it is re-parented to the container's PID 1.
  const orphaning = ["sh", "-c", "(sleep 2 &); exec sleep 60"];
  for (const init of [true, false]) {
    const container = await fx.client.newContainer(
      uniqueId(init ? "reap" : "zombie"),
      fx.spec(orphaning, { init }),
    );
    const task = await container.newTask();
    try {
      await task.start();
      // The orphan is seen alive as a child of PID 1, then seen to have exited (a zombie, or reaped and gone).
      const orphans = () => childrenOf(task.pid).live.filter((cmd) => cmd === "sleep 2");
      await expect.poll(orphans, { timeout: 10_000 }).toEqual(["sleep 2"]);
      await expect.poll(orphans, { timeout: 10_000 }).toEqual([]);
      // tini reaps it; `sleep` as PID 1 never waits, so the zombie stays.
      await expect.poll(() => childrenOf(task.pid).zombies, { timeout: 10_000 }).toBe(init ? 0 : 1);
    } finally {
      await task.forceDelete();
      await container.delete();
    }
  }
});
