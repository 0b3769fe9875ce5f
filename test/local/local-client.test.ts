/** The local (HCS) client through the real koffi bindings against the fake vmcompute library. */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LocalClient, type LocalClientOptions } from "../../src/libcontainerd/local/client.js";
import {
  CanceledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  type LibcontainerdEvent,
  NotFoundError,
  NotImplementedError,
} from "../../src/libcontainerd/types/index.js";
import { defaultLinuxSpec, defaultWindowsSpec } from "../../src/oci/index.js";
import type { OciSpec } from "../../src/oci/spec.js";
import { ensureFakeLibrary, FAKE_LAYERS, FAKE_LIBRARY_RS1, FAKE_VOLUME, FakeControl } from "./fake.js";

let library: string;
let fake: FakeControl;
const clients: LocalClient[] = [];
let seq = 0;

beforeAll(() => {
  library = ensureFakeLibrary();
  fake = new FakeControl(library);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await fake.reset();
});

afterAll(async () => {
  const state = await fake.settled();
  const invalidFrees = fake.invalidFrees();
  fake.close();
  expect({ ...state, invalidFrees }).toEqual({ liveAllocations: 0, openHandles: 0, invalidFrees: 0 });
});

function client(options: Partial<LocalClientOptions> = {}): LocalClient {
  const c = new LocalClient({
    library,
    windowsBuild: 17763,
    namespace: "local-test",
    operationTimeoutMs: 10_000,
    ...options,
  });
  clients.push(c);
  return c;
}

function windowsSpec(args: string[], extra: { hyperv?: boolean } = {}): OciSpec {
  const spec = defaultWindowsSpec({ args, layerFolders: FAKE_LAYERS, hyperv: extra.hyperv });
  if (!extra.hyperv) spec.root = { path: FAKE_VOLUME };
  return spec;
}

const id = () => `local-${process.pid}-${++seq}`;

/** An LCOW spec the fake runs: a linux section and the layer folders moby required. */
function lcowSpec(args: string[], extra: Partial<OciSpec> = {}): OciSpec {
  const spec = defaultLinuxSpec({ args, rootfs: "/" });
  spec.process!.cwd = "/";
  return { ...spec, windows: { layerFolders: ["C:\\lcow\\base", "C:\\lcow\\scratch"] }, ...extra };
}

function recordEvents(c: LocalClient): { events: LibcontainerdEvent[]; stop: () => void } {
  const abort = new AbortController();
  const events: LibcontainerdEvent[] = [];
  void (async () => {
    for await (const e of c.events({ signal: abort.signal })) events.push(e);
  })();
  return { events, stop: () => abort.abort() };
}

describe("create documents by Windows build", () => {
  it("an RS4 build sends a schema v1 ContainerConfig", async () => {
    const c = client({ windowsBuild: 17134 });
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["true"]));
    const doc = fake.lastCreateDocument() as Record<string, unknown>;
    expect(doc).toMatchObject({
      SystemType: "Container",
      Name: name,
      Owner: "local-test",
      HvPartition: false,
    });
    expect(doc).not.toHaveProperty("SchemaVersion");
    await container.delete();
  });

  it("an RS5 build sends a schema v2.1 ComputeSystem", async () => {
    const c = client({ windowsBuild: 17763 });
    const container = await c.newContainer(id(), windowsSpec(["true"]));
    expect(fake.lastCreateDocument()).toMatchObject({
      Owner: "local-test",
      SchemaVersion: { Major: 2, Minor: 1 },
      ShouldTerminateOnLastHandleClosed: true,
      Container: {
        Storage: { Path: FAKE_VOLUME },
        // As hcsshim's hcsdoc_wcow.go: servercore would otherwise kill 5 s after a CtrlShutdown.
        RegistryChanges: {
          AddValues: [
            {
              Key: { Hive: "System", Name: "ControlSet001\\Control" },
              Name: "WaitToKillServiceTimeout",
              Type: "String",
              StringValue: "2147483647",
            },
          ],
        },
      },
    });
    await container.delete();
  });

  it("a Linux spec with LCOW options sends the kernel/initrd utility-VM document", async () => {
    const seen: string[] = [];
    const c = client({
      lcow: { bootFilesPath: "D:\\lcow", kernel: "vmlinuz", initrd: "rd.img" },
      fileExists: (p) => {
        seen.push(p);
        return true;
      },
    });
    const container = await c.newContainer(id(), lcowSpec(["sh"]));
    expect(fake.lastCreateDocument()).toMatchObject({
      HvPartition: true,
      ContainerType: "Linux",
      HvRuntime: { ImagePath: "D:\\lcow", LinuxKernelFile: "vmlinuz", LinuxInitrdFile: "rd.img" },
    });
    // Checked once to validate, again with the layer ids NameToGuid gave.
    expect([...new Set(seen)]).toEqual(["D:\\lcow\\vmlinuz", "D:\\lcow\\rd.img"]);
    await container.delete();
  });

  it("a missing LCOW kernel fails before any HCS call", async () => {
    await fake.reset();
    const c = client({ fileExists: (p) => !p.toLowerCase().includes("kernel") && !p.endsWith(".efi") });
    const attempt = c.newContainer(id(), lcowSpec(["sh"]));
    await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(attempt).rejects.toThrow(
      "LCOW kernel not found: C:\\Program Files\\Linux Containers\\kernel or C:\\Program Files\\Linux Containers\\bootx64.efi",
    );
    expect(fake.lastCreateDocument()).toBeUndefined();
    expect(fake.openHandles()).toBe(0);
  });
});

