/**
 * Every export the client uses fails once, somewhere in a full lifecycle: the call that hits it
 * must fail with a typed error (or be tolerated), nothing may hang, and once the client is closed
 * the fake must hold no handle, registration or allocation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalClient } from "../../src/libcontainerd/local/client.js";
import { LibcontainerdError } from "../../src/libcontainerd/types/errors.js";
import { defaultWindowsSpec } from "../../src/oci/index.js";
import { ensureFakeLibrary, FAKE_LAYERS, FAKE_VOLUME, FakeControl } from "./fake.js";

let library: string;
let fake: FakeControl;
let seq = 0;

beforeAll(() => {
  library = ensureFakeLibrary();
  fake = new FakeControl(library);
});

afterAll(() => {
  fake.close();
});

function spec(args: string[]) {
  const s = defaultWindowsSpec({ args, layerFolders: FAKE_LAYERS });
  s.root = { path: FAKE_VOLUME };
  return s;
}

/**
 * Runs a lifecycle that touches every export; returns the first error, if any. With
 * HcsOpenComputeSystem failing, the exec's SIGKILL terminates the whole compute system, as
 * hcsshim's Process.Kill does (internal/hcs/process.go), so the task ends killed (137 on the fake).
 */
async function lifecycle(client: LocalClient, injected?: string): Promise<unknown> {
  try {
    const container = await client.newContainer(
      `fault-${process.pid}-${++seq}`,
      spec(["sh", "-c", "cat; exit 3"]),
    );
    const task = await container.newTask({ stdio: { stdin: true, stdout: true, stderr: true } });
    task.stdout?.resume();
    task.stderr?.resume();
    await task.start();
    const exec = await task.exec("sleeper", { args: ["sleep", "30"], cwd: "", user: { uid: 0, gid: 0 } });
    await exec.kill("SIGTERM");
    await exec.wait({ timeoutMs: 5000 });
    await exec.delete();
    await task.pids();
    await task.stats();
    await client.listContainers();
    const killer = await task.exec("killer", { args: ["sleep", "30"], cwd: "", user: { uid: 0, gid: 0 } });
    await killer.kill("SIGKILL");
    await killer.wait({ timeoutMs: 5000 });
    await killer.delete();
    await task.closeStdin();
    expect((await task.wait({ timeoutMs: 5000 })).exitCode).toBe(
      injected === "HcsOpenComputeSystem" ? 137 : 3,
    );
    await task.delete();
    await container.delete();
    return undefined;
  } catch (err) {
    return err;
  }
}

const EXPORTS = [
  "HcsCreateComputeSystem",
  "HcsStartComputeSystem",
  "HcsRegisterComputeSystemCallback",
  "HcsGetComputeSystemProperties",
  "HcsEnumerateComputeSystems",
  "HcsCreateProcess",
  "HcsRegisterProcessCallback",
  "HcsGetProcessProperties",
  "HcsModifyProcess",
  "HcsSignalProcess",
  "HcsOpenComputeSystem",
  "HcsOpenProcess",
  "HcsTerminateProcess",
  "HcsShutdownComputeSystem",
  "HcsTerminateComputeSystem",
];

/** A failed close or unregister leaves its handle open by definition; only "no hang" applies. */
const LEAKY_BY_DESIGN = ["HcsCloseProcess", "HcsCloseComputeSystem", "HcsUnregisterProcessCallback"];

describe("fault injection", () => {
  it("the lifecycle itself passes and leaves nothing behind", async () => {
    const client = new LocalClient({ library, windowsBuild: 17763, operationTimeoutMs: 5000 });
    expect(await lifecycle(client)).toBeUndefined();
    await client.close();
    expect(await fake.settled()).toEqual({ liveAllocations: 0, openHandles: 0 });
  });

  for (const exportName of EXPORTS) {
    for (const mode of ["sync", "async"] as const) {
      it(`${exportName} failing (${mode}) fails typed, does not hang, leaks nothing`, async () => {
        await fake.reset();
        fake.setOption("InjectAsync", mode === "async" ? 1 : 0);
        fake.injectFailure(
          exportName,
          0x80004005 | 0,
          JSON.stringify({ ErrorEvents: [{ Message: `injected into ${exportName}` }] }),
        );
        const client = new LocalClient({
          library,
          windowsBuild: 17763,
          operationTimeoutMs: 5000,
          stopTimeoutMs: 2000,
        });
        const err = await lifecycle(client, exportName);
        await client.close();
        if (err !== undefined) {
          if (!(err instanceof LibcontainerdError)) throw err;
          // Wherever it surfaced, an injected HRESULT keeps its identity.
          if (err.origin?.backend === "hcs") expect(err.origin.hresultName).toBe("E_FAIL");
        }
        fake.setOption("InjectAsync", 0);
        expect(await fake.settled()).toEqual({ liveAllocations: 0, openHandles: 0 });
      }, 30_000);
    }
  }

  it("ServiceDisconnect mid-run ends the task with exit code -1 (hcsshim, moby), published once; close still releases everything", async () => {
    await fake.reset();
    const client = new LocalClient({
      library,
      windowsBuild: 17763,
      operationTimeoutMs: 5000,
      stopTimeoutMs: 2000,
    });
    const container = await client.newContainer(`fault-${process.pid}-${++seq}`, spec(["sleep", "30"]));
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    await task.start();
    const abort = new AbortController();
    const exits: number[] = [];
    const recording = (async () => {
      for await (const e of client.events({ signal: abort.signal }))
        if (e.type === "exit") exits.push(e.exitCode ?? NaN);
    })().catch(() => {});
    const waiting = task.wait();
    fake.serviceDisconnect();
    expect((await waiting).exitCode).toBe(-1);
    for (let i = 0; i < 500 && exits.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    await recording;
    expect(exits).toEqual([-1]);
    await client.close();
    expect(await fake.settled()).toEqual({ liveAllocations: 0, openHandles: 0 });
  }, 30_000);

  for (const exportName of LEAKY_BY_DESIGN) {
    it(`${exportName} failing does not hang`, async () => {
      await fake.reset();
      fake.injectFailure(exportName, 0x80004005 | 0, null);
      const client = new LocalClient({
        library,
        windowsBuild: 17763,
        operationTimeoutMs: 5000,
        stopTimeoutMs: 2000,
      });
      await lifecycle(client);
      await client.close();
    }, 30_000);
  }
});
