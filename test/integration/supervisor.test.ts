// The managed containerd against the real binary: start, crash, hang, adoption, shutdown.
import { once } from "node:events";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { HealthProbe } from "../../src/libcontainerd/supervisor/health.js";
import {
  type ContainerdExitedEvent,
  type ContainerdRestartedEvent,
  type ContainerdUnhealthyEvent,
  ManagedContainerd,
  type ManagedContainerdOptions,
} from "../../src/libcontainerd/supervisor/index.js";
import { findContainerdProcesses, isProcessAlive } from "../../src/libcontainerd/supervisor/process-info.js";
import {
  CanceledError,
  FailedPreconditionError,
  UnavailableError,
} from "../../src/libcontainerd/types/errors.js";
import { requireBinary } from "../harness/binaries.js";
import { type ScratchDir, scratchDir } from "../harness/temp-dirs.js";

requireBinary("containerd");

const scratch: ScratchDir[] = [];
const supervisors: ManagedContainerd[] = [];

afterEach(async () => {
  // Shutdown first so no supervisor restarts what the cleanup kills.
  await Promise.allSettled(supervisors.splice(0).map((s) => s.shutdown({ timeoutMs: 2_000 })));
});
afterAll(async () => {
  await Promise.allSettled(supervisors.map((s) => s.shutdown({ timeoutMs: 2_000 })));
  await Promise.all(scratch.map((s) => s.cleanup()));
});

/** Fast intervals so a hang is caught in about a second instead of moby's tens of seconds. */
function options(dir: string, extra: ManagedContainerdOptions = {}): ManagedContainerdOptions {
  return {
    root: join(dir, "root"),
    stateDir: join(dir, "state"),
    healthIntervalMs: 200,
    healthTimeoutMs: 300,
    unhealthyThreshold: 3,
    restartBackoff: { initialMs: 50, maxMs: 1_000 },
    shutdownTimeoutMs: 5_000,
    ...extra,
  };
}

function supervisor(opts: ManagedContainerdOptions): ManagedContainerd {
  const s = new ManagedContainerd(opts);
  supervisors.push(s);
  return s;
}

function newDir(): string {
  const s = scratchDir("lcd-sup-");
  scratch.push(s);
  return s.dir;
}

async function serving(socket: string): Promise<boolean> {
  const probe = new HealthProbe(socket);
  try {
    return (await probe.check(2_000)).serving;
  } finally {
    probe.reset();
  }
}

