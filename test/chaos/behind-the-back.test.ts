// Faults injected behind the client's back, on a healthy containerd: the shim SIGKILLed, the runc
// container deleted out of band (containerd's TestKillContainerDeletedByRunc), the FIFO reader gone
// while the container writes. Each test ends with nothing left in containerd, the shims or the state dir.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { isErrorCode } from "../../src/libcontainerd/types/errors.js";
import { requireBinary } from "../harness/binaries.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";
import { isAlive, leftoversOf, NOTHING_LEFT, recordEvents, shimPidsOf, until } from "./helpers.js";

const fx = useRemote("chaos");

describe("faults behind the client's back", () => {
  test("shim SIGKILLed under a running container: exit 137 reaches events and wait() exactly once", async () => {
    const recorder = recordEvents(fx.client.events());
    const id = uniqueId("shimkill");
    const container = await fx.client.newContainer(id, fx.spec(["sleep", "60"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const exited = task.wait();
    const secondWaiter = task.wait();
    await task.start();
    const [shim, ...others] = shimPidsOf(id);
    expect(shim).toBeDefined();
    expect(others).toEqual([]);
    process.kill(shim!, "SIGKILL");

    expect((await exited).exitCode).toBe(137);
    expect((await secondWaiter).exitCode).toBe(137);
    await until("the exit event", () => recorder.exitsOf(id).length > 0, 10_000);
    // Long enough for a late duplicate (containerd's dead-shim cleanup, a resync) to show up.
    await sleep(1500);
    expect(recorder.exitsOf(id).map((e) => e.exitCode)).toEqual([137]);
    expect(isAlive(task.pid)).toBe(false);

    await task.forceDelete();
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
  });

  test("runc delete --force behind the client's back: kill → NotFound, wait() completes", async () => {
    const runc = requireBinary("runc");
    const id = uniqueId("runcdel");
    const container = await fx.client.newContainer(id, fx.spec(["sleep", "60"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    // The registry's runc root, to which the shim appends the namespace.
    const root = join(fx.ctrd.stateDir, "runtime-runc", fx.namespace);
    const removed = spawnSync(runc, ["--root", root, "delete", "--force", id], { encoding: "utf8" });
    expect(removed.stderr).toBe("");
    expect(removed.status).toBe(0);

    const killed = await task.kill("SIGKILL").then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isErrorCode(killed, "not_found")).toBe(true);
    expect((killed as Error).message).toContain(id);
    const status = await exited;
    expect(status.exitCode).toBe(137);

    await task.forceDelete();
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
  });

  test("FIFO reader gone while the container writes: still killable and deletable, client unharmed", async () => {
    const id = uniqueId("noreader");
    const container = await fx.client.newContainer(id, fx.spec(["yes", "chaos"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const exited = task.wait();
    await task.start();
    const stdout = task.stdout!;
    const firstChunk = await new Promise<string>((resolve) =>
      stdout.once("data", (c: Buffer) => resolve(c.toString())),
    );
    expect(firstChunk).toContain("chaos\n");
    stdout.destroy();
    // Let the shim hit the closed FIFO (EPIPE on its copy) while `yes` keeps writing.
    await sleep(500);

    await task.kill("SIGKILL").catch((err: unknown) => {
      // `yes` may already have died of SIGPIPE; anything else is a failure.
      if (!isErrorCode(err, "not_found") && !isErrorCode(err, "failed_precondition")) throw err;
    });
    expect([137, 141]).toContain((await exited).exitCode);
    await task.delete();
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);

    // The client (this process) carries on.
    const after = uniqueId("after");
    const next = await fx.client.newContainer(after, fx.spec(["echo", "still fine"]));
    const nextTask = await next.newTask({ stdio: { stdout: true, stderr: true } });
    const output = readAll(nextTask.stdout);
    const nextExit = nextTask.wait();
    await nextTask.start();
    expect((await nextExit).exitCode).toBe(0);
    expect(await output).toBe("still fine\n");
    await nextTask.delete();
    await next.delete();
  });
});
