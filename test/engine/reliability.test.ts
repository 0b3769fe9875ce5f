import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFailed } from "vitest";
import { requireBinary } from "../harness/binaries.js";
import { DOCKER, useEngine } from "./harness.js";

const CTR = requireBinary("ctr");

// ctrd serve killed and restarted under running containers; restart policies; many runs at once.
const engine = useEngine("lcd-engine-rel-");

async function inspect(name: string, format: string): Promise<string> {
  return (await engine.docker(["inspect", "--format", format, name])).stdout.trim();
}

/** Polls until `check` holds (bounded), for states the engine reaches on its own. */
async function eventually(check: () => Promise<boolean>, what: string, attempts = 300): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what}: not reached; serve log:\n${engine.log().slice(-2000)}`);
}

describe("ctrd serve: restart policies and restarts of the engine", () => {
  it("restarts on-failure up to its count, always until stopped, never for no", async () => {
    await engine.docker(["pull", "-q", engine.image]);
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          "flaky",
          "--restart",
          "on-failure:2",
          engine.image,
          "sh",
          "-c",
          "exit 2",
        ])
      ).code,
    ).toBe(0);
    await eventually(
      async () => (await inspect("flaky", "{{.State.Status}} {{.RestartCount}}")) === "exited 2",
      "two restarts, then exited",
    );
    expect(await inspect("flaky", "{{.State.ExitCode}}")).toBe("2");
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          "forever",
          "--restart",
          "always",
          engine.image,
          "sh",
          "-c",
          "sleep 0.2; exit 0",
        ])
      ).code,
    ).toBe(0);
    await eventually(
      async () => Number(await inspect("forever", "{{.RestartCount}}")) >= 2,
      "always restarts",
    );
    expect((await engine.docker(["stop", "-t", "1", "forever"])).code).toBe(0);
    const stopped = await inspect("forever", "{{.RestartCount}}");
    await sleep(1500);
    expect(await inspect("forever", "{{.State.Status}} {{.RestartCount}}")).toBe(`exited ${stopped}`);
    const ps = await engine.docker(["ps", "-a", "--filter", "name=flaky", "--format", "{{.Status}}"]);
    expect(ps.stdout).toMatch(/^Exited \(2\) /);
    expect((await engine.docker(["rm", "flaky", "forever"])).code).toBe(0);
  });

  it("keeps containers running across a SIGKILL of ctrd serve: listed, logs continue, policies resume", async () => {
    // Many steps, each eventual: a failure (a timeout too) names the one it was in, with the log.
    let phase = "start the containers";
    onTestFailed(() => {
      console.error(`failed in phase "${phase}"; serve log:\n${engine.log().slice(-4000)}`);
    });
    try {
      await survivesRestarts((next) => {
        phase = next;
      });
    } finally {
      // Nothing of this test is left for the next one to find.
      await engine.docker(["rm", "-f", "steady", "counter", "bouncer", "short"]);
    }
  }, 240_000);

  async function survivesRestarts(enter: (phase: string) => void): Promise<void> {
    expect((await engine.docker(["run", "-d", "--name", "steady", engine.image, "sleep", "300"])).code).toBe(
      0,
    );
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          "counter",
          engine.image,
          "sh",
          "-c",
          "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
        ])
      ).code,
    ).toBe(0);
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          "bouncer",
          "--restart",
          "always",
          engine.image,
          "sh",
          "-c",
          "sleep 0.5; exit 1",
        ])
      ).code,
    ).toBe(0);
    expect(
      (await engine.docker(["run", "-d", "--name", "short", engine.image, "sh", "-c", "sleep 1; exit 9"]))
        .code,
    ).toBe(0);
    const steadyPid = await inspect("steady", "{{.State.Pid}}");
    enter("the counter's first ticks");
    await eventually(
      async () => (await engine.docker(["logs", "counter"])).stdout.includes("tick 3"),
      "the counter's first ticks",
    );

    enter("restart after SIGKILL");
    await engine.restartServe("SIGKILL");
    enter("running after the restart");

    // What ran still runs, under the same pid, and is listed as running.
    expect(await inspect("steady", "{{.State.Status}} {{.State.Pid}}")).toBe(`running ${steadyPid}`);
    expect((await engine.docker(["ps", "--format", "{{.Names}}"])).stdout).toContain("steady");
    // The counter's output reaches the log again after the restart.
    enter("new log lines");
    const before = (await engine.docker(["logs", "counter"])).stdout.trim().split("\n").length;
    await eventually(
      async () => (await engine.docker(["logs", "counter"])).stdout.trim().split("\n").length > before + 3,
      "new log lines",
    );
    const ticks = (await engine.docker(["logs", "counter"])).stdout.trim().split("\n");
    expect(ticks.every((line, index) => line === `tick ${index + 1}`)).toBe(true);
    enter("short's exit");
    // The exit that happened while the engine was down (or after) is recorded with its code.
    await eventually(
      async () => (await inspect("short", "{{.State.Status}} {{.State.ExitCode}}")) === "exited 9",
      "short's exit",
    );
    // The restart policy goes on.
    enter("bouncer restarting again");
    const restarts = Number(await inspect("bouncer", "{{.RestartCount}}"));
    await eventually(
      async () => Number(await inspect("bouncer", "{{.RestartCount}}")) >= restarts + 2,
      "bouncer restarting again",
    );

    // SIGTERM too leaves containers running.
    enter("restart after SIGTERM");
    await engine.restartServe("SIGTERM");
    expect(await inspect("steady", "{{.State.Status}} {{.State.Pid}}")).toBe(`running ${steadyPid}`);
    enter("remove");
    expect((await engine.docker(["rm", "-f", "steady", "counter", "bouncer", "short"])).code).toBe(0);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe("");
  }

  it("a restart at start-up that fails (a killed engine's create still in containerd) is retried by the policy", async () => {
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          "phoenix",
          "--restart",
          "always",
          engine.image,
          "sleep",
          "300",
        ])
      ).code,
    ).toBe(0);
    const id = await inspect("phoenix", "{{.Id}}");
    await engine.stopServe("SIGKILL");
    // While the engine is down its task goes, and a bundle dir is left where containerd makes the
    // next one's, as a create still in flight when the engine was killed leaves it: the engine's
    // start-up restart then fails with "failed to start shim: mkdir …: file exists".
    const ctr = ["--address", engine.containerd.address, "--namespace", engine.namespace];
    expect(spawnSync(CTR, [...ctr, "task", "kill", "--signal", "SIGKILL", id]).status).toBe(0);
    await eventually(
      async () => spawnSync(CTR, [...ctr, "task", "delete", id]).status === 0,
      "the task deleted",
    );
    const bundle = join(
      engine.containerd.containerdState,
      "io.containerd.runtime.v2.task",
      engine.namespace,
      id,
    );
    mkdirSync(bundle, { recursive: true });
    try {
      await engine.startServe();
      await eventually(async () => engine.log().includes("file exists"), "the failed restart");
    } finally {
      rmdirSync(bundle); // the in-flight create undone
    }
    await eventually(
      async () => (await inspect("phoenix", "{{.State.Status}}")) === "running",
      "phoenix running",
    );
    expect((await engine.docker(["rm", "-f", "phoenix"])).code).toBe(0);
  });

  it("runs many `docker run --rm` at once, all exiting 0", async () => {
    const count = Number(process.env.ENGINE_CONCURRENT_RUNS ?? 200);
    const results = await Promise.all(
      Array.from({ length: count }, (_, index) =>
        engine.docker(["run", "--rm", "--network", "none", engine.image, "echo", `run-${index}`], {
          timeoutMs: 600_000,
        }),
      ),
    );
    const failures = results.filter(
      (result, index) => result.code !== 0 || result.stdout !== `run-${index}\n`,
    );
    expect(failures.map((failure) => failure.stderr).slice(0, 3)).toEqual([]);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe("");
  }, 900_000);
});

/** A process's peak resident set (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]) * 1024;
}

describe("ctrd serve: exec stdin", () => {
  it("has backpressure: 200 MB sent faster than the process reads stay with the client, not in the engine's memory", async () => {
    const started = await engine.docker(["run", "-d", "--name", "stdin-bp", engine.image, "sleep", "600"]);
    expect(started.code, started.stderr).toBe(0);
    const pid = engine.servePid();
    // Resets the peak (Documentation/filesystems/proc.rst, clear_refs "5"): what follows is measured alone.
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const before = peakRss(pid);
    // The process reads nothing for a while: meanwhile the client sends as fast as it is let.
    const exec = spawn(DOCKER, ["exec", "-i", "stdin-bp", "sh", "-c", "sleep 3; wc -c"], {
      env: { ...process.env, DOCKER_HOST: engine.host },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    for (const stream of [exec.stdout, exec.stderr])
      stream.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
      });
    const closed = once(exec, "close");
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    exec.stdin.on("error", () => {}); // reported by the exit code below
    for (let i = 0; i < 200; i++) if (!exec.stdin.write(chunk)) await once(exec.stdin, "drain");
    exec.stdin.end();
    const [code] = (await closed) as [number | null];
    expect(code, output).toBe(0);
    expect(output.trim()).toBe(String(200 * 1024 * 1024));
    // Without backpressure the engine held what the process had not read yet: ~200 MB more.
    expect(peakRss(pid) - before).toBeLessThan(64 * 1024 * 1024);
    expect((await engine.docker(["rm", "-f", "stdin-bp"])).code).toBe(0);
  });
});
