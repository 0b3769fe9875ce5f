// The client's one HTTP/2 connection to containerd, watched frame by frame through a proxy: the
// keepalive containerd accepts, and a connection that ends mid-call (GOAWAY, then close).
import { connect as http2Connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Container, Task } from "../../src/libcontainerd/types/client.js";
import { UnavailableError } from "../../src/libcontainerd/types/errors.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { H2Tap } from "../harness/h2-tap.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fixture = useRemote("connection");
let tapCount = 0;
const taps: H2Tap[] = [];

async function newTap(): Promise<H2Tap> {
  const tap = await H2Tap.start(join(fixture.ctrd.dir, `tap-${tapCount++}.sock`), fixture.ctrd.address);
  taps.push(tap);
  return tap;
}

/** Polls `check` until it holds (or fails the test after `ms`): waiting for an effect, not timing it. */
async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

afterAll(async () => {
  await Promise.all(taps.map((t) => t.close()));
});

async function runningTask(client = fixture.client): Promise<{ container: Container; task: Task }> {
  const id = uniqueId("conn");
  const container = await client.newContainer(id, fixture.spec(["sleep", "600"]));
  const task = await container.newTask();
  await task.start();
  return { container, task };
}

async function remove(container: Container, task: Task): Promise<void> {
  await task.kill("SIGKILL").catch(() => {});
  await task.wait();
  await task.delete();
  await container.delete();
}

describe("keepalive", () => {
  test("containerd ends a connection that pings more often than every 5 minutes (GOAWAY too_many_pings): so we send none", async () => {
    const tap = await newTap();
    // What the client used to do (a PING every 30 s), sped up: an open stream and a PING a second.
    const session = http2Connect("http://localhost", { createConnection: () => netConnect(tap.address) });
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/containerd.services.events.v1.Events/Subscribe",
      "content-type": "application/grpc",
      te: "trailers",
      "containerd-namespace": "connection",
    });
    stream.on("error", () => {});
    stream.write(Buffer.alloc(5));
    const pinger = setInterval(() => session.ping(() => {}), 1_000);
    try {
      await until("containerd's GOAWAY", () => tap.goaways.length > 0);
    } finally {
      clearInterval(pinger);
      session.destroy();
    }
    expect(tap.goaways[0]).toMatchObject({ errorCode: 11, debug: "too_many_pings" });
    // The first PING is free; three more within 5 minutes are three strikes.
    expect(tap.clientPings[0]).toBeGreaterThanOrEqual(4);
  });
});

describe("a connection that ends mid-call", () => {
  let tap: H2Tap;
  beforeAll(async () => {
    tap = await newTap();
  });

  test("a kill that never reached containerd is sent again on a new connection", async () => {
    const client = fixture.newClient({ address: tap.address });
    const { container, task } = await runningTask(client);
    tap.holdNewRequests();
    const killing = task.kill("SIGKILL");
    await until("the kill request to be held", () => tap.heldBytes > 0);
    const connections = tap.connectionCount;
    await tap.breakConnections();
    await killing;
    expect(tap.connectionCount).toBe(connections + 1);
    expect((await task.wait()).exitCode).toBe(137);
    await remove(container, task);
  });

  test("a kill whose answer was lost is sent again, and the process already gone counts as killed", async () => {
    const client = fixture.newClient({ address: tap.address });
    const { container, task } = await runningTask(client);
    const direct = await fixture.client.loadContainer(container.id);
    const directTask = await direct.task();
    tap.swallowNewResponses();
    const killing = task.kill("SIGKILL");
    // containerd acted on it: the task stopped, but its answer never reaches the client.
    for (;;) {
      if ((await directTask.status()) === "stopped") break;
      await sleep(20);
    }
    await tap.breakConnections();
    await killing;
    expect((await task.wait()).exitCode).toBe(137);
    await remove(container, task);
  });

  test("wait() outlives a connection that ends under it", async () => {
    const client = fixture.newClient({ address: tap.address });
    const { container, task } = await runningTask(client);
    const waiting = task.wait();
    await sleep(100);
    await tap.breakConnections();
    await fixture.client.loadContainer(container.id).then(async (c) => (await c.task()).kill("SIGKILL"));
    expect((await waiting).exitCode).toBe(137);
    await remove(container, task);
  });

  test("a create is not repeated: its connection ending is UnavailableError", async () => {
    const client = fixture.newClient({ address: tap.address });
    const id = uniqueId("conn");
    tap.holdNewRequests();
    const creating = client.newContainer(id, fixture.spec(["true"])).then(
      () => undefined,
      (err: unknown) => err,
    );
    await until("the create request to be held", () => tap.heldBytes > 0);
    await tap.breakConnections();
    expect(await creating).toBeInstanceOf(UnavailableError);
  });
});

describe("an idle client", () => {
  test("idle for 3 minutes with an events stream and a wait() open: one connection, no PING, every call answers", async () => {
    const tap = await newTap();
    const client = fixture.newClient({ address: tap.address });
    const { container, task } = await runningTask(client);
    const events: LibcontainerdEvent[] = [];
    const abort = new AbortController();
    const listening = (async () => {
      for await (const event of client.events({ signal: abort.signal })) events.push(event);
    })();
    const waiting = task.wait();
    // Past the 120 s at which containerd used to close the connection.
    await sleep(130_000);
    expect(await client.version()).toMatchObject({ version: expect.any(String) });
    await sleep(50_000);
    expect(tap.goaways).toEqual([]);
    expect(tap.clientPings).toEqual([0]);
    expect(tap.connectionCount).toBe(1);
    await task.kill("SIGKILL");
    expect((await waiting).exitCode).toBe(137);
    await until("the exit event", () =>
      events.some((e) => e.type === "exit" && e.containerId === container.id),
    );
    expect(tap.connectionCount).toBe(1);
    expect(tap.openConnections).toBe(1);
    abort.abort();
    await listening;
    await remove(container, task);
  }, 240_000);
});
