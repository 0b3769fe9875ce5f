// A client that dies (ctrd serve SIGKILLed, say) leaves its containers' stdio FIFOs behind. When the
// task they belonged to is gone, the next task of that container gets new FIFOs instead of the
// "id is in use" refusal, which is kept for FIFOs whose task still exists.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { fifoDirOf } from "../../src/platform/state-dir.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("stale-fifos");

test("FIFOs left by a dead client for a task that is gone: removed, and the new task runs with its output", async () => {
  const id = uniqueId("stale");
  const container = await fx.client.newContainer(id, fx.spec(["echo", "again"]));
  try {
    const dir = fifoDirOf(fx.ctrd.stateDir, fx.namespace, id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const stream of ["stdout", "stderr"])
      execFileSync("mkfifo", ["-m", "600", join(dir, `${id}-${stream}`)]);

    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const output = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(0);
    expect(await output).toBe("again\n");
    await task.delete();
  } finally {
    await container.delete();
  }
  expect(existsSync(fifoDirOf(fx.ctrd.stateDir, fx.namespace, id))).toBe(false);
});

test("FIFOs of a task that still exists: the id stays in use (AlreadyExistsError), and that task is untouched", async () => {
  const id = uniqueId("live");
  const container = await fx.client.newContainer(id, fx.spec(["sleep", "30"]));
  try {
    const first = await container.newTask({ stdio: { stdout: true, stderr: true } });
    await first.start();
    await expect(container.newTask({ stdio: { stdout: true, stderr: true } })).rejects.toMatchObject({
      code: "already_exists",
    });
    expect(await first.status()).toBe("running");
    await first.forceDelete();
  } finally {
    await container.delete();
  }
});
