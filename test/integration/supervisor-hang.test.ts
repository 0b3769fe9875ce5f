// Hung or busy: the managed containerd is replaced only when it is stopped or truly hung, never
// because it (or this process's own event loop) is busy.
import { once } from "node:events";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep, setImmediate as yieldToLoop } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { Version } from "../../src/gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import {
  type ContainerdRestartedEvent,
  type ContainerdUnhealthyEvent,
  ManagedContainerd,
  type ManagedContainerdOptions,
} from "../../src/libcontainerd/supervisor/index.js";
import { isProcessAlive } from "../../src/libcontainerd/supervisor/process-info.js";
import { requireBinary } from "../harness/binaries.js";
import { type ScratchDir, scratchDir } from "../harness/temp-dirs.js";

requireBinary("containerd");

const scratch: ScratchDir[] = [];
const supervisors: ManagedContainerd[] = [];

afterEach(async () => {
  await Promise.allSettled(supervisors.splice(0).map((s) => s.shutdown({ timeoutMs: 2_000 })));
});
afterAll(async () => {
  await Promise.all(scratch.map((s) => s.cleanup()));
});

function supervisor(extra: ManagedContainerdOptions = {}): ManagedContainerd {
  const s = scratchDir("lcd-hang-");
  scratch.push(s);
  const sup = new ManagedContainerd({
    root: join(s.dir, "root"),
    stateDir: join(s.dir, "state"),
    healthIntervalMs: 200,
    healthTimeoutMs: 300,
    unhealthyThreshold: 3,
    restartBackoff: { initialMs: 50, maxMs: 1_000 },
    ...extra,
  });
  supervisors.push(sup);
  return sup;
}

function watch(s: ManagedContainerd): {
  unhealthy: ContainerdUnhealthyEvent[];
  restarts: ContainerdRestartedEvent[];
} {
  const seen = { unhealthy: [] as ContainerdUnhealthyEvent[], restarts: [] as ContainerdRestartedEvent[] };
  s.on("unhealthy", (e) => seen.unhealthy.push(e));
  s.on("restarted", (e) => seen.restarts.push(e));
  return seen;
}

/** Keeps this thread busy, as hundreds of lifecycles at once do: long synchronous stretches, brief yields. */
async function hogEventLoop(totalMs: number, sliceMs: number): Promise<void> {
  const end = performance.now() + totalMs;
  while (performance.now() < end) {
    const sliceEnd = performance.now() + sliceMs;
    while (performance.now() < sliceEnd) {
      // busy
    }
    await yieldToLoop();
  }
}

/** Whether SIGKILL is pending for the process (sent, not yet delivered: it is frozen). */
function sigkillPending(pid: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const masks = [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].map((m) => BigInt(`0x${m[1]}`));
  return masks.some((mask) => (mask & (1n << 8n)) !== 0n);
}

describe("the managed containerd under load", () => {
  test("this process's own busy event loop does not get containerd killed", async () => {
    const s = supervisor();
    await s.start();
    const pid = s.pid;
    const seen = watch(s);
    // 4 s of 900 ms stretches: a probe timed on this thread would time out after every one.
    await hogEventLoop(4_000, 900);
    await sleep(500);
    expect(seen.unhealthy).toEqual([]);
    expect(seen.restarts).toEqual([]);
    expect(s.pid).toBe(pid);
  });

  test("a containerd that misses every check but answers other calls is busy, and left running", async () => {
    // A 1 ms deadline: nearly every check fails although containerd works.
    const s = supervisor({ healthTimeoutMs: 1 });
    await s.start();
    const pid = s.pid;
    const seen = watch(s);
    const version = serviceClient(
      Version,
      createContainerdTransport({ address: s.address, namespace: "default" }),
    );
    const abort = new AbortController();
    const load = Array.from({ length: 8 }, async () => {
      while (!abort.signal.aborted) await version.version({}, { signal: abort.signal }).catch(() => {});
    });
    await sleep(4_000);
    abort.abort();
    await Promise.all(load);
    expect(seen.unhealthy.some((e) => e.busy && !e.stopped)).toBe(true);
    expect(seen.restarts).toEqual([]);
    expect(s.pid).toBe(pid);
    expect(isProcessAlive(pid)).toBe(true);
  });

  test("a frozen containerd (not stopped, no CPU time moving) is hung: killed and replaced", async () => {
    const s = supervisor();
    await s.start();
    const frozenPid = s.pid;
    const seen = watch(s);
    const cgroup = `/sys/fs/cgroup/freezer/lcd-hang-${process.pid}-${frozenPid}`;
    mkdirSync(cgroup);
    try {
      writeFileSync(join(cgroup, "cgroup.procs"), String(frozenPid));
      writeFileSync(join(cgroup, "freezer.state"), "FROZEN");
      const restarted = once(s, "restarted") as Promise<[ContainerdRestartedEvent]>;
      // A frozen task takes its SIGKILL when thawed: thaw once the supervisor has sent it.
      while (!sigkillPending(frozenPid)) await sleep(20);
      writeFileSync(join(cgroup, "freezer.state"), "THAWED");
      const [restart] = await restarted;
      expect(restart).toMatchObject({ previousPid: frozenPid, reason: "unhealthy" });
      expect(seen.unhealthy.map((e) => e.consecutiveFailures)).toEqual([1, 2, 3]);
      expect(seen.unhealthy.every((e) => !e.stopped && !e.busy)).toBe(true);
      expect(isProcessAlive(frozenPid)).toBe(false);
    } finally {
      writeFileSync(join(cgroup, "freezer.state"), "THAWED");
      while (isProcessAlive(frozenPid) && readFileSync(join(cgroup, "cgroup.procs"), "utf8").trim() !== "") {
        await sleep(20);
      }
      rmdirSync(cgroup);
    }
  });
});
