// Issue #5's acceptance: a managed containerd is SIGKILLed with 10 containers running, 5 of them exit
// while it is down, the supervisor brings it back, and the client accounts for every container:
// each exit exactly once with its real code, every pending wait() resolved, the 5 others still
// running and killable.
//
// Run twice, because a shim retries forwarding an event it could not deliver after 1, 2, 3, 4 and 5
// seconds, then drops it (pkg/shim/publisher.go): after a short outage the shim's late TaskExit and
// the client's resync both report each exit (the dedupe is what keeps it to one); after an outage
// longer than those 15 s only the resync can.
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, expect, test } from "vitest";
import { createClient, type LibcontainerdClient } from "../../src/libcontainerd/factory.js";
import type {
  ContainerdRestartedEvent,
  ContainerdStartedEvent,
} from "../../src/libcontainerd/supervisor/index.js";
import { isProcessAlive, waitForProcessExit } from "../../src/libcontainerd/supervisor/process-info.js";
import type { Container, ExitStatus, Task } from "../../src/libcontainerd/types/client.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { requireBinary } from "../harness/binaries.js";
import { buildBusyboxRootfs } from "../harness/rootfs.js";
import { type ScratchDir, scratchDir } from "../harness/temp-dirs.js";

requireBinary("containerd");
requireBinary("containerd-shim-runc-v2");
requireBinary("runc");

const EXIT_CODES = [11, 12, 13, 14, 15] as const;
const NAMESPACE = "restart";
const scratches: ScratchDir[] = [];
const clients: LibcontainerdClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.all(scratches.map((s) => s.cleanup()));
});

async function managedClient(
  outageMs: number,
): Promise<{ client: LibcontainerdClient; scratch: ScratchDir }> {
  const scratch = scratchDir("lcd-rst-");
  scratches.push(scratch);
  buildBusyboxRootfs(join(scratch.dir, "rootfs"));
  const client = await createClient({
    platform: { os: "linux" },
    namespace: NAMESPACE,
    root: join(scratch.dir, "root"),
    stateDir: join(scratch.dir, "state"),
    managedContainerd: {
      healthIntervalMs: 200,
      healthTimeoutMs: 500,
      // The first restart after a stable run waits this long: the outage the test needs.
      restartBackoff: { initialMs: outageMs, maxMs: outageMs },
      shutdownTimeoutMs: 5_000,
    },
  });
  clients.push(client);
  return { client, scratch };
}

type Settled = { ok: true; status: ExitStatus } | { ok: false; error: Error };

function settle(promise: Promise<ExitStatus>): Promise<Settled> {
  return promise.then(
    (status) => ({ ok: true, status }),
    (error: Error) => ({ ok: false, error }),
  );
}

