// An exit that happens while containerd is down, for longer than the shim keeps retrying to forward
// it (after 1, 2, 3, 4 and 5 s, then dropped: pkg/shim/publisher.go), is lost for good: containerd
// never replays events. Only the client's resync after resubscribing can report it. Two clients see
// the same outage: one with resync (the exit arrives, once), one with `resyncEnabled = false` (it
// never does), which shows the mechanism, not luck, delivers it.
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, expect, test } from "vitest";
import { eventStreamOf, type RemoteClient } from "../../src/libcontainerd/remote/client.js";
import type { ExitStatus } from "../../src/libcontainerd/types/client.js";
import { uniqueId, useRemote } from "../harness/remote.js";
import { recordEvents, until } from "./helpers.js";

const fx = useRemote("lostexit");
/** Longer than the shim's 1 + 2 + 3 + 4 + 5 s of retries. */
const OUTAGE_MS = 17_000;

interface Observed {
  id: string;
  recorder: ReturnType<typeof recordEvents>;
  waited: Promise<ExitStatus>;
}

const observed = new Map<"resync" | "no-resync", Observed>();

async function startWatched(client: RemoteClient, prefix: string): Promise<Observed & { pid: number }> {
  const recorder = recordEvents(client.events());
  const id = uniqueId(prefix);
  const container = await client.newContainer(id, fx.spec(["sleep", "300"]));
  const task = await container.newTask();
  const waited = task.wait();
  await task.start();
  await until(
    "the start event",
    () => recorder.events.some((e) => e.type === "start" && e.containerId === id),
    5000,
  );
  return { id, recorder, waited, pid: task.pid };
}

beforeAll(async () => {
  const withResync = fx.newClient();
  const withoutResync = fx.newClient();
  eventStreamOf(withoutResync).resyncEnabled = false;
  const a = await startWatched(withResync, "resync");
  const b = await startWatched(withoutResync, "noresync");
  observed.set("resync", a);
  observed.set("no-resync", b);

  await fx.ctrd.kill();
  // Both containers exit while nobody can hear it; the shims reap them and try to publish.
  process.kill(a.pid, "SIGKILL");
  process.kill(b.pid, "SIGKILL");
  await sleep(OUTAGE_MS);
  await fx.ctrd.restart();
  // Both clients resubscribe within their backoff (≤ 2 s); give the resync time to report.
  await sleep(4000);
}, 60_000);

test("with resync: an exit that happened during the outage is delivered exactly once, with its code", async () => {
  const { id, recorder, waited } = observed.get("resync")!;
  await until("the exit event", () => recorder.exitsOf(id).length > 0, 5000);
  expect(recorder.exitsOf(id).map((e) => e.exitCode)).toEqual([137]);
  expect((await waited).exitCode).toBe(137);
});

test("with resyncEnabled = false: the same exit is never delivered (the resync is what delivers it)", async () => {
  const { id, recorder, waited } = observed.get("no-resync")!;
  // wait() asks containerd directly, so it still completes; the event stream alone has no way to know.
  expect((await waited).exitCode).toBe(137);
  expect(recorder.exitsOf(id)).toEqual([]);
});
