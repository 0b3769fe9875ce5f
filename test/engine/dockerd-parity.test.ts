import { describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

// Everyday docker CLI flows where ctrd serve once answered otherwise than dockerd 20.10 does.
const engine = useEngine("lcd-engine-parity-");

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
});
