import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

// Everyday docker CLI flows where ctrd serve once answered otherwise than dockerd 20.10 does.
const engine = useEngine("lcd-engine-parity-");

async function waitFor(check: () => Promise<boolean>, what: string, attempts = 200): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not happen`);
}

/** The names of the containers with this label, stopped ones included. */
async function labelled(label: string): Promise<string[]> {
  const ps = await engine.docker(["ps", "-a", "--filter", `label=${label}`, "--format", "{{.Names}}"]);
  return ps.stdout.split("\n").filter(Boolean);
}

describe("ctrd serve as dockerd: starting and stopping", () => {
  it("exits 127 or 126 for a command missing or not executable, and --rm removes what did not start", async () => {
    const missing = await engine.docker([
      "run",
      "--rm",
      "-l",
      "t=start-fail",
      engine.image,
      "no-such-command",
    ]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/executable file not found/);
    const notExecutable = await engine.docker([
      "run",
      "--rm",
      "-l",
      "t=start-fail",
      engine.image,
      "/etc/passwd",
    ]);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr).toMatch(/permission denied/);
    // dockerd's containerStart removes an AutoRemove container whose start failed.
    expect(await labelled("t=start-fail")).toEqual([]);

    expect(
      (await engine.docker(["create", "--name", "never-ran", engine.image, "no-such-command"])).code,
    ).toBe(0);
    const start = await engine.api("POST", "/v1.41/containers/never-ran/start");
    expect(start.status).toBe(400);
    expect(JSON.parse(start.body).message).toMatch(/executable file not found/);
    const state = await engine.docker([
      "inspect",
      "--format",
      "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Error}}",
      "never-ran",
    ]);
    expect(state.stdout).toMatch(/^created 127 false .*executable file not found/);
    expect((await engine.docker(["rm", "never-ran"])).code).toBe(0);
  });

  it("stops and restarts a `docker run --rm` container: the stop returns and the container goes", async () => {
    const started = await engine.docker([
      "run",
      "-d",
      "--rm",
      "--name",
      "rm-stop",
      engine.image,
      "sleep",
      "300",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const stopped = await engine.docker(["stop", "-t", "1", "rm-stop"], { timeoutMs: 30_000 });
    expect(stopped).toMatchObject({ code: 0, stdout: "rm-stop\n" });
    await waitFor(
      async () => (await engine.docker(["ps", "-aq", "-f", "name=rm-stop"])).stdout === "",
      "removal",
    );

    expect(
      (await engine.docker(["run", "-d", "--rm", "--name", "rm-restart", engine.image, "sleep", "300"])).code,
    ).toBe(0);
    const restarted = await engine.docker(["restart", "-t", "1", "rm-restart"], { timeoutMs: 30_000 });
    expect(restarted).toMatchObject({ code: 0, stdout: "rm-restart\n" });
    // dockerd keeps an AutoRemove container through a restart: it runs again.
    const status = await engine.docker(["inspect", "--format", "{{.State.Status}}", "rm-restart"]);
    expect(status.stdout).toBe("running\n");
    expect((await engine.docker(["rm", "-f", "rm-restart"], { timeoutMs: 30_000 })).code).toBe(0);
  });
});
