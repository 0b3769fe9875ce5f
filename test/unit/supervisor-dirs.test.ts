import { expect, test } from "vitest";
import { ManagedContainerd } from "../../src/libcontainerd/supervisor/supervisor.js";

test("dirs the managed containerd cannot use fail at once, typed, before anything starts", async () => {
  const supervisor = new ManagedContainerd({ root: "/etc/passwd/root", stateDir: "/etc/passwd/state" });
  const started = Date.now();
  await expect(supervisor.start()).rejects.toMatchObject({
    code: "failed_precondition",
    message: expect.stringContaining("/etc/passwd is not a directory"),
  });
  expect(Date.now() - started).toBeLessThan(2000);
  await supervisor.shutdown();
});