describe("managed containerd", () => {
  test("starts, serves, writes its pid file and config, forwards its log through pino", async () => {
    const dir = newDir();
    const lines: string[] = [];
    const logger = pino(
      { level: "debug" },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    );
    const s = supervisor(options(dir, { logger }));
    const started = once(s, "started");
    const t0 = performance.now();
    await s.start();
    const startMs = performance.now() - t0;
    const [event] = await started;
    expect(event).toEqual({ pid: s.pid, address: join(dir, "state", "containerd.sock"), adopted: false });
    expect(s.address).toBe(join(dir, "state", "containerd.sock"));
    expect(await serving(s.address)).toBe(true);
    expect(readFileSync(join(dir, "state", "containerd.pid"), "utf8").trim()).toBe(String(s.pid));
    const config = readFileSync(join(dir, "state", "containerd.toml"), "utf8");
    expect(config).toContain(`root = "${dir}/root"`);
    expect(config).toContain(`state = "${dir}/state/daemon"`);
    expect(config).toContain('"io.containerd.grpc.v1.cri"');
    expect(config).toContain(`runtime_root = "${dir}/state/runc-v1"`);
    expect(findContainerdProcesses(join(dir, "state", "containerd.toml"))).toEqual([s.pid]);
    const forwarded = lines
      .map((line) => JSON.parse(line) as { containerdPid?: number; msg: string })
      .filter((entry) => entry.containerdPid === s.pid);
    expect(forwarded.length).toBeGreaterThan(0);
    expect(forwarded.some((entry) => /containerd successfully booted|serving/.test(entry.msg))).toBe(true);
    console.log(`managed containerd: serving ${startMs.toFixed(0)} ms after start()`);
  });

  test("a SIGKILLed containerd is restarted and serves again", async () => {
    const dir = newDir();
    const s = supervisor(options(dir));
    await s.start();
    const firstPid = s.pid;
    const exited = once(s, "exited") as Promise<[ContainerdExitedEvent]>;
    const restarted = once(s, "restarted") as Promise<[ContainerdRestartedEvent]>;
    const t0 = performance.now();
    process.kill(firstPid, "SIGKILL");
    const [exit] = await exited;
    expect(exit).toEqual({ pid: firstPid, exitCode: null, signal: "SIGKILL", expected: false });
    await s.waitUntilServing({ timeoutMs: 10_000 });
    const [restart] = await restarted;
    const restartMs = performance.now() - t0;
    expect(restart).toMatchObject({ previousPid: firstPid, reason: "exited", attempts: 1 });
    expect(restart.pid).not.toBe(firstPid);
    expect(s.pid).toBe(restart.pid);
    expect(await serving(s.address)).toBe(true);
    expect(readFileSync(join(dir, "state", "containerd.pid"), "utf8").trim()).toBe(String(restart.pid));
    expect(findContainerdProcesses(join(dir, "state", "containerd.toml"))).toEqual([restart.pid]);
    console.log(`managed containerd: SIGKILL → serving again in ${restartMs.toFixed(0)} ms`);
  });

  test("a SIGSTOPped containerd is found unhealthy, killed and replaced", async () => {
    const dir = newDir();
    const s = supervisor(options(dir));
    await s.start();
    const stoppedPid = s.pid;
    const unhealthy: ContainerdUnhealthyEvent[] = [];
    s.on("unhealthy", (event) => unhealthy.push(event));
    const restarted = once(s, "restarted") as Promise<[ContainerdRestartedEvent]>;
    const t0 = performance.now();
    process.kill(stoppedPid, "SIGSTOP");
    const [restart] = await restarted;
    const replaceMs = performance.now() - t0;
    expect(restart).toMatchObject({ previousPid: stoppedPid, reason: "unhealthy" });
    expect(unhealthy.map((e) => e.consecutiveFailures)).toEqual([1, 2, 3]);
    expect(unhealthy.every((e) => e.pid === stoppedPid && e.stopped)).toBe(true);
    expect(isProcessAlive(stoppedPid)).toBe(false);
    expect(await serving(s.address)).toBe(true);
    expect(findContainerdProcesses(join(dir, "state", "containerd.toml"))).toEqual([restart.pid]);
    console.log(`managed containerd: SIGSTOP → replaced and serving in ${replaceMs.toFixed(0)} ms`);
  });

  test("a second supervisor on the same dirs adopts the running containerd (one process, not two)", async () => {
    const dir = newDir();
    const configFile = join(dir, "state", "containerd.toml");
    const first = supervisor(options(dir));
    await first.start();
    const pid = first.pid;

    const second = supervisor(options(dir));
    const started = once(second, "started");
    await second.start();
    expect(await started).toEqual([{ pid, address: first.address, adopted: true }]);
    expect(second.adopted).toBe(true);
    expect(second.pid).toBe(pid);
    expect(findContainerdProcesses(configFile)).toEqual([pid]);

    // The first client goes away but leaves containerd (and its containers) running.
    await first.shutdown({ leaveRunning: true });
    expect(isProcessAlive(pid)).toBe(true);
    expect(await serving(second.address)).toBe(true);
    const third = supervisor(options(dir));
    await third.start();
    expect(third.pid).toBe(pid);
    expect(findContainerdProcesses(configFile)).toEqual([pid]);
    await third.shutdown({ leaveRunning: true });

    // An adopted containerd is not our child: its death is noticed by polling, then it is replaced.
    const exited = once(second, "exited") as Promise<[ContainerdExitedEvent]>;
    const restarted = once(second, "restarted") as Promise<[ContainerdRestartedEvent]>;
    process.kill(pid, "SIGKILL");
    expect((await exited)[0]).toEqual({ pid, exitCode: null, signal: null, expected: false });
    const [restart] = await restarted;
    expect(restart).toMatchObject({ previousPid: pid, reason: "exited" });
    expect(second.adopted).toBe(false);
    expect(findContainerdProcesses(configFile)).toEqual([restart.pid]);
  });

  test("two live supervisors on one containerd converge on one replacement after it dies", async () => {
    const dir = newDir();
    const configFile = join(dir, "state", "containerd.toml");
    const first = supervisor(options(dir));
    await first.start();
    const second = supervisor(options(dir));
    await second.start();
    expect(second.adopted).toBe(true);
    const firstRestarted = once(first, "restarted");
    const secondRestarted = once(second, "restarted");
    process.kill(first.pid, "SIGKILL");
    await Promise.all([firstRestarted, secondRestarted]);
    // Give a fight (each killing the other's containerd) time to show.
    await sleep(1_500);
    const running = findContainerdProcesses(configFile);
    expect(running).toHaveLength(1);
    expect(first.pid).toBe(running[0]);
    expect(second.pid).toBe(running[0]);
    expect(await serving(first.address)).toBe(true);
  });

  test("a pid file naming a recycled pid is not adopted", async () => {
    const dir = newDir();
    const opts = options(dir);
    const first = supervisor(opts);
    await first.start();
    await first.shutdown();
    // Our own pid is alive but is not containerd.
    writeFileSync(join(dir, "state", "containerd.pid"), `${process.pid}\n`);
    const second = supervisor(opts);
    await second.start();
    expect(second.adopted).toBe(false);
    expect(second.pid).not.toBe(process.pid);
  });

  test("shutdown leaves no containerd process, pid file or socket", async () => {
    const dir = newDir();
    const s = supervisor(options(dir));
    await s.start();
    const pid = s.pid;
    const exited = once(s, "exited") as Promise<[ContainerdExitedEvent]>;
    const t0 = performance.now();
    await s.shutdown();
    const stopMs = performance.now() - t0;
    expect((await exited)[0]).toMatchObject({ pid, expected: true });
    expect(isProcessAlive(pid)).toBe(false);
    expect(findContainerdProcesses(join(dir, "state", "containerd.toml"))).toEqual([]);
    for (const file of ["containerd.pid", "containerd.sock", "containerd.sock.ttrpc"]) {
      expect(existsSync(join(dir, "state", file)), file).toBe(false);
    }
    await expect(s.waitUntilServing()).rejects.toBeInstanceOf(UnavailableError);
    console.log(`managed containerd: SIGTERM shutdown took ${stopMs.toFixed(0)} ms`);
  });

  test("shutdown of a SIGSTOPped containerd still stops it", async () => {
    const dir = newDir();
    // Health checks slow enough that the supervisor does not replace it first.
    const s = supervisor(options(dir, { healthIntervalMs: 60_000 }));
    await s.start();
    const pid = s.pid;
    process.kill(pid, "SIGSTOP");
    await s.shutdown({ timeoutMs: 3_000 });
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(join(dir, "state", "containerd.pid"))).toBe(false);
  });

  test("an aborted start stops what it started and says it was canceled", async () => {
    const dir = newDir();
    const s = supervisor(options(dir));
    const abort = new AbortController();
    const starting = s.start({ signal: abort.signal });
    abort.abort();
    await expect(starting).rejects.toBeInstanceOf(CanceledError);
    expect(findContainerdProcesses(join(dir, "state", "containerd.toml"))).toEqual([]);
    await expect(s.waitUntilServing()).rejects.toBeInstanceOf(UnavailableError);
  });

  test("an aborted shutdown grace SIGKILLs at once", async () => {
    const dir = newDir();
    // A containerd behind a shell that ignores SIGTERM: only the SIGKILL can end the supervised pid.
    const stubborn = join(dir, "containerd");
    writeFileSync(stubborn, `#!/bin/sh\ntrap '' TERM\n${requireBinary("containerd")} "$@" &\nwait\n`);
    chmodSync(stubborn, 0o755);
    const s = supervisor(options(dir, { binary: stubborn, healthIntervalMs: 60_000 }));
    await s.start();
    const pid = s.pid;
    const t0 = performance.now();
    await s.shutdown({ timeoutMs: 30_000, signal: AbortSignal.timeout(300) });
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
    expect(isProcessAlive(pid)).toBe(false);
    for (const orphan of findContainerdProcesses(join(dir, "state", "containerd.toml"))) {
      process.kill(orphan, "SIGKILL");
    }
  });

  test("no containerd binary is a clear error before anything starts", () => {
    const dir = newDir();
    const missing = (): ManagedContainerd =>
      new ManagedContainerd(options(dir, { searchPath: join(dir, "nowhere"), searchDirs: [] }));
    expect(missing).toThrow(FailedPreconditionError);
    expect(missing).toThrow(/no executable "containerd" in .*nowhere/);
    expect(() => new ManagedContainerd(options(dir, { binary: join(dir, "containerd") }))).toThrow(
      /is not an executable file/,
    );
    expect(existsSync(join(dir, "state"))).toBe(false);
  });

  test("a containerd that dies during start-up fails start() with its last log lines", async () => {
    const dir = newDir();
    const fake = join(dir, "containerd");
    writeFileSync(
      fake,
      `#!/bin/sh\necho 'time="now" level=fatal msg="failed to load config: boom"' >&2\nexit 1\n`,
    );
    chmodSync(fake, 0o755);
    const s = supervisor(options(dir, { binary: fake }));
    const failure = s.start();
    await expect(failure).rejects.toBeInstanceOf(UnavailableError);
    await expect(failure).rejects.toThrow(/exited during start-up[\s\S]*failed to load config: boom/);
  });
});