describe("asynchronous operations", () => {
  it("pending create and start complete through their notifications", async () => {
    fake.setOption("AsyncDelayMs", 150);
    const c = client();
    const started = Date.now();
    const container = await c.newContainer(id(), windowsSpec(["true"]));
    // Create and start each waited for a notification sent 150 ms after the call returned pending.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await container.delete();
  });

  it("synchronous completion (S_OK, no notification) works as well", async () => {
    fake.setOption("SyncCompletion", 1);
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sh", "-c", "exit 9"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(9);
    await task.delete();
    await container.delete();
  });

  it("timeoutMs becomes DeadlineExceededError and the half-made system is cleaned up", async () => {
    fake.setOption("AsyncDelayMs", 400);
    const c = client();
    const name = id();
    await expect(c.newContainer(name, windowsSpec(["true"]), { timeoutMs: 50 })).rejects.toBeInstanceOf(
      DeadlineExceededError,
    );
    await expect.poll(() => fake.openHandles(), { timeout: 5000 }).toBe(0);
    expect(await c.listContainers()).toEqual([]);
  });

  it("an aborted signal becomes CanceledError", async () => {
    fake.setOption("AsyncDelayMs", 400);
    const c = client();
    const abort = new AbortController();
    const attempt = c.newContainer(id(), windowsSpec(["true"]), { signal: abort.signal });
    setTimeout(() => abort.abort(), 30);
    await expect(attempt).rejects.toBeInstanceOf(CanceledError);
    await expect.poll(() => fake.openHandles(), { timeout: 5000 }).toBe(0);
    await expect(c.version({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CanceledError);
  });

  it("wait() honours its own timeout without disturbing the process", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    await expect(task.wait({ timeoutMs: 50 })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(await task.status()).toBe("running");
    await task.forceDelete();
    await container.delete();
  });
});

describe("processes", () => {
  it("reports the exit of a process that is already gone when its callback registers", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    // `true` exits long before the round trip to a worker thread that registers its callback.
    const exec = await task.exec("quick", { args: ["true"], cwd: "", user: { uid: 0, gid: 0 } });
    expect((await exec.wait({ timeoutMs: 5000 })).exitCode).toBe(0);
    await exec.delete();
    await task.forceDelete();
    await container.delete();
  });

  it("holds the init exit until start, so events stay create → start → exit", async () => {
    const c = client();
    const rec = recordEvents(c);
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["sh", "-c", "exit 4"]));
    const task = await container.newTask();
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.events.filter((e) => e.containerId === name).map((e) => e.type)).toEqual(["create"]);
    expect(await task.status()).toBe("created");
    await task.start();
    expect((await task.wait()).exitCode).toBe(4);
    await expect
      .poll(() => rec.events.filter((e) => e.containerId === name).map((e) => e.type))
      .toEqual(["create", "start", "exit"]);
    rec.stop();
    await task.delete();
    await container.delete();
  });

  it("before RS5 SIGTERM shuts the container down (no HcsSignalProcess); other signals are refused", async () => {
    const c = client({ windowsBuild: 17134 });
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    // Any other signal cannot be delivered: refused, not turned into a stop (hcsshim's ValidateWCOW).
    for (const signal of ["SIGINT", "SIGHUP", "CtrlC"]) {
      await expect(task.kill(signal), signal).rejects.toBeInstanceOf(FailedPreconditionError);
    }
    expect(await task.status()).toBe("running");
    await task.kill("SIGTERM");
    expect((await exited).exitCode).not.toBe(0);
    await task.delete();
    await container.delete();
  });

  it("refuses signals a Windows guest cannot receive", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    await expect(task.kill("SIGUSR1")).rejects.toBeInstanceOf(InvalidArgumentError);
    await task.forceDelete();
    await container.delete();
  });

  it("reports pids and HCS statistics", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    const exec = await task.exec("sleeper", { args: ["sleep", "30"], cwd: "", user: { uid: 0, gid: 0 } });
    const pids = await task.pids();
    expect(pids).toContainEqual({ pid: task.pid });
    expect(pids).toContainEqual({ pid: exec.pid, execId: "sleeper" });
    const stats = await task.stats();
    expect(stats.kind).toBe("hcs");
    if (stats.raw.kind === "hcs") expect(stats.raw.memory.usageCommitBytes).toBeGreaterThan(0);
    // The shape every backend shares: the working set, no limit reported, no pid count.
    expect(stats.memory.usage).toBe(
      stats.raw.kind === "hcs" ? stats.raw.memory.usagePrivateWorkingSetBytes : -1,
    );
    expect(stats.memory.limit).toBe(Infinity);
    expect(stats.pids).toBeUndefined();
    await task.forceDelete();
    await container.delete();
  });

  it("stats and pids of a compute system going away are NotFound, as runhcs's isStatsNotFound answers", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    // ERROR_ACCESS_DENIED, INVALID_STATE, ERROR_INVALID_HANDLE, SYSTEM_NOT_FOUND, ERROR_NOT_FOUND
    for (const hresult of [0x80070005, 0xc0370105, 0x80070006, 0xc037010e, 0x80070490]) {
      fake.injectFailure("HcsGetComputeSystemProperties", hresult | 0, null);
      await expect(task.stats(), hresult.toString(16)).rejects.toBeInstanceOf(NotFoundError);
      fake.injectFailure("HcsGetComputeSystemProperties", hresult | 0, null);
      await expect(task.pids(), hresult.toString(16)).rejects.toBeInstanceOf(NotFoundError);
    }
    // Anything else stays what it is.
    fake.injectFailure("HcsGetComputeSystemProperties", 0x80004005 | 0, null);
    await expect(task.stats()).rejects.toMatchObject({ code: "internal", origin: { hresultName: "E_FAIL" } });
    expect((await task.stats()).kind).toBe("hcs");
    await task.forceDelete();
    await container.delete();
  });

  it("a crashed compute system ends its processes", async () => {
    const c = client();
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    expect(await fake.crash(name)).toBe(0);
    expect((await exited).exitCode).toBe(137);
    await task.delete();
    await container.delete();
  });
});

