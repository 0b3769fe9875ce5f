// The fan-out behind client.events(): subscriptions end with their signal, and leave nothing on it.
import { getEventListeners } from "node:events";
import { pino } from "pino";
import { describe, expect, test } from "vitest";
import { EventFanout } from "../../src/libcontainerd/event-queue.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";

const event = (containerId: string): LibcontainerdEvent => ({
  type: "start",
  containerId,
  processId: containerId,
  pid: 1,
  timestamp: new Date(),
});

describe("EventFanout", () => {
  test("a subscription left early (break) takes its abort listener off a long-lived signal", async () => {
    const fanout = new EventFanout(pino({ level: "silent" }));
    const app = new AbortController();
    for (let i = 0; i < 20; i++) {
      const events = fanout.subscribe(app.signal);
      fanout.publish(event(`c${i}`));
      for await (const seen of events) {
        expect(seen.containerId).toBe(`c${i}`);
        break;
      }
    }
    expect(getEventListeners(app.signal, "abort")).toHaveLength(0);
    await fanout.close();
  });

  test("an abort ends the iteration at once; close ends the others", async () => {
    const fanout = new EventFanout(pino({ level: "silent" }));
    const controller = new AbortController();
    const aborted = fanout.subscribe(controller.signal)[Symbol.asyncIterator]();
    const closed = fanout.subscribe()[Symbol.asyncIterator]();
    const pending = aborted.next();
    controller.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    const waiting = closed.next();
    await fanout.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });
});
