// Inputs and places a hostile (or unlucky) user gives the remote backend: exec ids that name another
// process, a state dir that turns read-only or holds symlinks, labels and sizes containerd would
// garble. Each gets a typed error up front, and nothing is left stuck.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import type { Container, Task } from "../../src/libcontainerd/types/client.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("hostile");
const root = { uid: 0, gid: 0 };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function running(): Promise<{ container: Container; task: Task }> {
  const container = await fx.client.newContainer(uniqueId("h"), fx.spec(["sleep", "600"]));
  const task = await container.newTask();
  await task.start();
  cleanups.push(async () => {
    await task.forceDelete().catch(() => {});
    await container.delete().catch(() => {});
  });
  return { container, task };
}

describe("exec ids", () => {
  test("the container's own id is refused (it names the init process), and the container is untouched", async () => {
    const { container, task } = await running();
    await expect(task.exec(container.id, { args: ["true"], cwd: "/", user: root })).rejects.toMatchObject({
      code: "already_exists",
      message: expect.stringContaining(`exec id ${container.id}`),
    });
    await expect(
      task.exec(container.id, { args: ["true"], cwd: "/", user: root }, { stdio: { stdout: true } }),
    ).rejects.toMatchObject({ code: "already_exists" });
    expect(await task.status()).toBe("running");
    const fifoDir = join(fx.ctrd.stateDir, fx.namespace, container.id);
    expect(existsSync(fifoDir) ? readdirSync(fifoDir) : []).toEqual([]);
  });

  test("an exec id in use is AlreadyExistsError, and the running exec keeps running", async () => {
    const { task } = await running();
    const first = await task.exec("twice", { args: ["sleep", "600"], cwd: "/", user: root });
    await expect(task.exec("twice", { args: ["true"], cwd: "/", user: root })).rejects.toMatchObject({
      code: "already_exists",
    });
    expect((await task.pids()).length).toBe(2);
    await first.kill("SIGKILL");
    expect((await first.wait()).exitCode).toBe(137);
    await first.delete();
  });
});

