import { expect, test } from "vitest";
import type { EventType, LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("events");

test("50 containers in parallel: one exit each with its own code, per-container order create → start → exit", async () => {
  const ids = Array.from({ length: 50 }, (_, i) => ({ id: uniqueId(`par${i}`), code: i % 256 }));
  const wanted = new Set(ids.map((c) => c.id));
  const fromIterable: LibcontainerdEvent[] = [];
  const fromBackend = new Map<string, EventType[]>();
  let inFlight = 0;
  let overlapSeen = false;
  fx.client.setBackend({
    async processEvent(containerId, type) {
      if (!wanted.has(containerId)) return;
      inFlight += 1;
      if (inFlight > 1) overlapSeen = true;
      const list = fromBackend.get(containerId) ?? [];
      list.push(type);
      fromBackend.set(containerId, list);
      await new Promise((r) => setTimeout(r, 1));
      inFlight -= 1;
    },
  });
  const abort = new AbortController();
  const collecting = (async () => {
    for await (const e of fx.client.events({ signal: abort.signal }))
      if (wanted.has(e.containerId)) fromIterable.push(e);
  })();

  const results = await Promise.all(
    ids.map(async ({ id, code }) => {
      const container = await fx.client.newContainer(id, fx.spec(["sh", "-c", `exit ${code}`]));
      const task = await container.newTask();
      const exited = task.wait();
      await task.start();
      const status = await exited;
      await task.delete();
      await container.delete();
      return status.exitCode;
    }),
  );
  expect(results).toEqual(ids.map((c) => c.code));

  await expect.poll(() => fromIterable.filter((e) => e.type === "exit").length, { timeout: 10_000 }).toBe(50);
  await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive in this window
  abort.abort();
  await collecting;

  for (const { id, code } of ids) {
    const mine = fromIterable.filter((e) => e.containerId === id);
    expect(mine.map((e) => e.type)).toEqual(["create", "start", "exit"]);
    expect(mine[2]?.exitCode).toBe(code);
    expect(fromBackend.get(id)).toEqual(["create", "start", "exit"]);
  }
  // Backend calls are serial per container but run concurrently across containers.
  expect(overlapSeen).toBe(true);
});

test("an aborted wait() or events() stops waiting without touching the container", async () => {
  const container = await fx.client.newContainer(uniqueId("abort"), fx.spec(["sleep", "30"]));
  const task = await container.newTask();
  await task.start();
  const abort = new AbortController();
  const waiting = task.wait({ signal: abort.signal });
  setTimeout(() => abort.abort(), 50);
  await expect(waiting).rejects.toMatchObject({ code: "canceled" });
  await expect(task.wait({ timeoutMs: 50 })).rejects.toMatchObject({ code: "deadline_exceeded" });

  const eventsAbort = new AbortController();
  const iterating = (async () => {
    const seen: LibcontainerdEvent[] = [];
    for await (const e of fx.client.events({ signal: eventsAbort.signal })) seen.push(e);
    return seen;
  })();
  setTimeout(() => eventsAbort.abort(), 50);
  expect(await iterating).toEqual([]);

  expect(await task.status()).toBe("running");
  await task.forceDelete();
  await container.delete();
});