describe("errors from HCS", () => {
  it("an injected HRESULT surfaces as the typed error with its name and the ErrorEvents message", async () => {
    const c = client();
    fake.injectFailure(
      "HcsCreateComputeSystem",
      0xc037010d,
      JSON.stringify({
        Error: 0xc037010d | 0,
        ErrorMessage: "The JSON document is invalid.",
        ErrorEvents: [
          { Message: "Property 'Storage' is malformed", Provider: "{00000000-0000-0000-0000-000000000000}" },
        ],
      }),
    );
    const err = await c.newContainer(id(), windowsSpec(["true"])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({
      origin: { hresult: 0xc037010d, hresultName: "ERROR_VMCOMPUTE_INVALID_JSON" },
    });
    expect((err as Error).message).toContain("Property 'Storage' is malformed");
    expect(fake.openHandles()).toBe(0);
  });

  it("a failed completion notification carries the HRESULT too", async () => {
    const c = client();
    fake.setOption("InjectAsync", 1);
    fake.injectFailure(
      "HcsStartComputeSystem",
      0xc0370100,
      JSON.stringify({ ErrorEvents: [{ Message: "the guest died while starting" }] }),
    );
    const err = await c.newContainer(id(), windowsSpec(["true"])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err).toMatchObject({ origin: { hresultName: "ERROR_VMCOMPUTE_TERMINATED_DURING_START" } });
    expect((err as Error).message).toContain("the guest died while starting");
    await expect.poll(() => fake.openHandles(), { timeout: 5000 }).toBe(0);
  });

  it("a failed HcsCreateProcess leaves nothing behind and the container usable", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sh", "-c", "exit 1"]));
    fake.injectFailure("HcsCreateProcess", 0x80070002 | 0, null);
    const err = await container.newTask({ stdio: { stdout: true } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ origin: { hresult: 0x80070002, hresultName: "0x80070002" } });
    const task = await container.newTask();
    await task.start();
    expect((await task.wait()).exitCode).toBe(1);
    await task.delete();
    await container.delete();
  });

  it("failed callback registrations leave no handle, process or registration behind", async () => {
    const c = client();
    fake.injectFailure("HcsRegisterComputeSystemCallback", 0x8007000e | 0, null);
    await expect(c.newContainer(id(), windowsSpec(["true"]))).rejects.toMatchObject({
      origin: { hresultName: "E_OUTOFMEMORY" },
    });
    await expect.poll(() => fake.openHandles(), { timeout: 5000 }).toBe(0);

    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const baseline = fake.openHandles();
    fake.injectFailure("HcsRegisterProcessCallback", 0x8007000e | 0, null);
    await expect(container.newTask({ stdio: { stdin: true, stdout: true } })).rejects.toMatchObject({
      origin: { hresultName: "E_OUTOFMEMORY" },
    });
    await expect.poll(() => fake.openHandles(), { timeout: 5000 }).toBe(baseline);
    await container.delete();
  });

  it("a ProcessExited with a failing status is a failed wait: exit code -1, as hcsshim's waitBackground", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sh", "-c", "exit 3"]));
    fake.setOption("ProcessExitedStatus", 0xc0370106 | 0);
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(-1);
    await task.delete();
    await container.delete();
  });

  it("an unreadable exit status is reported as exit code -1, once", async () => {
    const c = client();
    const rec = recordEvents(c);
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["sleep", "0.2"]));
    const task = await container.newTask();
    fake.injectFailure("HcsGetProcessProperties", 0x80004005 | 0, null);
    await task.start();
    expect((await task.wait()).exitCode).toBe(-1);
    await expect
      .poll(() =>
        rec.events.filter((e) => e.containerId === name && e.type === "exit").map((e) => e.exitCode),
      )
      .toEqual([-1]);
    rec.stop();
    await task.delete();
    await container.delete();
  });

  it("a duplicate id is AlreadyExistsError", async () => {
    const c = client();
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["true"]));
    await expect(c.newContainer(name, windowsSpec(["true"]))).rejects.toMatchObject({
      code: "already_exists",
    });
    const other = client();
    await expect(other.newContainer(name, windowsSpec(["true"]))).rejects.toMatchObject({
      code: "already_exists",
      origin: { hresultName: "ERROR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS" },
    });
    await container.delete();
  });
});

