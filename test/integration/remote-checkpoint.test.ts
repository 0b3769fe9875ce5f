import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("checkpoint");

// CRIU cannot checkpoint on this machine's kernel (see README). What we can prove here: the
// request reaches runc and CRIU, the failure comes back typed with CRIU's own words, and the
// container is left running and usable.
test("checkpoint: CRIU's failure comes back as a typed error and the task keeps running", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lcd-ckpt-"));
  try {
    const container = await fx.client.newContainer(uniqueId("ckpt"), fx.spec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    const err = await task.checkpoint(dir, { exit: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(err).toMatchObject({
      code: "failed_precondition",
      message: expect.stringMatching(/^checkpoint container ckpt-\S+: CRIU failed: .*[Ee]rror/),
    });
    expect(await task.status()).toBe("running");
    await task.forceDelete();
    await container.delete();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("checkpoint and restore refuse relative paths", async () => {
  const container = await fx.client.newContainer(uniqueId("ckrel"), fx.spec(["sleep", "30"]));
  const task = await container.newTask();
  await expect(task.checkpoint("relative/dir")).rejects.toMatchObject({ code: "invalid_argument" });
  await task.forceDelete();
  await expect(container.newTask({ checkpointDir: "relative" })).rejects.toMatchObject({
    code: "invalid_argument",
  });
  await container.delete();
});
