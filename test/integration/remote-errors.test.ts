import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { processesUnder } from "../harness/containerd.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("errors");
const root = { uid: 0, gid: 0 };

function shimsRunning(): number {
  return processesUnder(fx.ctrd.dir).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("containerd-shim");
    } catch {
      return false;
    }
  }).length;
}

/** After each case: no container, no task, no FIFO or bundle dir, no shim. */
afterEach(async () => {
  expect(await fx.client.listContainers()).toEqual([]);
  const fifoRoot = join(fx.ctrd.stateDir, fx.namespace);
  expect(existsSync(fifoRoot) ? readdirSync(fifoRoot) : []).toEqual([]);
  await expect.poll(shimsRunning, { timeout: 5000 }).toBe(0);
});

test("invalid container ids are refused before anything is created", async () => {
  for (const id of ["", "x--1", "-lead", "has space", "a/b", "é", "x".repeat(77)]) {
    await expect(fx.client.newContainer(id, fx.spec(["true"]))).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("container id"),
    });
  }
});

test("duplicate id → AlreadyExists naming the container", async () => {
  const id = uniqueId("dup");
  const container = await fx.client.newContainer(id, fx.spec(["true"]));
  await expect(fx.client.newContainer(id, fx.spec(["true"]))).rejects.toMatchObject({
    code: "already_exists",
    message: `create container ${id}: it already exists`,
  });
  await container.delete();
});

test("unknown id → NotFound", async () => {
  await expect(fx.client.loadContainer("no-such-container")).rejects.toMatchObject({
    code: "not_found",
    message: "load container no-such-container: no such container",
  });
  const container = await fx.client.newContainer(uniqueId("notask"), fx.spec(["true"]));
  await expect(container.task()).rejects.toMatchObject({
    code: "not_found",
    message: expect.stringContaining("has no task"),
  });
  await container.delete();
});

test("a rootfs that does not exist, or a relative one, → InvalidArgument", async () => {
  await expect(
    fx.client.newContainer(uniqueId("nofs"), fx.spec(["true"], { rootfs: "/nonexistent/rootfs" })),
  ).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringContaining("/nonexistent/rootfs does not exist"),
  });
  await expect(
    fx.client.newContainer(uniqueId("relfs"), fx.spec(["true"], { rootfs: "rootfs" })),
  ).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringContaining("absolute"),
  });
});

test("a command that does not exist → NotFound at task create (runc checks it), leaving no task or FIFO", async () => {
  const id = uniqueId("nocmd");
  const container = await fx.client.newContainer(id, fx.spec(["/bin/no-such-command"]));
  await expect(
    container.newTask({ stdio: { stdin: true, stdout: true, stderr: true } }),
  ).rejects.toMatchObject({
    code: "not_found",
    message: expect.stringMatching(/^create task for container nocmd-.*no-such-command/),
  });
  expect(readdirSync(join(fx.ctrd.stateDir, fx.namespace, id))).toEqual([]);
  await expect(container.task()).rejects.toMatchObject({ code: "not_found" });
  await container.delete();
});

test("exec id reused, bad exec id, unknown signal → typed errors; the container keeps working", async () => {
  const container = await fx.client.newContainer(uniqueId("execs"), fx.spec(["sleep", "30"]));
  const task = await container.newTask();
  await task.start();
  const first = await task.exec(
    "same",
    { args: ["sleep", "30"], cwd: "/", user: root },
    { stdio: { stdout: true, stderr: true } },
  );
  await expect(
    task.exec("same", { args: ["true"], cwd: "/", user: root }, { stdio: { stdout: true } }),
  ).rejects.toMatchObject({
    code: "already_exists",
  });
  await expect(task.exec("bad id", { args: ["true"], cwd: "/", user: root })).rejects.toMatchObject({
    code: "invalid_argument",
  });
  await expect(task.kill("SIGNOPE")).rejects.toMatchObject({
    code: "invalid_argument",
    message: expect.stringMatching(/^kill container execs-\S+: unknown signal "SIGNOPE"$/),
  });
  await expect(task.kill(0)).rejects.toMatchObject({ code: "invalid_argument" });
  await first.kill("KILL");
  await first.wait();
  await first.delete();
  await expect(container.delete()).rejects.toMatchObject({ code: "failed_precondition" });
  await task.forceDelete();
  await container.delete();
});

test("deleting a running task → FailedPrecondition, and it still runs", async () => {
  const container = await fx.client.newContainer(uniqueId("busy"), fx.spec(["sleep", "30"]));
  const task = await container.newTask();
  await task.start();
  await expect(task.delete()).rejects.toMatchObject({ code: "failed_precondition" });
  expect(await task.status()).toBe("running");
  await task.forceDelete();
  await container.delete();
});