describe("updateResources as hcsshim updates a running silo", () => {
  it("memory (MiB, even) on schema v2, the CPU from 20H2, one CPU limit; v1, Hyper-V and storage are NotImplementedError", async () => {
    await fake.reset();
    const c = client({ windowsBuild: 19042 });
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    await task.updateResources({ memory: 255 * 1024 * 1024 });
    expect(fake.lastModifyDocument()).toEqual({
      ResourcePath: "Container/Memory/SizeInMB",
      RequestType: "Update",
      Settings: 256,
    });
    await task.updateResources({ windows: { cpu: { maximum: 5000 } } });
    expect(fake.lastModifyDocument()).toEqual({
      ResourcePath: "Container/Processor",
      RequestType: "Update",
      Settings: { Maximum: 5000 },
    });
    await expect(
      task.updateResources({ windows: { cpu: { count: 1, shares: 100 } } }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(task.updateResources({ windows: { storage: { iops: 10 } } })).rejects.toBeInstanceOf(
      NotImplementedError,
    );
    await task.forceDelete();
    await container.delete();

    // RS5 (before 20H2): memory yes, CPU no.
    const rs5 = client({ windowsBuild: 17763 });
    const c5 = await rs5.newContainer(id(), windowsSpec(["sleep", "30"]));
    const t5 = await c5.newTask();
    await t5.start();
    await expect(t5.updateResources({ cpus: 1 })).rejects.toBeInstanceOf(NotImplementedError);
    await t5.updateResources({ memory: "64m" });
    expect(fake.lastModifyDocument()).toMatchObject({ Settings: 64 });
    await t5.forceDelete();
    await c5.delete();

    // Schema v1 and Hyper-V containers have no such request.
    for (const [options, hyperv] of [
      [{ windowsBuild: 17134 }, false],
      [{ fileExists: (p: string) => p.endsWith("UtilityVM") }, true],
    ] as const) {
      const other = client(options);
      const oc = await other.newContainer(id(), windowsSpec(["sleep", "30"], { hyperv }));
      const ot = await oc.newTask();
      await ot.start();
      await expect(ot.updateResources({ memory: "64m" })).rejects.toBeInstanceOf(NotImplementedError);
      await ot.forceDelete();
      await oc.delete();
    }
  });
});

describe("isolation-dependent and unsupported operations", () => {
  it("logs need containerd's shim; labels need a container record; inspect answers what the client knows", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    await expect(container.newTask({ stdio: { log: { path: "/tmp/x.log" } } })).rejects.toBeInstanceOf(
      NotImplementedError,
    );
    await expect(container.setLabels({ a: "b" })).rejects.toBeInstanceOf(NotImplementedError);
    await expect(container.updateSpec(windowsSpec(["true"]))).rejects.toBeInstanceOf(NotImplementedError);
    const task = await container.newTask();
    await task.start();
    expect((await container.inspect()).State).toMatchObject({ Status: "running", Running: true });
    await task.forceDelete();
    await container.delete();
  });

  it("pause/resume need Hyper-V isolation", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    await expect(task.pause()).rejects.toBeInstanceOf(NotImplementedError);
    await expect(task.updateResources({ windows: { storage: { iops: 1 } } })).rejects.toBeInstanceOf(
      NotImplementedError,
    );
    await expect(task.checkpoint("/tmp/x")).rejects.toBeInstanceOf(NotImplementedError);
    await task.forceDelete();
    await container.delete();
  });

  it("pause/resume a Hyper-V container, with events", async () => {
    const c = client({ fileExists: (p) => p.endsWith("UtilityVM") });
    const rec = recordEvents(c);
    const name = id();
    const container = await c.newContainer(name, windowsSpec(["sleep", "30"], { hyperv: true }));
    expect(fake.lastCreateDocument()).toMatchObject({ HvPartition: true });
    const task = await container.newTask();
    await task.start();
    await task.pause();
    expect(await task.status()).toBe("paused");
    await task.resume();
    expect(await task.status()).toBe("running");
    await expect
      .poll(() => rec.events.filter((e) => e.containerId === name).map((e) => e.type))
      .toEqual(["create", "start", "paused", "resumed"]);
    rec.stop();
    await task.forceDelete();
    await container.delete();
  });
});

