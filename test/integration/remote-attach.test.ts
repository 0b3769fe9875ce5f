import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("attach");

/** Runs the second client; calls `onAttached` once it holds the FIFOs; resolves with its JSON report. */
function secondClient(id: string, onAttached: () => void): Promise<unknown> {
  const child = spawn(
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
    { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 },
  );
  const stdout = readAll(child.stdout);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (chunk.includes("attached")) onAttached();
  });
  return new Promise((resolve, reject) => {
    child.on("exit", async (code) => {
      if (code === 0) resolve(JSON.parse(await stdout));
      else reject(new Error(`second client exited ${code}: ${stderr}`));
    });
  });
}

test("a second client in a new process loads a running container, reattaches stdout, gets its output and exit", async () => {
  const id = uniqueId("attach");
  const go = `/tmp/go-${id}`;
  const container = await fx.client.newContainer(
    id,
    fx.spec(["sh", "-c", `while [ ! -e ${go} ]; do sleep 0.05; done; echo late output; exit 5`]),
  );
  const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
  await task.start();
  // The first client lets go of the output, as a crashed or restarted daemon would.
  task.stdout!.destroy();
  const report = await secondClient(id, () => writeFileSync(join(fx.ctrd.rootfs, go), ""));
  expect(report).toEqual({ pid: task.pid, stdout: "late output\n", exitCode: 5 });
  expect((await task.delete()).exitCode).toBe(5);
  await container.delete();
});

test("attaching to a task that already exited ends its streams instead of hanging", async () => {
  const id = uniqueId("gone");
  const container = await fx.client.newContainer(id, fx.spec(["sh", "-c", "exit 4"]));
  const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
  const exited = task.wait();
  await task.start();
  await exited;
  const other = fx.newClient();
  const attached = await (await other.loadContainer(id)).attachTask({ stdout: true, stderr: true });
  expect(await readAll(attached.stdout)).toBe("");
  expect(await readAll(attached.stderr)).toBe("");
  expect((await attached.wait()).exitCode).toBe(4);
  await attached.delete();
  await container.delete();
});
