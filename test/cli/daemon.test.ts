// The embedded default: no --containerd, so ctrd runs its own containerd in temp --root/--state.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findContainerdProcesses } from "../../src/libcontainerd/supervisor/process-info.js";
import { processesUnder } from "../harness/containerd.js";
import { type ScratchDir, scratchDir } from "../harness/temp-dirs.js";
import { ctrd, ensureBuilt, startCtrd } from "./helpers.js";

let scratch: ScratchDir;
let dirs: string[];
/** The harness kills whatever runs under it, whatever a failed test left. */
let cgroup: string[];

beforeAll(async () => {
  await ensureBuilt();
  // Short: containerd's socket path must stay under 108 bytes.
  scratch = scratchDir("ctrd-d-");
  dirs = ["--root", `${scratch.dir}/root`, "--state", `${scratch.dir}/state`];
  cgroup = ["--cgroup-parent", scratch.cgroupParent];
});
afterAll(async () => {
  // Whatever a failed assertion left: stop the daemon the way a user would, then kill stragglers.
  await ctrd(["daemon", "stop", ...dirs]).catch(() => {});
  await scratch?.cleanup();
});

const running = (): number[] => findContainerdProcesses(`${scratch.dir}/state/containerd.toml`);

describe("ctrd daemon and the managed containerd", () => {
  test("status, start, status, stop, status", async () => {
    const before = await ctrd(["daemon", "status", ...dirs]);
    expect(before.code).toBe(3);
    expect(before.stdout).toMatch(/^containerd is not running/);

    const started = await ctrd(["daemon", "start", ...dirs]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^containerd started \(pid \d+\) at .*\/state\/containerd\.sock\n$/);
    expect(running()).toHaveLength(1);

    const again = await ctrd(["daemon", "start", ...dirs]);
    expect(again.stdout).toMatch(/^containerd already running \(pid \d+\)/);
    expect(running()).toHaveLength(1);

    const status = await ctrd(["daemon", "status", "--json", ...dirs]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: running()[0], containers: 0 });

    const stopped = await ctrd(["daemon", "stop", ...dirs]);
    expect(stopped).toMatchObject({ code: 0, stdout: expect.stringMatching(/^containerd stopped/) });
    expect(running()).toEqual([]);
    expect((await ctrd(["daemon", "status", ...dirs])).code).toBe(3);
    expect(processesUnder(scratch.dir)).toEqual([]);
  });

  test("run starts the managed containerd on first use and leaves it (and -d containers) running", async () => {
    const first = await ctrd([
      "run",
      ...dirs,
      ...cgroup,
      "--rm",
      "--",
      "sh",
      "-c",
      "echo Hello from a container",
    ]);
    expect(first).toMatchObject({ code: 0, stdout: "Hello from a container\n" });
    const [pid] = running();
    expect(pid).toBeGreaterThan(0);

    const detached = await ctrd(["run", ...dirs, ...cgroup, "-d", "--name", "survivor", "--", "sleep", "60"]);
    expect(detached.code, detached.stderr).toBe(0);
    const ps = await ctrd(["ps", "--json", ...dirs]);
    expect(JSON.parse(ps.stdout)).toMatchObject([{ id: "survivor", status: "running" }]);
    expect(running()).toEqual([pid]);

    const info = await ctrd(["info", "--json", ...dirs]);
    expect(JSON.parse(info.stdout)).toMatchObject({
      backend: "remote",
      reason: expect.stringContaining("managed containerd"),
      containerd: { managed: true, pid },
    });

    expect((await ctrd(["rm", "-f", ...dirs, "survivor"])).code).toBe(0);
    expect((await ctrd(["daemon", "stop", ...dirs])).code).toBe(0);
    expect(running()).toEqual([]);
    expect(processesUnder(scratch.dir)).toEqual([]);
  });

  test("daemon stop while another ctrd watches (events): containerd stays stopped, and events ends", async () => {
    expect((await ctrd(["daemon", "start", ...dirs])).code).toBe(0);
    const events = startCtrd(["events", "--json", ...dirs], { timeoutMs: 120_000 });
    // containerd does not replay events: once a probe's show up, the watcher is subscribed (its own
    // supervisor on these dirs is there too).
    for (let attempt = 0; !events.stdout().includes('"containerId":"probe'); attempt++) {
      expect(attempt, "events never showed a probe container").toBeLessThan(20);
      await ctrd(["run", ...dirs, ...cgroup, "--rm", "--name", `probe-${attempt}`, "--", "true"]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const stopped = await ctrd(["daemon", "stop", ...dirs]);
    expect(stopped).toMatchObject({ code: 0, stdout: expect.stringMatching(/^containerd stopped/) });
    const watcher = await events.result;
    expect(watcher.code).toBe(125);
    expect(watcher.stderr).toMatch(
      /ctrd: containerd was stopped \(ctrd daemon stop\); no more events \(unavailable\)\n$/,
    );
    // The watcher's supervisor did not start it again.
    expect(running()).toEqual([]);
    expect((await ctrd(["daemon", "status", ...dirs])).code).toBe(3);
    // The next command that needs it starts it, as on first use.
    const again = await ctrd(["run", ...dirs, ...cgroup, "--rm", "--", "true"]);
    expect(again.code, again.stderr).toBe(0);
    expect(running()).toHaveLength(1);
    expect((await ctrd(["daemon", "stop", ...dirs])).code).toBe(0);
    expect(processesUnder(scratch.dir)).toEqual([]);
  });

  test("--containerd and daemon do not mix", async () => {
    const result = await ctrd([
      "daemon",
      "start",
      "--containerd",
      "/run/containerd/containerd.sock",
      ...dirs,
    ]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(
      /^ctrd: ctrd daemon manages ctrd's own containerd.*\(invalid_argument\)\n$/,
    );
  });
});