async function until(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

function exitsOf(events: LibcontainerdEvent[], containerId: string): LibcontainerdEvent[] {
  return events.filter(
    (e) => e.type === "exit" && e.containerId === containerId && e.processId === containerId,
  );
}

test.each([
  ["SIGKILLed", "2 s: the shim redelivers and the resync reports too", "SIGKILL", 2_000],
  ["SIGKILLed", "18 s: the shim has given up, only the resync reports", "SIGKILL", 18_000],
  // Hung, not gone: the supervisor finds it unhealthy (about 2 s here), kills and replaces it.
  ["SIGSTOPped", "its detection and replacement", "SIGSTOP", 500],
] as const)(
  "10 containers, containerd %s, 5 exit during an outage of %s: every exit once, with its code",
  async (_how, _label, signal, outageMs) => {
    const { client: c, scratch } = await managedClient(outageMs);
    const rootfs = join(scratch.dir, "rootfs");
    const supervisor = c.managedContainerd!;
    expect(supervisor).toBeDefined();
    const trigger = `go-${process.pid}-${Date.now()}`;

    const streamed: LibcontainerdEvent[] = [];
    const viaBackend: LibcontainerdEvent[] = [];
    const stopEvents = new AbortController();
    const pump = (async () => {
      try {
        for await (const event of c.events({ signal: stopEvents.signal })) streamed.push(event);
      } catch {
        // Aborting the iteration is how it ends.
      }
    })();
    c.setBackend({
      processEvent(_containerId, _type, event) {
        viaBackend.push(event);
      },
    });

    const ids = Array.from({ length: 10 }, (_, i) => `rst-${i}`);
    const exiting = ids.slice(0, 5);
    const staying = ids.slice(5);
    const containers = new Map<string, Container>();
    const tasks = new Map<string, Task>();
    const waits = new Map<string, Promise<Settled>>();
    for (const [i, id] of ids.entries()) {
      const args =
        i < 5
          ? ["sh", "-c", `while ! test -e /${trigger}; do sleep 0.05; done; exit ${EXIT_CODES[i]}`]
          : ["sleep", "600"];
      const container = await c.newContainer(
        id,
        defaultLinuxSpec({ args, rootfs, cgroupsPath: `${scratch.cgroupParent}/${id}` }),
      );
      const task = await container.newTask();
      waits.set(id, settle(task.wait()));
      await task.start();
      containers.set(id, container);
      tasks.set(id, task);
    }
    await until("10 start events", () => streamed.filter((e) => e.type === "start").length >= 10, 10_000);
    for (const id of ids) expect(isProcessAlive(tasks.get(id)!.pid), id).toBe(true);

    // containerd goes away; the 5 exit while it is down; only then may it come back.
    const killedPid = supervisor.pid;
    const startedAfterKill: ContainerdStartedEvent[] = [];
    supervisor.on("started", (event) => startedAfterKill.push(event));
    const exited = once(supervisor, "exited");
    const restarted = once(supervisor, "restarted") as Promise<[ContainerdRestartedEvent]>;
    const killedAt = performance.now();
    process.kill(killedPid, signal);
    if (signal === "SIGKILL") await exited;
    writeFileSync(join(rootfs, trigger), "");
    for (const id of exiting) {
      expect(await waitForProcessExit(tasks.get(id)!.pid, 1_000), `${id} exits during the outage`).toBe(true);
    }
    expect(startedAfterKill, "containerd stayed down while the 5 exited").toEqual([]);

    const [restart] = await restarted;
    const backAfterMs = performance.now() - killedAt;
    expect(restart).toMatchObject({
      previousPid: killedPid,
      reason: signal === "SIGKILL" ? "exited" : "unhealthy",
    });
    expect(isProcessAlive(killedPid), "the old containerd is gone, not left stopped").toBe(false);

    // Every pending wait() of the 5 resolves with the real exit code, not an error.
    const exitResults = await Promise.all(exiting.map((id) => waits.get(id)!));
    // Soft: a failure here still fails the test, and the checks below still report what else holds.
    expect.soft(exitResults, "pending wait() of the 5 that exited during the outage").toEqual(
      EXIT_CODES.map((exitCode) => ({
        ok: true,
        status: { exitCode, exitedAt: expect.any(Date), oomKilled: false },
      })),
    );

    await until(
      "an exit event for each of the 5",
      () => exiting.every((id) => exitsOf(streamed, id).length >= 1),
      15_000,
    );

    // The 5 others never noticed.
    for (const id of staying) {
      expect(await tasks.get(id)!.status(), id).toBe("running");
      expect(isProcessAlive(tasks.get(id)!.pid), id).toBe(true);
    }
    expect((await c.listContainers()).map((info) => info.id).sort()).toEqual([...ids].sort());

    // ...and can be killed; their waits resolve too.
    for (const id of staying) await tasks.get(id)!.kill("SIGKILL");
    const stayingResults = await Promise.all(staying.map((id) => waits.get(id)!));
    expect.soft(stayingResults, "pending wait() of the 5 that kept running").toEqual(
      staying.map(() => ({
        ok: true,
        status: { exitCode: 137, exitedAt: expect.any(Date), oomKilled: false },
      })),
    );
    await until(
      "an exit event for all 10",
      () => ids.every((id) => exitsOf(streamed, id).length >= 1),
      15_000,
    );
    // Late duplicates (a replayed TaskExit, a second resync) would arrive within this.
    await sleep(1_500);

    for (const [i, id] of exiting.entries()) {
      const exits = exitsOf(streamed, id);
      expect(
        exits.map((e) => e.exitCode),
        `${id}: events()`,
      ).toEqual([EXIT_CODES[i]]);
      expect(
        exitsOf(viaBackend, id).map((e) => e.exitCode),
        `${id}: setBackend`,
      ).toEqual([EXIT_CODES[i]]);
    }
    for (const id of staying) {
      expect(
        exitsOf(streamed, id).map((e) => e.exitCode),
        `${id}: events()`,
      ).toEqual([137]);
      expect(
        exitsOf(viaBackend, id).map((e) => e.exitCode),
        `${id}: setBackend`,
      ).toEqual([137]);
    }
    const allExits = streamed.filter((e) => e.type === "exit");
    const keys = allExits.map((e) => `${e.containerId}/${e.processId}/${e.pid}`);
    expect(new Set(keys).size, "no duplicate exit event").toBe(keys.length);

    for (const id of ids) {
      await tasks.get(id)!.delete();
      await containers.get(id)!.delete();
    }
    expect(await c.listContainers()).toEqual([]);
    stopEvents.abort();
    await pump;
    await c.close();
    console.log(
      `restart: containerd back ${backAfterMs.toFixed(0)} ms after ${signal} (restart delay ${outageMs} ms)`,
    );
  },
  90_000,
);