describe("containers across clients", () => {
  it("lists by namespace, loads by id, and cannot give a loaded container a task", async () => {
    const owner = client();
    const name = id();
    const container = await owner.newContainer(name, windowsSpec(["true"]), { labels: { app: "x" } });
    expect(await owner.listContainers()).toEqual([
      { id: name, runtime: { name: "com.docker.hcsshim.v1" }, labels: { app: "x" } },
    ]);
    expect(await client({ namespace: "elsewhere" }).listContainers()).toEqual([]);
    await expect(client({ namespace: "elsewhere" }).loadContainer(name)).rejects.toBeInstanceOf(
      NotFoundError,
    );

    const other = client();
    const loaded = await other.loadContainer(name);
    expect(loaded.id).toBe(name);
    await expect(loaded.task()).rejects.toBeInstanceOf(NotFoundError);
    await expect(loaded.newTask()).rejects.toBeInstanceOf(FailedPreconditionError);
    await other.close();
    // Closing the other client released only its handle.
    expect((await owner.listContainers()).map((i) => i.id)).toEqual([name]);
    await container.delete();
    await expect(owner.loadContainer(name)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("RS1/RS2: a list that races a silo going away (ERROR_ACCESS_DENIED) is retried, as moby retries it", async () => {
    // The RS1-era fake has RS1's enumeration race; its state is its own, so it gets its own control.
    const rs1 = new FakeControl(FAKE_LIBRARY_RS1);
    try {
      rs1.setOption("ShutdownTimeoutMs", 300);
      const c = client({ library: FAKE_LIBRARY_RS1, windowsBuild: 14393 });
      const going = await c.newContainer(id(), windowsSpec(["sh", "-c", 'trap "" TERM; exec sleep 1000']));
      const task = await going.newTask();
      const exited = task.wait();
      await task.start();
      await until(
        () => fs.readFileSync(`/proc/${task.pid}/comm`, "utf8").trim() === "sleep",
        "the process ignores SIGTERM",
      );
      const staying = await c.newContainer(id(), windowsSpec(["sleep", "1000"]));
      // Before RS5 a SIGTERM shuts the silo down; it ignores it, so it is going away until the fake escalates.
      await task.kill("SIGTERM");
      expect((await c.listContainers()).map((i) => i.id)).toContain(staying.id);
      await exited;
      await task.delete();
      await going.delete();
      await staying.delete();
    } finally {
      await rs1.reset();
      rs1.close();
    }
  });

  it("a closed client refuses calls", async () => {
    const c = client();
    await c.close();
    await expect(c.listContainers()).rejects.toMatchObject({ code: "unavailable" });
  });
});

describe("consoles", () => {
  it("a terminal task gets one output stream and can be resized", async () => {
    const c = client();
    const spec = windowsSpec(["sh", "-c", "sleep 0.5; stty size"]);
    spec.process!.terminal = true;
    const container = await c.newContainer(id(), spec);
    const task = await container.newTask({ stdio: { stdout: true, stderr: true, terminal: true } });
    expect(task.stderr).toBeNull();
    let output = "";
    task.stdout!.setEncoding("utf8");
    task.stdout!.on("data", (chunk: string) => {
      output += chunk;
    });
    const ended = new Promise((r) => task.stdout!.once("end", r));
    await task.start();
    await task.resize(100, 40);
    expect((await task.wait()).exitCode).toBe(0);
    await ended;
    expect(output.trim()).toBe("40 100");
    await task.delete();
    await container.delete();
  });
});

describe("exec defaults", () => {
  it("an exec without env or cwd inherits the init process's", async () => {
    const c = client();
    const spec = defaultWindowsSpec({
      args: ["sleep", "30"],
      env: ["GREETING=from-init"],
      cwd: "/tmp",
      layerFolders: FAKE_LAYERS,
    });
    spec.root = { path: FAKE_VOLUME };
    const container = await c.newContainer(id(), spec);
    const task = await container.newTask();
    await task.start();
    const exec = await task.exec(
      "env",
      { args: ["sh", "-c", 'echo "$GREETING $(pwd)"'], cwd: "", user: { uid: 0, gid: 0 } },
      { stdio: { stdout: true } },
    );
    let output = "";
    exec.stdout!.setEncoding("utf8");
    exec.stdout!.on("data", (chunk: string) => {
      output += chunk;
    });
    const ended = new Promise((r) => exec.stdout!.once("end", r));
    expect((await exec.wait()).exitCode).toBe(0);
    await ended;
    expect(output).toBe("from-init /tmp\n");
    await task.forceDelete();
    await container.delete();
  });
});

describe("LCOW processes", () => {
  it("run from CommandArgs and take POSIX signal numbers", async () => {
    const c = client({ fileExists: () => true });
    const container = await c.newContainer(id(), lcowSpec(["sh", "-c", "echo lcow; exit 2"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    let output = "";
    task.stdout!.setEncoding("utf8");
    task.stdout!.on("data", (chunk: string) => {
      output += chunk;
    });
    const ended = new Promise((r) => task.stdout!.once("end", r));
    await task.start();
    expect((await task.wait()).exitCode).toBe(2);
    await ended;
    expect(output).toBe("lcow\n");
    const sleeper = await task
      .exec("sleeper", { args: ["sleep", "30"], cwd: "/", user: { uid: 0, gid: 0 } })
      .catch((e: unknown) => e);
    // The init process has exited: no exec into a stopped task.
    expect(sleeper).toBeInstanceOf(FailedPreconditionError);
    await task.delete();
    await container.delete();

    const second = await c.newContainer(id(), lcowSpec(["sleep", "30"]));
    const task2 = await second.newTask();
    const exited = task2.wait();
    await task2.start();
    await new Promise((r) => setTimeout(r, 50));
    await task2.kill("SIGUSR1");
    expect((await exited).exitCode).toBe(128 + 10);
    await task2.delete();
    await second.delete();
  });
});

/** Reads a stream to its end. */
async function drain(stream: NodeJS.ReadableStream | null): Promise<string> {
  let out = "";
  stream?.setEncoding("utf8");
  for await (const chunk of stream ?? []) out += chunk as string;
  return out;
}

describe("LCOW as moby and opengcs drive it", () => {
  it("an LCOW container has one init process: a second task is a FailedPreconditionError before HCS", async () => {
    const c = client({ fileExists: () => true });
    const container = await c.newContainer(id(), lcowSpec(["true"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    await exited;
    await task.delete();
    await expect(container.newTask()).rejects.toBeInstanceOf(FailedPreconditionError);
    await container.delete();
  });

  it("the init process carries the whole spec, an exec its own args, env and cwd (delivered)", async () => {
    const c = client({ fileExists: () => true });
    const spec = lcowSpec(["sh", "-c", "echo init $INIT; pwd; exec sleep 30"]);
    spec.process!.env = ["INIT=from-spec", "PATH=/usr/bin:/bin"];
    spec.process!.cwd = "/tmp";
    const container = await c.newContainer(id(), spec);
    const task = await container.newTask({ stdio: { stdout: true } });
    const initOut = drain(task.stdout);
    await task.start();
    const exec = await task.exec(
      "env",
      {
        args: ["sh", "-c", 'echo "X=$X INIT=$INIT"; pwd'],
        env: ["X=exec", "PATH=/usr/bin:/bin"],
        cwd: "/",
        user: { uid: 0, gid: 0 },
      },
      { stdio: { stdout: true } },
    );
    expect(await drain(exec.stdout)).toBe("X=exec INIT=\n/\n");
    expect((await exec.wait()).exitCode).toBe(0);
    await exec.delete();
    // An exec without env or cwd inherits the init process's, sent as its own fields.
    const inherits = await task.exec(
      "inherits",
      { args: ["sh", "-c", 'echo "INIT=$INIT"; pwd'], cwd: "", user: { uid: 0, gid: 0 } },
      { stdio: { stdout: true } },
    );
    expect(await drain(inherits.stdout)).toBe("INIT=from-spec\n/tmp\n");
    await inherits.wait();
    await inherits.delete();
    await task.kill("SIGTERM");
    expect((await task.wait()).exitCode).toBe(143);
    expect(await initOut).toBe("init from-spec\n/tmp\n");
    await task.delete();
    await container.delete();
  });

  it("is refused below RS5 (17763) with NotImplementedError, before any HCS call", async () => {
    await fake.reset();
    const c = client({ windowsBuild: 17134, fileExists: () => true });
    await expect(c.newContainer(id(), lcowSpec(["true"]))).rejects.toBeInstanceOf(NotImplementedError);
    expect(fake.lastCreateDocument()).toBeUndefined();
  });

  it("carries bind mounts into the utility VM, the network and the resources", async () => {
    const c = client({ fileExists: () => true });
    const name = id();
    const spec = lcowSpec(["true"], {
      mounts: [
        { destination: "/data", type: "bind", source: "C:\\data", options: ["rbind", "ro"] },
        { destination: "/cache", type: "bind", source: "C:\\cache", options: ["uvmpath=/run/binds"] },
        { destination: "/proc", type: "proc", source: "proc" },
      ],
    });
    spec.windows = {
      ...spec.windows,
      network: {
        endpointList: ["e1"],
        allowUnqualifiedDNSQuery: true,
        DNSSearchList: ["a.example", "b.example"],
      },
      resources: { cpu: { count: 2, maximum: 5000 }, memory: { limit: 512 * 1024 * 1024 } },
    };
    const container = await c.newContainer(name, spec);
    expect(fake.lastCreateDocument()).toMatchObject({
      ContainerType: "Linux",
      LayerFolderPath: "C:\\lcow\\scratch",
      Layers: [{ Path: "C:\\lcow\\base\\layer.vhd" }],
      EndpointList: ["e1"],
      AllowUnqualifiedDNSQuery: true,
      DNSSearchList: "a.example,b.example",
      ProcessorCount: 2,
      ProcessorMaximum: 5000,
      MemoryMaximumInMB: 512,
      MappedDirectories: [
        {
          HostPath: "C:\\data",
          ContainerPath: `/tmp/gcs/${name}/binds/data`,
          ReadOnly: true,
          CreateInUtilityVM: true,
          LinuxMetadata: true,
        },
        {
          HostPath: "C:\\cache",
          ContainerPath: "/run/binds/cache",
          ReadOnly: false,
          CreateInUtilityVM: true,
          LinuxMetadata: true,
        },
      ],
    });
    await container.delete();
    await expect(
      c.newContainer(
        id(),
        lcowSpec(["true"], {
          mounts: [{ destination: "/x", type: "bind", source: "C:\\x", options: ["nosuid"] }],
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(c.newContainer(id(), { ...lcowSpec(["true"]), windows: {} })).rejects.toThrow(
      "layerFolders",
    );
  });
});

describe("hcsshim fidelity (Windows guests)", () => {
  it("signal numbers follow hcsshim's map: 0 CtrlC, 1 CtrlBreak, 2 CtrlClose, 5 CtrlLogOff, 6/15 CtrlShutdown", async () => {
    const c = client();
    // The fake turns each console event into the POSIX signal of the same meaning (exit 128+n).
    const cases: Array<[string | number, number]> = [
      [0, 130],
      [1, 131],
      [2, 129],
      ["SIGINT", 129],
      [5, 129],
      [6, 143],
      ["SIGTERM", 143],
      ["ctrlc", 130],
      ["CtrlBreak", 131],
    ];
    for (const [signal, code] of cases) {
      const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
      const task = await container.newTask();
      const exited = task.wait();
      await task.start();
      await task.kill(signal);
      expect((await exited).exitCode, String(signal)).toBe(code);
      await task.delete();
      await container.delete();
    }
    const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    for (const signal of [3, "SIGQUIT", "SIGUSR1", 64]) {
      await expect(task.kill(signal), String(signal)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await task.forceDelete();
    await container.delete();
  });

  it("a signal HCS answers with INVALID_STATE, SYSTEM_NOT_FOUND or ERROR_NOT_FOUND was not delivered: no error, and a wait that never sees the exit is unblocked with -1", async () => {
    const c = client();
    for (const hresult of [0xc0370105, 0xc037010e, 0x80070490]) {
      const container = await c.newContainer(id(), windowsSpec(["sleep", "30"]));
      const task = await container.newTask();
      const exited = task.wait();
      await task.start();
      fake.injectFailure("HcsSignalProcess", hresult);
      await task.kill("SIGTERM");
      expect((await exited).exitCode).toBe(-1);
      await task.delete();
      await container.delete();
    }
    // Any other failure is logged, as hcsshim logs it: a Windows guest's signal is delivered in the background.
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    const logged = client({ logger });
    const container = await logged.newContainer(id(), windowsSpec(["sleep", "30"]));
    const task = await container.newTask();
    await task.start();
    fake.injectFailure("HcsSignalProcess", 0x80070005);
    await task.kill("SIGTERM");
    await until(() => lines.some((l) => l.includes("ERROR_ACCESS_DENIED")), "the failed signal is logged");
    expect(await task.status()).toBe("running");
    await task.forceDelete();
    await container.delete();
  });

  it("SIGKILL as hcsshim's Process.Kill: no second system handle terminates the container; a failed HcsOpenProcess is an error, not a retry", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["sleep", "1000"]));
    const task = await container.newTask();
    const taskExit = task.wait();
    await task.start();
    const exec = await task.exec("e", { args: ["sleep", "1000"], cwd: "", user: { uid: 0, gid: 0 } });
    fake.injectFailure("HcsOpenProcess", 0x80004005);
    await expect(exec.kill("SIGKILL")).rejects.toMatchObject({ origin: { hresultName: "E_FAIL" } });
    expect((await task.pids()).map((p) => p.pid).sort()).toEqual([task.pid, exec.pid].sort());
    // A terminate HCS answers with INVALID_STATE, SYSTEM_NOT_FOUND or ERROR_NOT_FOUND was not delivered (hcsshim's
    // processSignalResult): no error, and the next kill tries again.
    for (const hresult of [0xc0370105, 0xc037010e, 0x80070490]) {
      fake.injectFailure("HcsTerminateProcess", hresult | 0);
      await exec.kill("SIGKILL");
    }
    expect((await task.pids()).map((p) => p.pid)).toContain(exec.pid);
    // No second handle to the system: the whole container goes, so nothing is left behind.
    fake.injectFailure("HcsOpenComputeSystem", 0x80004005);
    await exec.kill("SIGKILL");
    expect((await exec.wait()).exitCode).toBe(137);
    expect((await taskExit).exitCode).toBe(137);
    await exec.delete();
    await task.delete();
    await container.delete();
  });

  it("on RS5+ endpoints without an HNS namespace are refused; a namespace is carried", async () => {
    await fake.reset();
    const c = client();
    const spec = windowsSpec(["true"]);
    spec.windows!.network = { endpointList: ["9b0f8d55-0000-4000-8000-000000000001"] };
    await expect(c.newContainer(id(), spec)).rejects.toBeInstanceOf(NotImplementedError);
    expect(fake.lastCreateDocument()).toBeUndefined();
    spec.windows!.network = {
      ...spec.windows!.network,
      networkNamespace: "6b6e8a5a-0000-4000-8000-000000000002",
    };
    const container = await c.newContainer(id(), spec);
    expect(fake.lastCreateDocument()).toMatchObject({
      Container: { Networking: { Namespace: "6b6e8a5a-0000-4000-8000-000000000002" } },
    });
    await container.delete();
    // Before RS5 the v1 document carries the endpoints and has no namespace to give.
    const v1 = client({ windowsBuild: 17134 });
    await expect(v1.newContainer(id(), spec)).rejects.toBeInstanceOf(NotImplementedError);
  });

  it("mount options: ro in any case is read-only; named-pipe mounts need RS3", async () => {
    const c = client();
    const spec = windowsSpec(["true"]);
    spec.mounts = [{ destination: "C:\\data", source: "C:\\host", options: ["RO"] }];
    const container = await c.newContainer(id(), spec);
    expect(fake.lastCreateDocument()).toMatchObject({
      Container: { MappedDirectories: [{ HostPath: "C:\\host", ContainerPath: "C:\\data", ReadOnly: true }] },
    });
    await container.delete();
    const pipe = windowsSpec(["true"]);
    pipe.mounts = [{ destination: "\\\\.\\pipe\\docker_engine", source: "\\\\.\\pipe\\docker_engine" }];
    await expect(client({ windowsBuild: 15063 }).newContainer(id(), pipe)).rejects.toBeInstanceOf(
      NotImplementedError,
    );
    const ok = await client({ windowsBuild: 16299 }).newContainer(id(), pipe);
    expect(fake.lastCreateDocument()).toMatchObject({
      MappedPipes: [{ ContainerPipeName: "docker_engine" }],
    });
    await ok.delete();
  });

  it('"hyperv": null (Go\'s nil, as JSON specs carry it) is process isolation', async () => {
    const spec = JSON.parse(
      JSON.stringify({
        ...windowsSpec(["true"]),
        windows: { ...windowsSpec(["true"]).windows, hyperv: null },
      }),
    ) as OciSpec;
    const container = await client({ windowsBuild: 17134 }).newContainer(id(), spec);
    expect(fake.lastCreateDocument()).toMatchObject({
      HvPartition: false,
      VolumePath: FAKE_VOLUME.slice(0, -1),
    });
    await container.delete();
  });

  it("root.path: a volume GUID path with or without its trailing backslash, which v1 drops and v2 keeps; braces required", async () => {
    const bare = FAKE_VOLUME.slice(0, -1);
    for (const [build, expected] of [
      [17763, { Container: { Storage: { Path: FAKE_VOLUME } } }],
      [17134, { VolumePath: bare }],
    ] as const) {
      const spec = windowsSpec(["true"]);
      spec.root = { path: bare };
      const container = await client({ windowsBuild: build }).newContainer(id(), spec);
      expect(fake.lastCreateDocument()).toMatchObject(expected);
      await container.delete();
    }
    await fake.reset();
    const spec = windowsSpec(["true"]);
    spec.root = { path: FAKE_VOLUME.replace("{", "").replace("}", "") };
    await expect(client().newContainer(id(), spec)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(fake.lastCreateDocument()).toBeUndefined();
  });

  it("a gMSA credential spec goes in v1's Credentials; v2 has no such field, so it is refused, not dropped", async () => {
    const spec = windowsSpec(["true"]);
    spec.windows!.credentialSpec = '{"CmsPlugins":["ActiveDirectory"]}';
    const v1 = await client({ windowsBuild: 17134 }).newContainer(id(), spec);
    expect(fake.lastCreateDocument()).toMatchObject({ Credentials: spec.windows!.credentialSpec });
    await v1.delete();
    await fake.reset();
    await expect(client().newContainer(id(), spec)).rejects.toBeInstanceOf(NotImplementedError);
    expect(fake.lastCreateDocument()).toBeUndefined();
  });

  it("limits never dropped without a word: memory under 1 MiB, a sandbox size on schema v2", async () => {
    await fake.reset();
    const tiny = windowsSpec(["true"]);
    tiny.windows!.resources = { memory: { limit: 512 * 1024 } };
    await expect(client().newContainer(id(), tiny)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(fake.lastCreateDocument()).toBeUndefined();
    const sandbox = windowsSpec(["true"]);
    sandbox.windows!.resources = { storage: { sandboxSize: 40 * 1024 ** 3 } };
    await expect(client().newContainer(id(), sandbox)).rejects.toBeInstanceOf(NotImplementedError);
    expect(fake.lastCreateDocument()).toBeUndefined();
    // v1 has the field.
    const v1 = await client({ windowsBuild: 17134 }).newContainer(id(), sandbox);
    expect(fake.lastCreateDocument()).toMatchObject({ StorageSandboxSize: 40 * 1024 ** 3 });
    await v1.delete();
  });

  it("CPU limits as HCS takes them: one of count/shares/maximum in a silo, a count with a maximum for Hyper-V, ranges, the host's processors", async () => {
    const host = os.availableParallelism();
    const withCpu = (cpu: { count?: number; shares?: number; maximum?: number }, hyperv = false) => {
      const spec = windowsSpec(["true"], { hyperv });
      spec.windows!.resources = { cpu };
      return spec;
    };
    await fake.reset();
    const c = client({ fileExists: (p) => p.endsWith("UtilityVM") });
    // Refused before HCS sees them: a silo's job object takes one limit, weight and maximum are 1-10000.
    for (const [cpu, hyperv] of [
      [{ count: 1, maximum: 5000 }, false],
      [{ shares: 100, maximum: 5000 }, false],
      [{ shares: 10_001 }, false],
      [{ maximum: 20_000 }, true],
      [{ count: -1 }, false],
    ] as const) {
      await expect(c.newContainer(id(), withCpu(cpu, hyperv)), JSON.stringify(cpu)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      expect(fake.lastCreateDocument(), JSON.stringify(cpu)).toBeUndefined();
    }
    // A Hyper-V partition takes a count with a maximum (moby sends both for --cpus).
    const xenon = await c.newContainer(id(), withCpu({ count: 1, maximum: 5000 }, true));
    expect(fake.lastCreateDocument()).toMatchObject({ ProcessorCount: 1, ProcessorMaximum: 5000 });
    await xenon.delete();
    // A count above the host's processors is lowered to them, as moby and hcsshim do.
    const argon = await c.newContainer(id(), withCpu({ count: host + 8 }));
    expect(fake.lastCreateDocument()).toMatchObject({ Container: { Processor: { Count: host } } });
    await argon.delete();
  });

  it("layer ids come from the library's NameToGuid", async () => {
    const c = client();
    const container = await c.newContainer(id(), windowsSpec(["true"]));
    const ns = Buffer.from("1a3b2c4d5e6f4a0b8c9d0e1f2a3b4c5d", "hex");
    const digest = createHash("sha1").update(ns).update("base", "utf8").digest();
    digest[6] = (digest[6]! & 0x0f) | 0x50;
    digest[8] = (digest[8]! & 0x3f) | 0x80;
    const hex = digest.subarray(0, 16).toString("hex");
    expect(fake.lastCreateDocument()).toMatchObject({
      Container: {
        Storage: {
          Layers: [
            {
              Id: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
            },
          ],
        },
      },
    });
    await container.delete();
  });
});

/** Resolves once `condition` holds; fails naming `what` if it never does (a liveness bound, not a timing check). */
async function until(condition: () => boolean, what: string, boundMs = 20_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("blocking HCS calls run on threads of their own", () => {
  it("8 HcsSignalProcess calls blocked in HCS do not hold up the SIGKILL of another container", async () => {
    const c = client();
    // Processes that ignore CtrlShutdown (SIGTERM on the fake): their signal calls block until released.
    const stubborn = [];
    for (let i = 0; i < 8; i++) {
      const container = await c.newContainer(
        id(),
        windowsSpec(["sh", "-c", 'trap "" TERM; exec sleep 1000']),
      );
      const task = await container.newTask();
      await task.start();
      stubborn.push({ container, task });
    }
    const target = await c.newContainer(id(), windowsSpec(["sleep", "1000"]));
    const targetTask = await target.newTask();
    const targetExit = targetTask.wait();
    await targetTask.start();

    // The fake runs them on this host: a SIGTERM that lands before the trap would end one at once.
    for (const { task } of stubborn) {
      await until(
        () => fs.readFileSync(`/proc/${task.pid}/comm`, "utf8").trim() === "sleep",
        `process ${task.pid} ignores SIGTERM`,
      );
    }
    fake.setOption("BlockSignalProcess", 1);
    try {
      // As hcsshim's exec_hcs.go Kill for a Windows guest: each kill returns once the signal is on its way,
      // while its HcsSignalProcess stays blocked in HCS (servercore's behaviour) on a thread of its own.
      await Promise.all(stubborn.map(({ task }) => task.kill("SIGTERM")));
      await until(() => fake.blockedCalls() === 8, "8 HcsSignalProcess calls in HCS at once");

      await targetTask.kill("SIGKILL");
      expect((await targetExit).exitCode).toBe(137);
      // The kill went through while every signal call was still inside HCS.
      expect(fake.blockedCalls()).toBe(8);
    } finally {
      fake.setOption("BlockSignalProcess", 0);
    }
    for (const { container, task } of stubborn) {
      await task.forceDelete();
      await container.delete();
    }
    await targetTask.delete();
    await target.delete();
  });

  it("an exec given up while HcsCreateProcess is blocked returns at once; the late process is terminated, never announced", async () => {
    const c = client();
    const { events, stop } = recordEvents(c);
    const container = await c.newContainer(id(), windowsSpec(["sleep", "1000"]));
    const task = await container.newTask();
    await task.start();
    const handlesBefore = fake.openHandles();
    fake.setOption("BlockCreateProcess", 1);
    try {
      const abort = new AbortController();
      const attempt = task.exec(
        "late",
        { args: ["sleep", "1000"], cwd: "", user: { uid: 0, gid: 0 } },
        { signal: abort.signal },
      );
      await until(() => fake.blockedCalls() === 1, "the exec reached HCS");
      abort.abort();
      await expect(attempt).rejects.toBeInstanceOf(CanceledError);
      expect(fake.blockedCalls()).toBe(1);
    } finally {
      fake.setOption("BlockCreateProcess", 0);
    }
    await until(() => fake.openHandles() === handlesBefore, "the late process handle was closed");
    // Terminated, then reaped: only the init process is left.
    let pids = await task.pids();
    for (let i = 0; i < 500 && pids.length > 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
      pids = await task.pids();
    }
    expect(pids.map((p) => p.pid)).toEqual([task.pid]);
    await task.kill("SIGKILL");
    await task.wait();
    stop();
    expect(events.filter((e) => e.processId === "late")).toEqual([]);
    await task.delete();
    await container.delete();
  });

  it("a caller that gives up on a blocked create returns at once; the late system is terminated and its handle closed", async () => {
    await fake.reset();
    const c = client();
    const name = id();
    fake.setOption("BlockCreateComputeSystem", 1);
    try {
      const abort = new AbortController();
      const attempt = c.newContainer(name, windowsSpec(["true"]), { signal: abort.signal });
      await until(() => fake.blockedCalls() === 1, "the create reached HCS");
      abort.abort();
      await expect(attempt).rejects.toBeInstanceOf(CanceledError);
      expect(fake.blockedCalls()).toBe(1);
    } finally {
      fake.setOption("BlockCreateComputeSystem", 0);
    }
    await until(() => fake.lastCreateDocument() !== undefined, "the create went on");
    await until(() => fake.openHandles() === 0, "the late handle was closed");
    expect(await c.listContainers()).toEqual([]);
    // The id is free again.
    const again = await c.newContainer(name, windowsSpec(["true"]));
    await again.delete();
  });
});