describe("a state dir that turns read-only", () => {
  test("deletes after containerd succeeded still succeed; the id is reusable once it is writable again", async () => {
    const nsDir = join(fx.ctrd.stateDir, fx.namespace);
    const id = uniqueId("ro");
    const container = await fx.client.newContainer(id, fx.spec(["sleep", "600"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    await task.start();
    const exec = await task.exec(
      "probe",
      { args: ["sleep", "600"], cwd: "/", user: root },
      { stdio: { stdout: true } },
    );
    execFileSync("mount", ["--bind", nsDir, nsDir]);
    let mounted = true;
    const unmount = () => {
      if (mounted) execFileSync("umount", [nsDir]);
      mounted = false;
    };
    cleanups.push(unmount);
    execFileSync("mount", ["-o", "remount,ro,bind", nsDir]);
    const remountWritable = () => execFileSync("mount", ["-o", "remount,rw,bind", nsDir]);

    // New stdio cannot be made there: a typed error naming the path, not a raw EROFS.
    const other = await fx.client.newContainer(uniqueId("ro"), fx.spec(["true"]));
    cleanups.push(() => other.delete().catch(() => {}));
    await expect(other.newTask({ stdio: { stdout: true } })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringMatching(/EROFS/),
    });

    await exec.kill("SIGKILL");
    expect((await exec.wait()).exitCode).toBe(137);
    expect((await exec.delete()).exitCode).toBe(137);
    remountWritable();
    // The exec's FIFOs the read-only dir kept do not hold its id "in use" either.
    const probeAgain = await task.exec(
      "probe",
      { args: ["echo", "probe again"], cwd: "/", user: root },
      { stdio: { stdout: true } },
    );
    const probeOut = readAll(probeAgain.stdout);
    expect((await probeAgain.wait()).exitCode).toBe(0);
    expect(await probeOut).toBe("probe again\n");
    await probeAgain.delete();
    execFileSync("mount", ["-o", "remount,ro,bind", nsDir]);

    await task.kill("SIGKILL");
    expect((await task.wait()).exitCode).toBe(137);
    expect((await task.delete()).exitCode).toBe(137);
    await container.delete();
    expect(await fx.client.listContainers()).not.toContainEqual(expect.objectContaining({ id }));
    unmount();
    // The FIFOs the read-only dir kept do not hold the id "in use".
    expect(existsSync(join(nsDir, id))).toBe(true);
    const again = await fx.client.newContainer(id, fx.spec(["echo", "again"]));
    const second = await again.newTask({ stdio: { stdout: true } });
    const out = readAll(second.stdout);
    const exited = second.wait();
    await second.start();
    expect((await exited).exitCode).toBe(0);
    expect(await out).toBe("again\n");
    await second.delete();
    await again.delete();
    expect(existsSync(join(nsDir, id))).toBe(false);
  });
});

describe("symlinks in the state dir", () => {
  test("a namespace dir that is a symlink is refused, naming it; nothing is made or removed at its target", async () => {
    const namespace = `hostile-link-${process.pid}`;
    const target = join(fx.ctrd.dir, `elsewhere-${process.pid}`);
    mkdirSync(target);
    mkdirSync(fx.ctrd.stateDir, { recursive: true });
    const nsDir = join(fx.ctrd.stateDir, namespace);
    symlinkSync(target, nsDir);
    const client = fx.newClient({ namespace });
    const id = uniqueId("link");
    // What a delete would otherwise remove recursively.
    mkdirSync(join(target, id));
    const container = await client.newContainer(id, fx.spec(["true"]));
    cleanups.push(() => container.delete().catch(() => {}));
    await expect(container.newTask({ stdio: { stdout: true } })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining(`${nsDir} is a symbolic link`),
    });
    await expect(container.delete()).rejects.toMatchObject({ code: "failed_precondition" });
    expect(readdirSync(target)).toEqual([id]);
    // Once the link is gone, the container can be deleted.
    renameSync(nsDir, `${nsDir}.moved`);
    await container.delete();
  });
});

describe("a FIFO replaced by a symlink", () => {
  test("reattaching refuses to follow it (FailedPreconditionError, ELOOP)", async () => {
    const container = await fx.client.newContainer(uniqueId("fifo"), fx.spec(["sleep", "600"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    await task.start();
    cleanups.push(async () => {
      await task.forceDelete().catch(() => {});
      await container.delete().catch(() => {});
    });
    const fifo = join(fx.ctrd.stateDir, fx.namespace, container.id, `${container.id}-stdout`);
    const secret = join(fx.ctrd.dir, `secret-${process.pid}`);
    writeFileSync(secret, "secret\n");
    rmSync(fifo);
    symlinkSync(secret, fifo);
    const other = fx.newClient();
    const reloaded = await other.loadContainer(container.id);
    await expect(reloaded.attachTask({ stdout: true })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("ELOOP"),
    });
  });
});

describe("labels and sizes", () => {
  test("a label value that is not a string, or a key with NUL, is InvalidArgumentError", async () => {
    const id = uniqueId("lbl");
    await expect(
      fx.client.newContainer(id, fx.spec(["true"]), { labels: { a: { b: 1 } as unknown as string } }),
    ).rejects.toMatchObject({ code: "invalid_argument", message: expect.stringContaining('label "a"') });
    await expect(
      fx.client.newContainer(id, fx.spec(["true"]), { labels: { "a\0b": "x" } }),
    ).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(fx.client.loadContainer(id)).rejects.toMatchObject({ code: "not_found" });
  });

  test("20 MB of env is InvalidArgumentError, not InternalError", async () => {
    const env = [`BIG=${"x".repeat(20 * 1024 * 1024)}`];
    await expect(fx.client.newContainer(uniqueId("big"), fx.spec(["true"], { env }))).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });

  test("start() after kill() of a created task is FailedPreconditionError", async () => {
    const container = await fx.client.newContainer(uniqueId("sk"), fx.spec(["sleep", "600"]));
    const task = await container.newTask();
    cleanups.push(async () => {
      await task.forceDelete().catch(() => {});
      await container.delete().catch(() => {});
    });
    await task.kill("SIGKILL");
    await task.wait();
    await expect(task.start()).rejects.toMatchObject({ code: "failed_precondition" });
  });
});
