// The v1 shim (io.containerd.runtime.v1.linux) cannot run a binary:// log driver in containerd 1.6:
// it would fail inside the shim ("namespace is required") after FIFOs and labels exist. The library
// refuses it up front, typed, with nothing left behind, and the container stays usable.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { NotImplementedError } from "../../src/libcontainerd/types/errors.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("logs-v1");

test("a log on the v1 shim: NotImplementedError naming the runtime; no task, log or label; FIFO tasks still work", async () => {
  const id = uniqueId("v1log");
  const path = join(fx.ctrd.dir, "v1-logs", id, "log.json");
  const container = await fx.client.newContainer(id, fx.spec(["echo", "hi"]), {
    runtime: "io.containerd.runtime.v1.linux",
  });
  try {
    const refused = await container.newTask({ stdio: { log: { path } } }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(NotImplementedError);
    expect(String(refused)).toMatch(/io\.containerd\.runtime\.v1\.linux runtime cannot run a log driver/);
    await expect(container.task()).rejects.toMatchObject({ code: "not_found" });
    expect(existsSync(join(fx.ctrd.dir, "v1-logs"))).toBe(false);
    expect(Object.keys((await container.info()).labels).filter((k) => k.startsWith("io.ctrd.log"))).toEqual(
      [],
    );

    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const output = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(0);
    expect(await output).toBe("hi\n");
    await task.delete();
  } finally {
    await container.delete();
  }
  expect(readdirSync(join(fx.ctrd.stateDir, "logs-v1")).filter((d) => d.includes(id))).toEqual([]);
});
