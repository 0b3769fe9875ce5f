import { expect, test } from "vitest";
import { eventStreamOf } from "../../src/libcontainerd/remote/client.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("restart");

test("containerd killed and restarted: waits resolve, the exit that happened meanwhile arrives once, calls fail Unavailable or wait", async () => {
  const quickId = uniqueId("quick");
  const longId = uniqueId("long");
  const events: LibcontainerdEvent[] = [];
  const abort = new AbortController();
  const collecting = (async () => {
    for await (const e of fx.client.events({ signal: abort.signal })) events.push(e);
  })();

  const quick = await (
    await fx.client.newContainer(quickId, fx.spec(["sh", "-c", "sleep 1.5; exit 3"]))
  ).newTask();
  const long = await (await fx.client.newContainer(longId, fx.spec(["sleep", "60"]))).newTask();
  const quickExit = quick.wait();
  const longExit = long.wait();
  await quick.start();
  await long.start();

  await fx.ctrd.kill();
  await expect(fx.client.version({ timeoutMs: 2000 })).rejects.toMatchObject({ code: "unavailable" });
  // The quick container exits while containerd is down; its exit event is never published live.
  await new Promise((r) => setTimeout(r, 2500));
  const waitingForReady = fx.client.version({ waitForReady: true, timeoutMs: 20_000 });
  await fx.ctrd.restart();
  await expect(waitingForReady).resolves.toMatchObject({ version: expect.stringMatching(/^1\.6\./) });

  expect((await quickExit).exitCode).toBe(3);
  await expect
    .poll(() => events.filter((e) => e.type === "exit" && e.containerId === quickId).length, {
      timeout: 10_000,
    })
    .toBe(1);
  expect(events.find((e) => e.type === "exit" && e.containerId === quickId)?.exitCode).toBe(3);

  expect(await long.status()).toBe("running");
  await long.kill("SIGKILL");
  expect((await longExit).exitCode).toBe(137);
  await expect
    .poll(() => events.filter((e) => e.type === "exit" && e.containerId === longId).length, {
      timeout: 10_000,
    })
    .toBe(1);

  // A resync on demand finds nothing new to report: no duplicates.
  await eventStreamOf(fx.client).resync();
  await new Promise((r) => setTimeout(r, 300));
  expect(
    events
      .filter((e) => e.type === "exit")
      .map((e) => e.containerId)
      .sort(),
  ).toEqual([longId, quickId].sort());

  for (const task of [quick, long]) await task.delete();
  for (const id of [quickId, longId]) await (await fx.client.loadContainer(id)).delete();
  abort.abort();
  await collecting;
});
