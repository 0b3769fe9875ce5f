import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

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
    await eventually(
      async () => (await engine.docker(["logs", "counter"])).stdout.includes("tick 3"),
      "the counter's first ticks",
    );

    await engine.restartServe("SIGKILL");

    // What ran still runs, under the same pid, and is listed as running.
    expect(await inspect("steady", "{{.State.Status}} {{.State.Pid}}")).toBe(`running ${steadyPid}`);
    expect((await engine.docker(["ps", "--format", "{{.Names}}"])).stdout).toContain("steady");
    // The counter's output reaches the log again after the restart.
    const before = (await engine.docker(["logs", "counter"])).stdout.trim().split("\n").length;
    await eventually(
      async () => (await engine.docker(["logs", "counter"])).stdout.trim().split("\n").length > before + 3,
      "new log lines",
    );
    const ticks = (await engine.docker(["logs", "counter"])).stdout.trim().split("\n");
    expect(ticks.every((line, index) => line === `tick ${index + 1}`)).toBe(true);
    // The exit that happened while the engine was down (or after) is recorded with its code.
    await eventually(
      async () => (await inspect("short", "{{.State.Status}} {{.State.ExitCode}}")) === "exited 9",
      "short's exit",
    );
    // The restart policy goes on.
    const restarts = Number(await inspect("bouncer", "{{.RestartCount}}"));
    await eventually(
      async () => Number(await inspect("bouncer", "{{.RestartCount}}")) >= restarts + 2,
      "bouncer restarting again",
    );

    // SIGTERM too leaves containers running.
    await engine.restartServe("SIGTERM");
    expect(await inspect("steady", "{{.State.Status}} {{.State.Pid}}")).toBe(`running ${steadyPid}`);
    expect((await engine.docker(["rm", "-f", "steady", "counter", "bouncer", "short"])).code).toBe(0);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe("");
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
