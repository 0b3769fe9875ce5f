/**
 * The fake vmcompute.dll (native/fake-vmcompute) through real koffi bindings: the ABI and the
 * behaviours the local backend relies on — pending + completion notification, sticky exit replay,
 * failure injection with ResultError documents, real processes with stdio fds, CommandLineToArgvW
 * splitting of Go-escaped command lines, Unregister vs in-flight callbacks, and no leaks.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import koffi from "koffi";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const FAKE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../native/fake-vmcompute");
const LIBRARY = path.join(FAKE_DIR, "build/libfakevmcompute.so");

const PENDING = 0xc0370103;
const INVALID_STATE = 0xc0370105;
const INVALID_JSON = 0xc037010d;
const E_INVALIDARG = 0x80070057;
const NOT_FOUND = 0xc037010e;
const ALREADY_STOPPED = 0xc0370110;
const ERROR_TIMEOUT = 0x800705b4;
const E_ACCESSDENIED = 0x80070005;

const SystemExited = 0x1;
const SystemCreateCompleted = 0x2;
const SystemStartCompleted = 0x3;
const ProcessExited = 0x10000;

type Handle = bigint;
type NativeFn = ((...args: unknown[]) => unknown) & {
  async: (...args: unknown[]) => void;
};
interface ProcessInformation {
  ProcessId: number;
  Reserved: number;
  StdInput: unknown;
  StdOutput: unknown;
  StdError: unknown;
}
interface Notification {
  type: number;
  ctx: bigint;
  status: number;
  data: string | null;
}

/** Go's syscall.EscapeArg, what hcsshim (and the local backend) use to build CommandLine. */
function escapeArg(s: string): string {
  if (s.length === 0) return '""';
  const hasSpace = /[ \t]/.test(s);
  if (!hasSpace && !/["\\]/.test(s)) return s;
  let out = hasSpace ? '"' : "";
  let slashes = 0;
  for (const ch of s) {
    if (ch === "\\") slashes++;
    else if (ch === '"') {
      out += "\\".repeat(slashes + 1);
      slashes = 0;
    } else slashes = 0;
    out += ch;
  }
  if (hasSpace) out += `${"\\".repeat(slashes)}"`;
  return out;
}

class Fake {
  private readonly lib: ReturnType<typeof koffi.load>;
  private readonly fns = new Map<string, NativeFn>();
  private readonly callback: bigint;
  readonly events: Notification[] = [];
  private waiters: Array<() => void> = [];

  constructor(file: string) {
    this.lib = koffi.load(file);
    koffi.struct("FakeHcsProcessInformation", {
      ProcessId: "uint32",
      Reserved: "uint32",
      StdInput: "void *",
      StdOutput: "void *",
      StdError: "void *",
    });
    const proto = koffi.proto(
      "void FakeHcsNotificationCallback(uint32 type, void *ctx, int32 status, void *data)",
    );
    this.callback = koffi.register((type: number, ctx: bigint | null, status: number, data: unknown) => {
      this.events.push({
        type,
        ctx: ctx ?? 0n,
        status: status >>> 0,
        data: data ? koffi.decode.string16(data) : null,
      });
      for (const w of this.waiters.splice(0)) w();
    }, koffi.pointer(proto));
    const decls = [
      "int32 HcsCreateComputeSystem(str16 id, str16 configuration, void *identity, _Out_ void **computeSystem, _Out_ void **result)",
      "int32 HcsOpenComputeSystem(str16 id, _Out_ void **computeSystem, _Out_ void **result)",
      "int32 HcsCloseComputeSystem(void *computeSystem)",
      "int32 HcsStartComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
      "int32 HcsShutdownComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
      "int32 HcsTerminateComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
      "int32 HcsGetComputeSystemProperties(void *computeSystem, str16 query, _Out_ void **properties, _Out_ void **result)",
      "int32 HcsEnumerateComputeSystems(str16 query, _Out_ void **computeSystems, _Out_ void **result)",
      "int32 HcsRegisterComputeSystemCallback(void *computeSystem, FakeHcsNotificationCallback *cb, void *ctx, _Out_ void **callbackHandle)",
      "int32 HcsUnregisterComputeSystemCallback(void *callbackHandle)",
      "int32 HcsCreateProcess(void *computeSystem, str16 parameters, _Out_ FakeHcsProcessInformation *info, _Out_ void **process, _Out_ void **result)",
      "int32 HcsOpenProcess(void *computeSystem, uint32 pid, _Out_ void **process, _Out_ void **result)",
      "int32 HcsCloseProcess(void *process)",
      "int32 HcsTerminateProcess(void *process, _Out_ void **result)",
      "int32 HcsSignalProcess(void *process, str16 options, _Out_ void **result)",
      "int32 HcsGetProcessProperties(void *process, _Out_ void **properties, _Out_ void **result)",
      "int32 HcsModifyProcess(void *process, str16 settings, _Out_ void **result)",
      "int32 HcsModifyComputeSystem(void *computeSystem, str16 configuration, _Out_ void **result)",
      "int32 HcsRegisterProcessCallback(void *process, FakeHcsNotificationCallback *cb, void *ctx, _Out_ void **callbackHandle)",
      "int32 HcsUnregisterProcessCallback(void *callbackHandle)",
      "void CoTaskMemFree(void *pv)",
      "int32 FakeGetLiveAllocations(void)",
      "int32 FakeGetOpenHandles(void)",
      "int32 FakeGetLastCreateDocument(_Out_ void **doc)",
      "void FakeInjectFailure(str16 exportName, int32 hresult, str16 resultErrorJson)",
      "void FakeSetOption(str16 key, int32 value)",
      "void FakeReset(void)",
    ];
    for (const decl of decls) {
      const name = /\s(\w+)\(/.exec(decl)![1]!;
      this.fns.set(name, this.lib.func(decl) as unknown as NativeFn);
    }
  }

  fn(name: string): NativeFn {
    const f = this.fns.get(name);
    if (!f) throw new Error(`not declared: ${name}`);
    return f;
  }

  call(name: string, ...args: unknown[]): number {
    return (this.fn(name)(...args) as number) >>> 0;
  }

  /** On a koffi worker thread: for calls that may wait for callbacks (Unregister, Reset). */
  callAsync(name: string, ...args: unknown[]): Promise<number> {
    return new Promise((resolve, reject) =>
      this.fn(name).async(...args, (err: unknown, r: number) => (err ? reject(err) : resolve(r >>> 0))),
    );
  }

  /** Decodes and frees an out string (always through the library's CoTaskMemFree). */
  take(ptr: unknown): string | null {
    if (!ptr) return null;
    try {
      return koffi.decode.string16(ptr);
    } finally {
      this.fn("CoTaskMemFree")(ptr);
    }
  }

  /** Calls an export whose last parameter is `PWSTR* result`; returns the HRESULT and the decoded result. */
  withResult(name: string, ...args: unknown[]): { hr: number; result: string | null } {
    const result: [unknown] = [null];
    const hr = this.call(name, ...args, result);
    return { hr, result: this.take(result[0]) };
  }

  register(kind: "system" | "process", handle: Handle, ctx: number): Handle {
    const out: [unknown] = [null];
    const name = kind === "system" ? "HcsRegisterComputeSystemCallback" : "HcsRegisterProcessCallback";
    expect(this.call(name, handle, this.callback, ctx, out)).toBe(0);
    return out[0] as Handle;
  }

  async unregister(kind: "system" | "process", cb: Handle): Promise<number> {
    const name = kind === "system" ? "HcsUnregisterComputeSystemCallback" : "HcsUnregisterProcessCallback";
    return this.callAsync(name, cb);
  }

  /** Waits for (and consumes) a notification; a timer keeps the event loop alive meanwhile. */
  async next(ctx: number, type: number, timeoutMs = 5000): Promise<Notification> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.ctx === BigInt(ctx) && e.type === type);
      if (i >= 0) return this.events.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no notification 0x${type.toString(16)} for context ${ctx}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  createSystem(id: string, doc: object): { hr: number; handle: Handle; result: string | null } {
    const out: [unknown] = [null];
    const { hr, result } = this.withResult("HcsCreateComputeSystem", id, JSON.stringify(doc), null, out);
    return { hr, handle: out[0] as Handle, result };
  }

  createProcess(sys: Handle, params: object) {
    const info = {} as ProcessInformation;
    const out: [unknown] = [null];
    const { hr, result } = this.withResult("HcsCreateProcess", sys, JSON.stringify(params), info, out);
    return { hr, result, info, handle: out[0] as Handle };
  }

  processStatus(proc: Handle): {
    ProcessId: number;
    Exited: boolean;
    ExitCode: number;
    LastWaitResult: number;
  } {
    const out: [unknown] = [null];
    const { hr } = this.withResult("HcsGetProcessProperties", proc, out);
    expect(hr).toBe(0);
    return JSON.parse(this.take(out[0])!);
  }

  liveAllocations(): number {
    return this.call("FakeGetLiveAllocations");
  }

  openHandles(): number {
    return this.call("FakeGetOpenHandles");
  }

  dispose(): void {
    koffi.unregister(this.callback);
  }
}

/** Reads a pipe fd the fake handed over until EOF (the socket owns and closes the fd). */
function readFd(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = new net.Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", reject);
    sock.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function fdOf(handle: unknown): number {
  return Number(handle as bigint);
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A process-isolated v1 container: its volume without the trailing backslash, and its read-only layers. */
const V1_CONTAINER = {
  SystemType: "Container",
  Name: "x",
  VolumePath: "\\\\?\\Volume{00000000-0000-0000-0000-000000000000}",
  Layers: [{ ID: "b6f5c1a2-0000-4000-8000-000000000001", Path: "C:\\layers\\base" }],
  HvPartition: false,
};

const V2_CONTAINER = {
  Owner: "fake-vmcompute.test",
  SchemaVersion: { Major: 2, Minor: 1 },
  Container: {
    Storage: {
      Layers: [{ Id: "b6f5c1a2-0000-4000-8000-000000000001", Path: "C:\\layers\\base" }],
      Path: "\\\\?\\Volume{00000000-0000-0000-0000-000000000000}\\",
    },
  },
  ShouldTerminateOnLastHandleClosed: true,
};

let fake: Fake | undefined;
let unavailable: string | undefined;

beforeAll(() => {
  if (!fs.existsSync(LIBRARY)) {
    try {
      execFileSync("make", ["-C", FAKE_DIR], { stdio: "pipe" });
    } catch (err) {
      unavailable = `make -C ${FAKE_DIR} failed: ${(err as Error).message}`;
    }
  }
  if (!fs.existsSync(LIBRARY)) {
    unavailable ??= `${LIBRARY} is missing`;
    // In CI a missing library is a failure, never a skip.
    if (/^(true|1)$/i.test(process.env.CI ?? "")) throw new Error(unavailable);
    return;
  }
  fake = new Fake(LIBRARY);
});

afterAll(async () => {
  if (!fake) return;
  await fake.callAsync("FakeReset");
  fake.dispose();
});

function f(ctx: { skip: (note?: string) => void }): Fake {
  if (!fake) ctx.skip(unavailable);
  return fake!;
}

describe("fake vmcompute through koffi", () => {
  let ids = 0;
  const newId = () => `fvt-${process.pid}-${++ids}`;

  async function runningSystem(x: Fake, ctx: number): Promise<{ sys: Handle; cb: Handle; id: string }> {
    const id = newId();
    const { hr, handle } = x.createSystem(id, V2_CONTAINER);
    expect(hr).toBe(PENDING);
    const cb = x.register("system", handle, ctx);
    await x.next(ctx, SystemCreateCompleted);
    expect(x.withResult("HcsStartComputeSystem", handle, "").hr).toBe(PENDING);
    expect((await x.next(ctx, SystemStartCompleted)).status).toBe(0);
    return { sys: handle, cb, id };
  }

  async function teardown(x: Fake, kind: "system" | "process", cb: Handle, handle: Handle): Promise<void> {
    expect(await x.unregister(kind, cb)).toBe(0);
    expect(x.call(kind === "system" ? "HcsCloseComputeSystem" : "HcsCloseProcess", handle)).toBe(0);
  }

  afterEach(async () => {
    if (fake) await fake.callAsync("FakeReset");
  });

  it("returns pending with the handle filled in, then delivers the completion asynchronously", async (ctx) => {
    const x = f(ctx);
    const id = newId();
    const { hr, handle, result } = x.createSystem(id, V2_CONTAINER);
    expect(hr).toBe(PENDING);
    expect(typeof handle).toBe("bigint");
    expect(handle).not.toBe(0n);
    expect(result).toBeNull();
    expect(x.events).toHaveLength(0); // nothing runs on the calling thread
    const cb = x.register("system", handle, 1);
    const done = await x.next(1, SystemCreateCompleted);
    expect(done).toMatchObject({ status: 0, data: null, ctx: 1n });

    const lastDoc: [unknown] = [null];
    expect(x.call("FakeGetLastCreateDocument", lastDoc)).toBe(0);
    expect(JSON.parse(x.take(lastDoc[0])!)).toEqual(V2_CONTAINER);

    const props: [unknown] = [null];
    expect(x.withResult("HcsGetComputeSystemProperties", handle, "{}", props).hr).toBe(0);
    expect(JSON.parse(x.take(props[0])!)).toMatchObject({
      Id: id,
      SystemType: "Container",
      RuntimeOsType: "Windows",
      Owner: "fake-vmcompute.test",
      State: "Created",
      Stopped: false,
    });
    expect(x.withResult("HcsStartComputeSystem", handle, "").hr).toBe(PENDING);
    expect((await x.next(1, SystemStartCompleted)).status).toBe(0);
    expect(x.withResult("HcsStartComputeSystem", handle, "").hr).toBe(INVALID_STATE);

    expect(x.withResult("HcsShutdownComputeSystem", handle, "").hr).toBe(PENDING);
    const exited = await x.next(1, SystemExited);
    expect(exited.status).toBe(0);
    expect(x.withResult("HcsShutdownComputeSystem", handle, "").hr).toBe(ALREADY_STOPPED);
    await teardown(x, "system", cb, handle);
    // A stopped system disappears with its last handle.
    expect(x.withResult("HcsOpenComputeSystem", id, [null]).hr).toBe(NOT_FOUND);
  });

  it("runs a real process: pid, stdout/stderr through the returned fds, exit code", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 2);
    const p = x.createProcess(sys, {
      CommandLine: 'sh -c "echo hello; echo oops >&2; exit 3"',
      CreateStdOutPipe: true,
      CreateStdErrPipe: true,
      ConsoleSize: [0, 0],
    });
    expect(p.hr).toBe(0);
    expect(p.info.ProcessId).toBeGreaterThan(0);
    expect(p.info.StdInput).toBeNull();
    const [out, err] = await Promise.all([readFd(fdOf(p.info.StdOutput)), readFd(fdOf(p.info.StdError))]);
    expect(out).toBe("hello\n");
    expect(err).toBe("oops\n");
    const pcb = x.register("process", p.handle, 20);
    expect((await x.next(20, ProcessExited)).status).toBe(0);
    expect(x.processStatus(p.handle)).toEqual({
      ProcessId: p.info.ProcessId,
      Exited: true,
      ExitCode: 3,
      LastWaitResult: 0,
    });
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);
  });

  it("replays an exit that happened before the callback was registered", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 3);
    const p = x.createProcess(sys, { CommandLine: 'sh -c "exit 7"' });
    expect(p.hr).toBe(0);
    await waitFor(() => (x.processStatus(p.handle).Exited ? true : undefined));
    const pcb = x.register("process", p.handle, 30);
    const exit = await x.next(30, ProcessExited);
    expect(exit.status).toBe(0);
    expect(x.processStatus(p.handle).ExitCode).toBe(7);
    // A second registration gets it too, once.
    const pcb2 = x.register("process", p.handle, 31);
    await x.next(31, ProcessExited);
    await new Promise((r) => setTimeout(r, 50));
    expect(x.events.filter((e) => e.ctx === 31n || e.ctx === 30n)).toHaveLength(0);
    expect(await x.unregister("process", pcb2)).toBe(0);
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);
  });

  it("signals: a Windows guest takes only the console events, an exited process is INVALID_STATE (not delivered)", async (ctx) => {
    const x = f(ctx);
    const { sys, cb, id } = await runningSystem(x, 4);
    const cases: Array<[string, number]> = [
      ['{"Signal":"CtrlC"}', 130],
      ['{"Signal":"CtrlBreak"}', 131],
      ['{"Signal":"CtrlShutdown"}', 143],
      ['{"Signal":"CtrlClose"}', 129],
    ];
    for (const [i, [options, code]] of cases.entries()) {
      const p = x.createProcess(sys, { CommandLine: "sleep 30" });
      expect(p.hr).toBe(0);
      const pcb = x.register("process", p.handle, 40 + i);
      // SignalProcessOptionsWCOW only: a number, a POSIX name or an extra field is invalid JSON.
      for (const bad of ['{"Signal":15}', '{"Signal":"SIGTERM"}', '{"Signal":"CtrlC","Extra":1}']) {
        expect(x.withResult("HcsSignalProcess", p.handle, bad).hr, bad).toBe(INVALID_JSON);
      }
      expect(x.withResult("HcsSignalProcess", p.handle, options).hr).toBe(0);
      await x.next(40 + i, ProcessExited);
      expect(x.processStatus(p.handle).ExitCode).toBe(code);
      expect(x.withResult("HcsSignalProcess", p.handle, options).hr).toBe(INVALID_STATE);
      await teardown(x, "process", pcb, p.handle);
    }
    // hcsshim's Kill: a second system handle, HcsOpenProcess, HcsTerminateProcess.
    const p = x.createProcess(sys, { CommandLine: "sleep 30" });
    const sys2: [unknown] = [null];
    expect(x.withResult("HcsOpenComputeSystem", id, sys2).hr).toBe(0);
    const proc2: [unknown] = [null];
    expect(x.withResult("HcsOpenProcess", sys2[0], p.info.ProcessId, proc2).hr).toBe(0);
    const pcb = x.register("process", p.handle, 49);
    expect(x.withResult("HcsTerminateProcess", proc2[0]).hr).toBe(0);
    await x.next(49, ProcessExited);
    expect(x.processStatus(p.handle).ExitCode).toBe(137);
    expect(x.call("HcsCloseProcess", proc2[0])).toBe(0);
    expect(x.call("HcsCloseComputeSystem", sys2[0])).toBe(0);
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);
  });

  it("validates documents field by field: unknown fields and wrong shapes are INVALID_JSON naming the field", async (ctx) => {
    const x = f(ctx);
    const v1 = V1_CONTAINER;
    const cases: Array<[object, string]> = [
      [{ ...v1, Endpoints: ["a"] }, "unknown field Endpoints in ContainerConfig"],
      [
        { ...v1, MappedDirectories: [{ HostPath: "C:\\a", ContainerPath: "C:\\b", RO: true }] },
        "MappedDirectories[0].RO",
      ],
      [{ ...v1, ProcessorCount: -1 }, "ProcessorCount must be an unsigned integer"],
      [{ ...v1, EndpointList: "a,b" }, "EndpointList must be an array of strings"],
      [{ ...v1, ContainerType: "Linux" }, "HvPartition: true"],
      [
        { ...v1, ContainerType: "Linux", HvPartition: true, HvRuntime: { ImagePath: "C:\\lcow" } },
        "LinuxKernelFile",
      ],
      [
        { ...V2_CONTAINER, Container: { Networking: { EndpointList: ["e"] } } },
        "unknown field Container.Networking.EndpointList in Networking",
      ],
      [{ ...V2_CONTAINER, Container: { Memory: { SizeInMB: "512" } } }, "Container.Memory.SizeInMB"],
      [{ ...V2_CONTAINER, Containr: {} }, "unknown field Containr in ComputeSystem"],
    ];
    for (const [doc, message] of cases) {
      const r = x.createSystem(newId(), doc);
      expect(r.hr, message).toBe(INVALID_JSON);
      expect(JSON.parse(r.result!).ErrorEvents[0].Message).toContain(message);
      expect(r.handle).toBeNull();
    }
    // Go's decoder matches keys case-insensitively; so does the fake.
    const { HvPartition: _, Layers, Name: __, SystemType: ___, ...rest } = v1;
    const ok = x.createSystem(newId(), {
      ...rest,
      hvpartition: false,
      layers: Layers,
      name: "y",
      systemtype: "Container",
    });
    expect(ok.hr).toBe(PENDING);
    expect(x.call("HcsCloseComputeSystem", ok.handle)).toBe(0);

    // Process parameters follow the system's schema: a v2 ProcessParameters has no LCOW fields.
    const { sys, cb } = await runningSystem(x, 8);
    for (const [params, message] of [
      [{ CommandLine: "true", Bogus: 1 }, "unknown field Bogus in ProcessParameters"],
      [{ CommandLine: "true", CreateInUtilityVm: true }, "unknown field CreateInUtilityVm"],
      [{ CommandLine: "true", Environment: { A: 1 } }, "Environment.A must be a string"],
      [{ CommandLine: "true", ConsoleSize: [1] }, "ConsoleSize must be [Height, Width]"],
    ] as Array<[object, string]>) {
      const r = x.createProcess(sys, params);
      expect(r.hr, message).toBe(INVALID_JSON);
      expect(JSON.parse(r.result!).ErrorEvents[0].Message).toContain(message);
    }
    // Queries and modify requests too (PropertyQuery, ComputeSystemQuery, ProcessModifyRequest).
    const out: [unknown] = [null];
    const props = x.withResult(
      "HcsGetComputeSystemProperties",
      sys,
      '{"PropertyTypes":["Statistics"],"Type":1}',
      out,
    );
    expect(props.hr).toBe(INVALID_JSON);
    expect(props.result).toContain("unknown field Type in PropertyQuery");
    const list = x.withResult("HcsEnumerateComputeSystems", '{"Owner":["a"]}', out);
    expect(list.hr).toBe(INVALID_JSON);
    expect(list.result).toContain("unknown field Owner in ComputeSystemQuery");
    const p = x.createProcess(sys, { CommandLine: "sleep 30" });
    const modify = x.withResult(
      "HcsModifyProcess",
      p.handle,
      '{"Operation":"ConsoleSize","ConsoleSize":{"Rows":1}}',
    );
    expect(modify.hr).toBe(INVALID_JSON);
    expect(modify.result).toContain("unknown field ConsoleSize.Rows in ConsoleSize");
    const pcb = x.register("process", p.handle, 81);
    expect(x.withResult("HcsTerminateProcess", p.handle).hr).toBe(0);
    await x.next(81, ProcessExited);
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);
  });

  it("refuses storage (and registry values) hcsshim and moby never send: v1 VolumePath with its trailing backslash, v2 Path without, no layers", async (ctx) => {
    const x = f(ctx);
    const volume = V1_CONTAINER.VolumePath;
    const { VolumePath: _, ...noVolume } = V1_CONTAINER;
    const xenon = { ...noVolume, HvPartition: true, HvRuntime: { ImagePath: "C:\\layers\\base\\UtilityVM" } };
    const storage = V2_CONTAINER.Container.Storage;
    const v2 = (s: object) => ({ ...V2_CONTAINER, Container: { Storage: s } });
    for (const [doc, message] of [
      [{ ...V1_CONTAINER, VolumePath: `${volume}\\` }, "without a trailing backslash"],
      [noVolume, "VolumePath must be a volume GUID path"],
      [{ ...V1_CONTAINER, VolumePath: "C:\\scratch" }, "VolumePath must be a volume GUID path"],
      [{ ...V1_CONTAINER, Layers: null }, "Layers is empty"],
      [{ ...V1_CONTAINER, SystemType: "VirtualMachine" }, "SystemType must be Container"],
      [{ ...noVolume, HvPartition: true }, "HvRuntime.ImagePath"],
      [{ ...xenon, VolumePath: volume }, "a Hyper-V container has no VolumePath"],
      [v2({ ...storage, Path: volume }), "with its trailing backslash"],
      [v2({ ...storage, Layers: [] }), "Container.Storage.Layers is empty"],
      [{ ...V2_CONTAINER, Container: {} }, "Container.Storage is required"],
      [
        {
          ...V2_CONTAINER,
          Container: {
            ...V2_CONTAINER.Container,
            RegistryChanges: { AddValues: [{ Key: { Hive: "HKLM", Name: "x" }, Name: "y", Type: "String" }] },
          },
        },
        "RegistryChanges.AddValues[0] needs Key{Hive",
      ],
    ] as Array<[object, string]>) {
      const r = x.createSystem(newId(), doc);
      expect(r.hr >>> 0, message).toBe(E_INVALIDARG);
      expect(JSON.parse(r.result!).ErrorEvents[0].Message, message).toContain(message);
      expect(r.handle).toBeNull();
    }
    for (const doc of [V1_CONTAINER, xenon, V2_CONTAINER]) {
      const ok = x.createSystem(newId(), doc);
      expect(ok.hr).toBe(PENDING);
      expect(x.call("HcsCloseComputeSystem", ok.handle)).toBe(0);
    }
  });

  it("HcsModifyComputeSystem: checks the silo updates hcsshim sends; a v1 system takes no ResourcePath", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 9);
    const modify = (doc: object) => x.withResult("HcsModifyComputeSystem", sys, JSON.stringify(doc));
    const update = (ResourcePath: string, Settings: unknown) => ({
      ResourcePath,
      RequestType: "Update",
      Settings,
    });
    expect(modify(update("Container/Memory/SizeInMB", 256)).hr).toBe(0);
    expect(modify(update("Container/Processor", { Maximum: 5000 })).hr).toBe(0);
    for (const [doc, hr, message] of [
      [
        update("Container/Processor", { Count: 1, Weight: 100 }),
        E_INVALIDARG,
        "one of Count, Maximum and Weight",
      ],
      [update("Container/Processor", { Maximum: 20000 }), E_INVALIDARG, "Processor.Maximum is out of range"],
      [update("Container/Processor", { Cpus: 1 }), INVALID_JSON, "unknown field Cpus in Processor"],
      [update("Container/Memory/SizeInMB", "256"), E_INVALIDARG, "takes a size in MB"],
      [
        { ...update("Container/Memory/SizeInMB", 256), RequestType: "Add" },
        E_INVALIDARG,
        "takes RequestType Update",
      ],
      [
        { ...update("Container/Memory/SizeInMB", 256), Resource: "x" },
        INVALID_JSON,
        "unknown field Resource",
      ],
    ] as Array<[object, number, string]>) {
      const r = modify(doc);
      expect(r.hr >>> 0, message).toBe(hr);
      expect(r.result, message).toContain(message);
    }
    await teardown(x, "system", cb, sys);
    const v1 = x.createSystem(newId(), V1_CONTAINER);
    expect(v1.hr).toBe(PENDING);
    const cb1 = x.register("system", v1.handle, 10);
    await x.next(10, SystemCreateCompleted);
    const r = x.withResult(
      "HcsModifyComputeSystem",
      v1.handle,
      JSON.stringify(update("Container/Memory/SizeInMB", 256)),
    );
    expect(r.hr).toBe(INVALID_JSON);
    expect(r.result).toContain("a schema 1 system takes no ResourcePath");
    await teardown(x, "system", cb1, v1.handle);
  });

  it("refuses processor limits HCS cannot apply: out of range, more than the host's, combined in a silo", async (ctx) => {
    const x = f(ctx);
    const host = os.availableParallelism();
    const argon = V1_CONTAINER;
    const { VolumePath: _, ...rest } = argon;
    const xenon = { ...rest, HvPartition: true, HvRuntime: { ImagePath: "C:\\layers\\base\\UtilityVM" } };
    const v2 = (processor: object) => ({
      ...V2_CONTAINER,
      Container: { ...V2_CONTAINER.Container, Processor: processor },
    });
    for (const [doc, message] of [
      [{ ...argon, ProcessorWeight: 10001 }, "processor weight 10001"],
      [{ ...argon, ProcessorMaximum: 20000 }, "processor maximum 20000"],
      [{ ...argon, ProcessorCount: host + 1 }, `more than the host's ${host} processors`],
      [{ ...argon, ProcessorCount: 1, ProcessorMaximum: 5000 }, "one of processor count, weight and maximum"],
      [
        { ...argon, ProcessorWeight: 100, ProcessorMaximum: 5000 },
        "one of processor count, weight and maximum",
      ],
      [v2({ Count: 1, Weight: 100 }), "one of processor count, weight and maximum"],
      [v2({ Maximum: 10001 }), "processor maximum 10001"],
    ] as Array<[object, string]>) {
      const r = x.createSystem(newId(), doc);
      expect(r.hr >>> 0, message).toBe(E_INVALIDARG);
      expect(JSON.parse(r.result!).ErrorEvents[0].Message).toContain(message);
      expect(r.handle).toBeNull();
    }
    // A Hyper-V partition takes a count with a maximum, as moby sends them; each limit alone is fine.
    for (const doc of [
      { ...xenon, ProcessorCount: host, ProcessorMaximum: 5000 },
      { ...argon, ProcessorWeight: 10000 },
      v2({ Count: host }),
    ]) {
      const ok = x.createSystem(newId(), doc);
      expect(ok.hr).toBe(PENDING);
      expect(x.call("HcsCloseComputeSystem", ok.handle)).toBe(0);
    }
  });

  it("LCOW: the first process needs the whole OCI spec, later ones must not send it and get exactly their Environment", async (ctx) => {
    const x = f(ctx);
    const id = newId();
    const created = x.createSystem(id, {
      SystemType: "Container",
      Name: id,
      Owner: "fake-vmcompute.test",
      Layers: null,
      HvPartition: true,
      ContainerType: "Linux",
      TerminateOnLastHandleClosed: true,
      HvRuntime: { ImagePath: "C:\\lcow", LinuxKernelFile: "kernel", LinuxInitrdFile: "initrd.img" },
    });
    expect(created.hr).toBe(PENDING);
    const cb = x.register("system", created.handle, 30);
    await x.next(30, SystemCreateCompleted);
    expect(x.withResult("HcsStartComputeSystem", created.handle, "").hr).toBe(PENDING);
    await x.next(30, SystemStartCompleted);
    const sys = created.handle;
    const process = {
      args: ["sh", "-c", "echo init $A; pwd; exec sleep 30"],
      env: ["A=from-spec"],
      cwd: "/tmp",
      user: { uid: 0, gid: 0 },
    };
    const spec = { ociVersion: "1.0.2", process, root: { path: "rootfs" }, linux: {} };

    const refused: Array<[object, string]> = [
      [{ CommandArgs: ["true"] }, "needs OCISpecification"],
      [{ CommandArgs: ["true"], OCISpecification: process }, "a whole OCI spec"],
    ];
    for (const [params, message] of refused) {
      const r = x.createProcess(sys, params);
      expect(r.hr, message).toBe(INVALID_JSON);
      expect(JSON.parse(r.result!).ErrorEvents[0].Message).toContain(message);
    }
    // The guest runs spec.process for the init process, whatever else the parameters say.
    const init = x.createProcess(sys, {
      CommandArgs: ["false"],
      OCISpecification: spec,
      CreateStdOutPipe: true,
    });
    expect(init.hr).toBe(0);
    const initOut = readFd(fdOf(init.info.StdOutput));

    const exec = x.createProcess(sys, { CommandArgs: ["true"], OCISpecification: spec });
    expect(exec.hr).toBe(INVALID_JSON);
    expect(JSON.parse(exec.result!).ErrorEvents[0].Message).toContain("only for the first process");
    // An exec gets exactly its Environment: nothing of the host's, nothing of the spec's.
    const env = x.createProcess(sys, {
      CommandArgs: ["sh", "-c", 'echo "B=$B A=$A HOME=$HOME"; pwd'],
      Environment: { B: "exec" },
      WorkingDirectory: "/",
      CreateStdOutPipe: true,
    });
    expect(env.hr).toBe(0);
    expect(await readFd(fdOf(env.info.StdOutput))).toBe("B=exec A= HOME=\n/\n");
    const ecb = x.register("process", env.handle, 31);
    await x.next(31, ProcessExited);
    await teardown(x, "process", ecb, env.handle);

    const icb = x.register("process", init.handle, 32);
    expect(x.withResult("HcsSignalProcess", init.handle, '{"Signal":"CtrlC"}').hr).toBe(INVALID_JSON);
    expect(x.withResult("HcsSignalProcess", init.handle, '{"Signal":64}').hr).toBe(INVALID_JSON);
    expect(x.withResult("HcsSignalProcess", init.handle, '{"Signal":15}').hr).toBe(0);
    await x.next(32, ProcessExited);
    expect(await initOut).toBe("init from-spec\n/tmp\n");
    expect(x.processStatus(init.handle).ExitCode).toBe(143);
    await teardown(x, "process", icb, init.handle);
    await teardown(x, "system", cb, sys);
  });

  it("closes the guest side of stdin on CloseHandle StdIn while the caller still holds its end; resizes as hcsshim sends them", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 5);
    const p = x.createProcess(sys, { CommandLine: "cat", CreateStdInPipe: true, CreateStdOutPipe: true });
    expect(p.hr).toBe(0);
    const stdinFd = fdOf(p.info.StdInput);
    fs.writeSync(stdinFd, "ping");
    const out = readFd(fdOf(p.info.StdOutput));
    // hcsshim's resize: ConsoleSize's Height and Width are omitempty, so a 0 is left out (process.go ResizeConsole).
    for (const size of ['{"Height":24}', '{"Width":80}', "{}"]) {
      const resize = `{"Operation":"ConsoleSize","ConsoleSize":${size}}`;
      expect(x.withResult("HcsModifyProcess", p.handle, resize).hr, resize).toBe(0);
    }
    const close = '{"Operation":"CloseHandle","CloseHandle":{"Handle":"StdIn"}}';
    expect(x.withResult("HcsModifyProcess", p.handle, close).hr).toBe(0);
    expect(await out).toBe("ping");
    const pcb = x.register("process", p.handle, 50);
    await x.next(50, ProcessExited);
    expect(x.processStatus(p.handle).ExitCode).toBe(0);
    expect(x.withResult("HcsModifyProcess", p.handle, close).hr).toBe(INVALID_STATE);
    fs.closeSync(stdinFd);
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);
  });

  it("splits Go-escaped command lines with CommandLineToArgvW rules", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 6);
    const arg = fc
      .array(fc.constantFrom("a", "b", " ", "\t", '"', "\\", "é", "-", "💡"), { maxLength: 8 })
      .map((parts) => parts.join(""));
    await fc.assert(
      fc.asyncProperty(fc.array(arg, { minLength: 1, maxLength: 5 }), async (args) => {
        const argv = ["printf", "%s\\0", ...args];
        const p = x.createProcess(sys, {
          CommandLine: argv.map(escapeArg).join(" "),
          CreateStdOutPipe: true,
        });
        expect(p.hr).toBe(0);
        const out = await readFd(fdOf(p.info.StdOutput));
        expect(out.split("\0").slice(0, -1)).toEqual(args);
        await waitFor(() => (x.processStatus(p.handle).Exited ? true : undefined));
        expect(x.call("HcsCloseProcess", p.handle)).toBe(0);
      }),
      { numRuns: 40 },
    );
    await teardown(x, "system", cb, sys);
  });

  it("injects failures with ResultError documents, and rejects malformed documents", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 7);
    const custom = JSON.stringify({
      Error: E_ACCESSDENIED | 0,
      ErrorMessage: "Access is denied.",
      ErrorEvents: [{ Message: "scripted", EventId: 1 }],
    });
    x.call("FakeInjectFailure", "HcsCreateProcess", E_ACCESSDENIED | 0, custom);
    const failed = x.createProcess(sys, { CommandLine: "true" });
    expect(failed.hr).toBe(E_ACCESSDENIED);
    expect(failed.result).toBe(custom);
    expect(failed.handle).toBeNull();

    x.call("FakeInjectFailure", "HcsCreateProcess", 0xc0370106 | 0, null);
    const dflt = x.createProcess(sys, { CommandLine: "true" });
    expect(dflt.hr).toBe(0xc0370106);
    const doc = JSON.parse(dflt.result!);
    expect(doc.Error).toBe(0xc0370106 | 0);
    expect(doc.ErrorEvents[0].Message).toContain("HcsCreateProcess");

    for (const garbage of ["{", "[]", '{"CommandLine":5}', '{"a":1}x', "", '{"CommandLine":"x"']) {
      const r = x.withResult("HcsCreateProcess", sys, garbage, {}, [null]);
      expect(r.hr, garbage).toBeGreaterThanOrEqual(0x80000000);
      expect(JSON.parse(r.result!).Error >>> 0, garbage).toBe(r.hr);
    }
    expect(x.createSystem(newId(), { SchemaVersion: { Major: 2, Minor: 1 } }).hr).toBe(INVALID_JSON);

    // Injected as asynchronous: pending, then a failing completion.
    x.call("FakeSetOption", "InjectAsync", 1);
    x.call("FakeInjectFailure", "HcsCreateComputeSystem", E_ACCESSDENIED | 0, null);
    const created = x.createSystem(newId(), V2_CONTAINER);
    expect(created.hr).toBe(PENDING);
    const ccb = x.register("system", created.handle, 70);
    expect((await x.next(70, SystemCreateCompleted)).status).toBe(E_ACCESSDENIED);
    await teardown(x, "system", ccb, created.handle);
    await teardown(x, "system", cb, sys);
  });

  it("answers garbage documents with an HRESULT and a ResultError, never a crash or a leak", async (ctx) => {
    const x = f(ctx);
    const id = newId();
    const created = x.createSystem(id, V2_CONTAINER); // never started: CreateProcess stops at parsing or state
    const fragments = fc.constantFrom(
      "{",
      "}",
      "[",
      "]",
      ":",
      ",",
      '"',
      "\\",
      "\\u",
      "d83d",
      "1",
      "-",
      "e+",
      "true",
      "nul",
      " ",
      '"CommandLine"',
      '"Signal"',
      '"Operation"',
      '"PropertyTypes"',
      '"SchemaVersion"',
      "\u0000",
      "💡",
      "\ud800",
    );
    const doc = fc.oneof(
      fc.string(),
      fc.json(),
      fc.array(fragments, { maxLength: 30 }).map((parts) => parts.join("")),
    );
    /** Calls an export with one extra out string before `result`, and frees that out too. */
    const withOut = (name: string, ...args: unknown[]) => {
      const out: [unknown] = [null];
      const r = x.withResult(name, ...args, out);
      x.take(out[0]);
      return r;
    };
    const calls: Array<(d: string) => { hr: number; result: string | null }> = [
      (d) => {
        const r = x.withResult("HcsCreateProcess", created.handle, d, {}, [null]);
        expect(r.hr).not.toBe(0); // the system is not running
        return r;
      },
      (d) => withOut("HcsGetComputeSystemProperties", created.handle, d),
      (d) => withOut("HcsEnumerateComputeSystems", d),
      (d) => x.withResult("HcsStartComputeSystem", 0xdeadn, d),
      (d) => {
        const out: [unknown] = [null];
        const r = x.withResult("HcsCreateComputeSystem", `${id}-fuzz`, d, null, out);
        if (out[0]) expect(x.call("HcsCloseComputeSystem", out[0])).toBe(0);
        return r;
      },
    ];
    const before = x.liveAllocations();
    fc.assert(
      fc.property(doc, fc.nat(calls.length - 1), (d, which) => {
        const { hr, result } = calls[which]!(d);
        if (hr === 0 || hr === PENDING) return;
        expect(hr).toBeGreaterThanOrEqual(0x80000000);
        expect(JSON.parse(result!).Error >>> 0).toBe(hr);
      }),
      { numRuns: 500 },
    );
    expect(x.liveAllocations()).toBe(before);
    expect(x.call("HcsCloseComputeSystem", created.handle)).toBe(0);
  });

  it("Unregister waits for a running callback, and times out instead of deadlocking on the main thread", async (ctx) => {
    const x = f(ctx);
    const { sys, cb } = await runningSystem(x, 8);
    const p = x.createProcess(sys, { CommandLine: "true" });
    await waitFor(() => (x.processStatus(p.handle).Exited ? true : undefined));

    // A callback that calls Unregister synchronously from the JS main thread: the registration's dispatcher
    // thread is waiting for this very callback, so the call gives up after UnregisterTimeoutMs.
    x.call("FakeSetOption", "UnregisterTimeoutMs", 100);
    const lib = koffi.load(LIBRARY);
    const unregisterSync = lib.func("int32 HcsUnregisterProcessCallback(void *callbackHandle)");
    let inside: number | undefined;
    let handleRef: unknown;
    const proto = koffi.proto("void FakeReentrantCallback(uint32 type, void *ctx, int32 status, void *data)");
    const reentrant = koffi.register(() => {
      inside = (unregisterSync(handleRef) as number) >>> 0;
    }, koffi.pointer(proto));
    const out: [unknown] = [null];
    expect(x.call("HcsRegisterProcessCallback", p.handle, reentrant, 81, out)).toBe(0);
    handleRef = out[0];
    await waitFor(() => inside);
    expect(inside).toBe(ERROR_TIMEOUT);
    // Off the main thread, once the callback has returned, it succeeds.
    expect(await x.unregister("process", out[0] as Handle)).toBe(0);
    koffi.unregister(reentrant);
    x.call("FakeSetOption", "UnregisterTimeoutMs", 5000);

    // From a worker: Unregister returns only after the running callback has returned.
    const p2 = x.createProcess(sys, { CommandLine: "true" });
    await waitFor(() => (x.processStatus(p2.handle).Exited ? true : undefined));
    let callbackReturnedAt = 0;
    let unregistered: Promise<number> | undefined;
    const slowProto = koffi.proto("void FakeSlowCallback(uint32 type, void *ctx, int32 status, void *data)");
    const slow = koffi.register(() => {
      unregistered = x.unregister("process", slowOut[0] as Handle);
      const until = Date.now() + 150;
      while (Date.now() < until) {
        // keep the dispatcher thread blocked in this callback
      }
      callbackReturnedAt = Date.now();
    }, koffi.pointer(slowProto));
    const slowOut: [unknown] = [null];
    expect(x.call("HcsRegisterProcessCallback", p2.handle, slow, 82, slowOut)).toBe(0);
    await waitFor(() => unregistered);
    expect(await unregistered).toBe(0);
    expect(Date.now()).toBeGreaterThanOrEqual(callbackReturnedAt);
    expect(callbackReturnedAt).toBeGreaterThan(0);
    koffi.unregister(slow);

    expect(x.call("HcsCloseProcess", p.handle)).toBe(0);
    expect(x.call("HcsCloseProcess", p2.handle)).toBe(0);
    await teardown(x, "system", cb, sys);
  });

  it("lists processes and statistics, enumerates systems, and leaks nothing", async (ctx) => {
    const x = f(ctx);
    const { sys, cb, id } = await runningSystem(x, 9);
    const p = x.createProcess(sys, { CommandLine: "sleep 30" });
    const props: [unknown] = [null];
    const query = JSON.stringify({ PropertyTypes: ["ProcessList", "Statistics"] });
    expect(x.withResult("HcsGetComputeSystemProperties", sys, query, props).hr).toBe(0);
    const parsed = JSON.parse(x.take(props[0])!);
    expect(parsed.State).toBe("Running");
    expect(parsed.ProcessList).toEqual([
      expect.objectContaining({ ProcessId: p.info.ProcessId, ImageName: "sleep" }),
    ]);
    expect(parsed.Statistics.Memory.MemoryUsageCommitBytes).toBeGreaterThan(0);
    expect(Date.parse(parsed.Statistics.Timestamp)).not.toBeNaN();

    const list: [unknown] = [null];
    expect(x.withResult("HcsEnumerateComputeSystems", JSON.stringify({ Ids: [id] }), list).hr).toBe(0);
    expect(JSON.parse(x.take(list[0])!)).toEqual([expect.objectContaining({ Id: id, State: "Running" })]);
    expect(x.withResult("HcsEnumerateComputeSystems", '{"Ids":["nope"]}', list).hr).toBe(0);
    expect(x.take(list[0])).toBe("[]");

    // Terminate kills the system's processes; the exits arrive, then SystemExited.
    const pcb = x.register("process", p.handle, 90);
    expect(x.withResult("HcsTerminateComputeSystem", sys, "").hr).toBe(PENDING);
    await x.next(90, ProcessExited);
    await x.next(9, SystemExited);
    expect(x.processStatus(p.handle).ExitCode).toBe(137);
    await teardown(x, "process", pcb, p.handle);
    await teardown(x, "system", cb, sys);

    expect(x.liveAllocations()).toBe(0);
    expect(x.openHandles()).toBe(0);
  });
});
