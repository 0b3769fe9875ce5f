import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, test } from "vitest";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("attach");
const run = promisify(execFile);

test("a second client in a new process loads a running container, reattaches stdout, gets its output and exit", async () => {
  const id = uniqueId("attach");
  const container = await fx.client.newContainer(
    id,
    fx.spec(["sh", "-c", "sleep 3; echo late output; exit 5"]),
  );
  const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
  await task.start();
  // The first client lets go of the output, as a crashed or restarted daemon would.
  task.stdout!.destroy();

  const { stdout } = await run(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/fixtures/attach-client.ts",
      fx.ctrd.address,
      fx.namespace,
      fx.ctrd.stateDir,
      id,
    ],
    { timeout: 30_000 },
  );
  expect(JSON.parse(stdout)).toEqual({ pid: task.pid, stdout: "late output\n", exitCode: 5 });
  expect((await task.delete()).exitCode).toBe(5);
  await container.delete();
});
