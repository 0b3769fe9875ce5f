import { spawn } from "node:child_process";
import { expect, test } from "vitest";
import {
  OWNER_PID_LABEL,
  OWNER_START_LABEL,
  ownerAlive,
  ownerLabels,
  processStartTime,
} from "../../src/run/owner.js";

test("this process is alive under its own labels; a different start time is a recycled pid", () => {
  const labels = ownerLabels();
  expect(labels[OWNER_PID_LABEL]).toBe(String(process.pid));
  expect(labels[OWNER_START_LABEL]).toMatch(/^\d+$/);
  expect(ownerAlive(labels)).toBe(true);
  expect(ownerAlive({ ...labels, [OWNER_START_LABEL]: "1" })).toBe(false);
  // Labels that name no process are not taken as dead: nothing is reaped on a guess.
  expect(ownerAlive({})).toBe(true);
  expect(ownerAlive({ [OWNER_PID_LABEL]: "not-a-pid" })).toBe(true);
});

test("a process that exited is dead", async () => {
  const child = spawn("true");
  const pid = child.pid ?? 0;
  const start = processStartTime(pid);
  await new Promise((resolve) => child.once("exit", resolve));
  const labels = { [OWNER_PID_LABEL]: String(pid), ...(start ? { [OWNER_START_LABEL]: start } : {}) };
  expect(ownerAlive(labels)).toBe(false);
});
