import { describe, expect, test } from "vitest";
import { HangDetector, RestartSchedule } from "../../src/libcontainerd/supervisor/restart-policy.js";

const policy = { unhealthyThreshold: 3, minProgressTicks: 2, maxBusyMs: 10_000 };
const quiet = { stopped: false, lastAnswerAt: undefined };

describe("HangDetector", () => {
  test("a stopped containerd is hung at the threshold", () => {
    const hang = new HangDetector(policy);
    expect(hang.unanswered({ ...quiet, stopped: true, cpuTicks: 10, now: 0 })).toEqual({ kind: "waiting" });
    expect(hang.unanswered({ ...quiet, stopped: true, cpuTicks: 50, now: 1 })).toEqual({ kind: "waiting" });
    expect(hang.unanswered({ ...quiet, stopped: true, cpuTicks: 90, now: 2 })).toEqual({
      kind: "hung",
      reason: "stopped",
    });
  });

  test("CPU time that stands still over the failed checks is hung; moving CPU time is busy", () => {
    const still = new HangDetector(policy);
    for (const now of [0, 1]) still.unanswered({ ...quiet, cpuTicks: 100, now });
    expect(still.unanswered({ ...quiet, cpuTicks: 101, now: 2 })).toEqual({
      kind: "hung",
      reason: "no-progress",
    });

    const busy = new HangDetector(policy);
    for (const now of [0, 1]) busy.unanswered({ ...quiet, cpuTicks: 100, now });
    expect(busy.unanswered({ ...quiet, cpuTicks: 140, now: 2 })).toEqual({
      kind: "busy",
      progressTicks: 40,
      answeredOtherCalls: false,
    });
    expect(busy.consecutiveFailures).toBe(0);
  });

  test("another call answered during the failed checks counts as progress", () => {
    const hang = new HangDetector(policy);
    hang.unanswered({ ...quiet, cpuTicks: 5, now: 100 });
    hang.unanswered({ ...quiet, cpuTicks: 5, now: 200 });
    expect(hang.unanswered({ stopped: false, cpuTicks: 5, lastAnswerAt: 250, now: 300 })).toMatchObject({
      kind: "busy",
      answeredOtherCalls: true,
    });
    // An answer from before the window is not progress in it.
    const stale = new HangDetector(policy);
    for (const now of [100, 200]) stale.unanswered({ ...quiet, cpuTicks: 5, lastAnswerAt: 50, now });
    expect(stale.unanswered({ stopped: false, cpuTicks: 5, lastAnswerAt: 50, now: 300 })).toMatchObject({
      kind: "hung",
    });
  });

  test("busy and then still is hung in the next window; busy for longer than maxBusyMs is hung", () => {
    const hang = new HangDetector(policy);
    for (const now of [0, 1]) hang.unanswered({ ...quiet, cpuTicks: 0, now });
    expect(hang.unanswered({ ...quiet, cpuTicks: 50, now: 2 }).kind).toBe("busy");
    for (const now of [3, 4]) expect(hang.unanswered({ ...quiet, cpuTicks: 50, now }).kind).toBe("waiting");
    expect(hang.unanswered({ ...quiet, cpuTicks: 50, now: 5 })).toEqual({
      kind: "hung",
      reason: "no-progress",
    });

    const livelock = new HangDetector(policy);
    let ticks = 0;
    let verdict = livelock.unanswered({ ...quiet, cpuTicks: ticks, now: 0 });
    for (let now = 1_000; verdict.kind !== "hung"; now += 1_000) {
      ticks += 100;
      verdict = livelock.unanswered({ ...quiet, cpuTicks: ticks, now });
      expect(now).toBeLessThanOrEqual(12_000);
    }
    expect(verdict).toEqual({ kind: "hung", reason: "busy-too-long" });
  });

  test("an answered check starts over", () => {
    const hang = new HangDetector(policy);
    for (const now of [0, 1]) hang.unanswered({ ...quiet, cpuTicks: 0, now });
    hang.answered();
    expect(hang.unanswered({ ...quiet, cpuTicks: 0, now: 2 })).toEqual({ kind: "waiting" });
  });
});

test("RestartSchedule doubles up to the cap and starts over after a stable run", () => {
  const schedule = new RestartSchedule({ initialMs: 100, maxMs: 500, resetAfterMs: 10_000 });
  schedule.beginRestart(0, 1_000);
  expect([1, 2, 3, 4, 5].map(() => schedule.nextDelayMs())).toEqual([100, 200, 400, 500, 500]);
  schedule.beginRestart(5_000, 9_000);
  expect(schedule.nextDelayMs()).toBe(500);
  schedule.beginRestart(5_000, 15_000);
  expect(schedule.nextDelayMs()).toBe(100);
});
