/** The koffi bindings and HCS handle objects, one level below the client, against the fake. */

import { createHash } from "node:crypto";
import fs from "node:fs";
import koffi from "koffi";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HcsProcess } from "../../src/libcontainerd/local/hcs-process.js";
import { type HcsContext, HcsSystem } from "../../src/libcontainerd/local/hcs-system.js";
import { ERROR_VMCOMPUTE_OPERATION_PENDING } from "../../src/libcontainerd/local/hresult.js";
import {
  CallbackRegistration,
  CallbackRegistry,
  HcsNotification,
  NotificationMailbox,
} from "../../src/libcontainerd/local/notifications.js";
import { Vmcompute } from "../../src/libcontainerd/local/vmcompute.js";
import { NotImplementedError, UnavailableError } from "../../src/libcontainerd/types/errors.js";
import { ensureFakeLibrary, FAKE_LAYERS, FAKE_LIBRARY_RS1, FAKE_VOLUME, FakeControl } from "./fake.js";

let fake: FakeControl;
let api: Vmcompute;
let registry: CallbackRegistry;
let ctx: HcsContext;
let seq = 0;

const v2Document = JSON.stringify({
  Owner: "bindings-test",
  SchemaVersion: { Major: 2, Minor: 1 },
  ShouldTerminateOnLastHandleClosed: true,
  Container: { Storage: { Layers: [{ Id: "x", Path: FAKE_LAYERS[0] }], Path: FAKE_VOLUME } },
});
const id = () => `bind-${process.pid}-${++seq}`;

beforeAll(() => {
  const library = ensureFakeLibrary();
  fake = new FakeControl(library);
  registry = new CallbackRegistry();
  api = new Vmcompute({ library, onNotification: registry.dispatch });
  ctx = { api, callbacks: registry, logger: pino({ level: "silent" }), operationTimeoutMs: 10_000 };
});

afterEach(async () => {
  await fake.reset();
});

afterAll(async () => {
  expect(registry.size).toBe(0);
  api.close();
  const state = await fake.settled();
  fake.close();
  expect(state).toEqual({ liveAllocations: 0, openHandles: 0 });
});

