import { describe, expect, it } from "vitest";
import {
  CallbackRegistry,
  HcsNotification,
  NotificationMailbox,
} from "../../src/libcontainerd/local/notifications.js";
import {
  CanceledError,
  DeadlineExceededError,
  FailedPreconditionError,
  UnavailableError,
} from "../../src/libcontainerd/types/errors.js";

const what = "test wait";

describe("NotificationMailbox", () => {
  it("a completion that arrived before the wait is consumed by exactly one wait", async () => {
    const box = new NotificationMailbox("sys");
    box.deliver({ type: HcsNotification.SystemPauseCompleted, status: 0, data: null });
    await expect(box.wait(HcsNotification.SystemPauseCompleted, { what })).resolves.toMatchObject({
      status: 0,
    });
    await expect(
      box.wait(HcsNotification.SystemPauseCompleted, { what, timeoutMs: 20 }),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
  });

  it("exits are sticky: every waiter sees them", async () => {
    const box = new NotificationMailbox("proc");
    box.deliver({ type: HcsNotification.ProcessExited, status: 0, data: null });
    await box.wait(HcsNotification.ProcessExited, { what });
    await box.wait(HcsNotification.ProcessExited, { what });
    expect(box.has(HcsNotification.ProcessExited)).toBe(true);
  });

  it("SystemExited interrupts a wait for a completion; ServiceDisconnect is Unavailable", async () => {
    const box = new NotificationMailbox("sys");
    const start = box.wait(HcsNotification.SystemStartCompleted, {
      what,
      interruptOn: [HcsNotification.SystemExited, HcsNotification.ServiceDisconnect],
    });
    box.deliver({ type: HcsNotification.SystemExited, status: 0xc0370106 | 0, data: null });
    await expect(start).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(start).rejects.toThrow(/ERROR_VMCOMPUTE_UNEXPECTED_EXIT/);

    const other = new NotificationMailbox("proc");
    const exit = other.wait(HcsNotification.ProcessExited, {
      what,
      interruptOn: [HcsNotification.ServiceDisconnect],
    });
    other.deliver({ type: HcsNotification.ServiceDisconnect, status: 0, data: null });
    await expect(exit).rejects.toBeInstanceOf(UnavailableError);
  });

  it("honours abort signals and close", async () => {
    const box = new NotificationMailbox("sys");
    const abort = new AbortController();
    const waiting = box.wait(HcsNotification.SystemExited, { what, signal: abort.signal });
    abort.abort();
    await expect(waiting).rejects.toBeInstanceOf(CanceledError);
    await expect(
      box.wait(HcsNotification.SystemExited, { what, signal: AbortSignal.timeout(10) }),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
    const pending = box.wait(HcsNotification.SystemExited, { what });
    box.close(new UnavailableError("closed"));
    await expect(pending).rejects.toThrow("closed");
    await expect(box.wait(HcsNotification.SystemExited, { what })).rejects.toThrow("closed");
  });
});

describe("CallbackRegistry", () => {
  it("routes by context key, masks notification flags, and drops unknown keys", async () => {
    const registry = new CallbackRegistry();
    const a = new NotificationMailbox("a");
    const b = new NotificationMailbox("b");
    const keyA = registry.allocate(a);
    const keyB = registry.allocate(b);
    expect(keyA).not.toBe(0n);
    registry.dispatch(HcsNotification.ProcessExited | 0x80000000, keyB, 0, null);
    registry.dispatch(HcsNotification.ProcessExited, 999n, 0, null);
    expect(a.has(HcsNotification.ProcessExited)).toBe(false);
    expect(b.has(HcsNotification.ProcessExited)).toBe(true);
    registry.release(keyA);
    registry.release(keyB);
    expect(registry.size).toBe(0);
  });
});