describe("vmcompute bindings", () => {
  it("an asynchronous create returns pending with its handle filled in, and completes by notification", async () => {
    fake.setOption("AsyncDelayMs", 50);
    const name = id();
    const created = await api.createComputeSystem(name, v2Document);
    expect(created.hresult >>> 0).toBe(ERROR_VMCOMPUTE_OPERATION_PENDING);
    expect(created.system).not.toBe(0n);
    expect(created.result).toBeNull();

    const mailbox = new NotificationMailbox(name);
    const registration = await CallbackRegistration.register(
      api,
      registry,
      "system",
      created.system,
      mailbox,
    );
    const completed = await mailbox.wait(HcsNotification.SystemCreateCompleted, {
      timeoutMs: 5000,
      what: "create",
    });
    expect(completed.status).toBe(0);

    await registration.unregister();
    expect(await api.closeComputeSystem(created.system)).toBe(0);
  });

  it("decodes out-strings and frees each with the library's CoTaskMemFree", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const before = fake.liveAllocations();
    for (let i = 0; i < 20; i++) {
      const props = await system.properties<{ State?: string; Owner?: string }>({});
      expect(props).toMatchObject({ State: "Running", Owner: "bindings-test" });
    }
    expect(fake.liveAllocations()).toBe(before);
    await system.terminateAndClose();
  });

  it("a failing call's ResultError is decoded and freed too", async () => {
    const before = fake.liveAllocations();
    const opened = await api.openComputeSystem("does-not-exist");
    expect(opened.hresult >>> 0).toBe(0xc037010e);
    expect(opened.result).toContain('"Error"');
    expect(fake.liveAllocations()).toBe(before);
    await expect(HcsSystem.open(ctx, "does-not-exist")).rejects.toMatchObject({
      code: "not_found",
      origin: { hresultName: "ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND" },
    });
  });

  it("a missing export is NotImplementedError, found only when used (an RS1-era library)", async () => {
    const rs1 = new Vmcompute({ library: FAKE_LIBRARY_RS1, onNotification: () => {} });
    try {
      expect(rs1.has("HcsCreateProcess")).toBe(true);
      expect(rs1.has("HcsSignalProcess")).toBe(false);
      expect(rs1.has("NameToGuid")).toBe(false);
      await expect(rs1.nameToGuid("layer")).rejects.toBeInstanceOf(NotImplementedError);
      await expect(rs1.signalProcess(1n, "{}")).rejects.toBeInstanceOf(NotImplementedError);
    } finally {
      rs1.close();
    }
  });

  it("NameToGuid fills a Windows GUID struct that decodes to the canonical string", async () => {
    // The fake's documented value: a version-5 UUID of the name in its namespace (fake.h).
    const ns = Buffer.from("1a3b2c4d5e6f4a0b8c9d0e1f2a3b4c5d", "hex");
    const digest = createHash("sha1").update(ns).update("base-layer", "utf8").digest();
    digest[6] = (digest[6]! & 0x0f) | 0x50;
    digest[8] = (digest[8]! & 0x3f) | 0x80;
    const hex = digest.subarray(0, 16).toString("hex");
    const expected = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    expect(await api.nameToGuid("base-layer")).toBe(expected);
    expect(await api.nameToGuid("base-layer")).toBe(expected);
    expect(await api.nameToGuid("other")).not.toBe(expected);
  });

  it("an exit that happened before the callback was registered is replayed to it", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const { process: handle, info } = await system.createProcessHandle({
      CommandLine: 'sh -c "exit 6"',
      ConsoleSize: [0, 0],
    });
    expect(info.processId).toBeGreaterThan(0);
    expect([info.stdInput, info.stdOutput, info.stdError]).toEqual([0n, 0n, 0n]);
    // Long after the process is gone.
    await new Promise((r) => setTimeout(r, 300));
    const mailbox = new NotificationMailbox("late");
    const registration = await CallbackRegistration.register(api, registry, "process", handle, mailbox);
    const exited = await mailbox.wait(HcsNotification.ProcessExited, { timeoutMs: 5000, what: "exit" });
    expect(exited.status).toBe(0);
    const props = await api.getProcessProperties(handle);
    expect(JSON.parse(props.properties!)).toMatchObject({ Exited: true, ExitCode: 6 });
    await registration.unregister();
    expect(await api.closeProcess(handle)).toBe(0);
    await system.terminateAndClose();
  });

  it("HcsProcess reads the exit code after ProcessExited; after close the exit stays known, calls fail", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const { process } = await HcsProcess.create(
      system,
      { CommandLine: 'sh -c "exit 3"', ConsoleSize: [0, 0] },
      () => {},
    );
    await process.waitExited();
    expect(await process.exitCode()).toBe(3);
    await process.close();
    await expect(process.waitExited()).resolves.toBeUndefined();
    await expect(process.exitCode()).rejects.toMatchObject({ code: "failed_precondition" });
    await system.terminateAndClose();
  });

  it("ServiceDisconnect ends a pending wait with UnavailableError", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const { process } = await HcsProcess.create(
      system,
      { CommandLine: "sleep 30", ConsoleSize: [0, 0] },
      () => {},
    );
    const waiting = process.waitExited();
    fake.serviceDisconnect();
    await expect(waiting).rejects.toBeInstanceOf(UnavailableError);
    await process.terminate();
    await process.close();
    await system.terminateAndClose();
  });

  it("HCS_PROCESS_INFORMATION is the 32-byte x64 layout", () => {
    expect(koffi.sizeof("HcsProcessInformation")).toBe(32);
    expect(koffi.offsetof("HcsProcessInformation", "StdInput")).toBe(8);
    expect(koffi.offsetof("HcsProcessInformation", "StdError")).toBe(24);
  });

  it("unregistering while a callback waits for the main thread does not deadlock", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const { process } = await HcsProcess.create(
      system,
      { CommandLine: "true", ConsoleSize: [0, 0] },
      () => {},
    );
    // Hold the main thread so the exit callback is queued to it, blocking the fake's dispatcher thread.
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // busy
    }
    const started = Date.now();
    await process.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await system.terminateAndClose();
  });

  it("many concurrent systems and processes keep their notifications apart", async () => {
    const systems = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const system = await HcsSystem.create(ctx, id(), v2Document);
        await system.start();
        return system;
      }),
    );
    const codes = await Promise.all(
      systems.map(async (system, i) => {
        const { process } = await HcsProcess.create(
          system,
          { CommandLine: `sh -c "exit ${i + 10}"`, ConsoleSize: [0, 0] },
          () => {},
        );
        await process.waitExited();
        const code = await process.exitCode();
        await process.close();
        return code;
      }),
    );
    expect(codes).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    await Promise.all(systems.map((s) => s.terminateAndClose()));
  });

  it("a call blocked in HCS holds only its own thread: threads grow past 4 while calls block, and shrink back", async () => {
    const system = await HcsSystem.create(ctx, id(), v2Document);
    await system.start();
    const processes = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const { process } = await HcsProcess.create(
          system,
          { CommandLine: `sh -c "trap '' INT; exec sleep 1000"`, ConsoleSize: [0, 0] },
          () => {},
        );
        return process;
      }),
    );
    // The fake runs them on this host: wait until each ignores SIGINT (has exec'd sleep), or a CtrlC that
    // lands before the trap ends it and its HcsSignalProcess never blocks (seen under load).
    for (const p of processes) {
      const comm = () => fs.readFileSync(`/proc/${p.pid}/comm`, "utf8").trim();
      for (let i = 0; i < 2000 && comm() !== "sleep"; i++) await new Promise((r) => setTimeout(r, 10));
      expect(comm()).toBe("sleep");
    }
    fake.setOption("BlockSignalProcess", 1);
    let signals: Promise<boolean>[] = [];
    try {
      signals = processes.map((p) => p.signal({ Signal: "CtrlC" }));
      for (let i = 0; i < 2000 && fake.blockedCalls() < 6; i++) await new Promise((r) => setTimeout(r, 10));
      expect(fake.blockedCalls()).toBe(6);
      expect(api.threadStats.busy).toBe(6);
      // Other calls still run, on more threads.
      expect(await api.nameToGuid("still-served")).toMatch(/^[0-9a-f-]{36}$/);
      expect(api.threadStats.threads).toBeGreaterThan(6);
    } finally {
      fake.setOption("BlockSignalProcess", 0);
    }
    expect(await Promise.all(signals)).toEqual([true, true, true, true, true, true]);
    // Idle threads beyond the 4 kept are retired as their calls return.
    expect(api.threadStats).toEqual({ threads: 4, busy: 0 });
    for (const p of processes) {
      await p.terminate();
      await p.waitExited();
      await p.close();
    }
    await system.terminateAndClose();
  });
});
