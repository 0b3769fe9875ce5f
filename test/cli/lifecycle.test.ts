// A detached container driven through the other commands: ps, exec, pause/resume, stats, events, kill, rm.
import { describe, expect, test } from "vitest";
import { RemoteClient } from "../../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { nextCgroup } from "../harness/remote.js";
import { CTRD, ctrd, inTerminal, type PsRow, startCtrd, useHarnessCtrd, waitForOutput } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-life-");

async function ps(all = false): Promise<PsRow[]> {
  const result = await ctrd(["ps", ...(all ? ["-a"] : []), "--json", ...fx.global]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as PsRow[];
}

describe("a detached container", () => {
  test("run -d, ps, exec, pause, resume, stats, kill, rm", async () => {
    // Runs for the whole test, which takes more than startCtrd's default 30 s on a loaded machine.
    const events = startCtrd(["events", "--json", ...fx.global], { timeoutMs: 180_000 });
    // docker's filter: only exits (docker's "die"), the probes' below among them.
    const exits = startCtrd(["events", "--json", "--filter", "event=die", ...fx.global], {
      timeoutMs: 180_000,
    });
    // containerd does not replay events: until a probe container's events show up, the stream
    // may not be subscribed yet (ctrd is still starting, on a busy machine for a while).
    const probed = (stream: typeof events) => stream.stdout().includes('"containerId":"probe');
    for (let attempt = 0; !probed(events) || !probed(exits); attempt++) {
      expect(attempt, "events never showed a probe container").toBeLessThan(20);
      await ctrd([
        "run",
        ...fx.global,
        ...fx.cgroup,
        "--rm",
        "--rootfs",
        fx.containerd.rootfs,
        "--name",
        `probe-${attempt}`,
        "--",
        "true",
      ]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const started = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "-d",
      "--name",
      "web",
      "--rootfs",
      fx.containerd.rootfs,
      "--",
      "sh",
      "-c",
      "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    expect(started).toMatchObject({ code: 0, stdout: "web\n", stderr: "" });

    const [row] = await ps();
    expect(row).toMatchObject({ id: "web", status: "running", runtime: "io.containerd.runc.v2" });
    expect(row?.pid).toBeGreaterThan(0);
    expect(row?.command).toEqual(["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]);
    const table = await ctrd(["ps", ...fx.global]);
    expect(table.stdout).toMatch(
      /^CONTAINER\s+STATUS\s+PID\s+RUNTIME\s+CREATED\s+COMMAND\s+PORTS\nweb\s+Up (Less than a second|\d+ seconds?)\s+\d+/,
    );

    const exec = await ctrd(["exec", ...fx.global, "web", "--", "sh", "-c", "echo from exec; cat; exit 4"], {
      input: "piped\n",
    });
    expect(exec).toMatchObject({ code: 4, stdout: "from exec\n" });
    const execStdin = await ctrd(["exec", ...fx.global, "-i", "web", "--", "cat"], { input: "piped\n" });
    expect(execStdin).toMatchObject({ code: 0, stdout: "piped\n" });
    const execEnv = await ctrd([
      "exec",
      ...fx.global,
      "-e",
      "EXTRA=1",
      "web",
      "--",
      "sh",
      "-c",
      'echo "$EXTRA $PATH"',
    ]);
    // Over the container's environment, not instead of it (its PATH is still there).
    expect(execEnv).toMatchObject({
      code: 0,
      stdout: "1 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    });
    const execMissing = await ctrd(["exec", ...fx.global, "web", "--", "no-such-command"]);
    expect(execMissing.code).toBe(127);
    // -it with piped input: refused as docker refuses it (the input's end would hang the terminal up).
    const execPipedTty = await ctrd(["exec", ...fx.global, "-it", "web", "--", "sh", "-c", "cat; exit 4"], {
      input: "piped\n",
    });
    expect(execPipedTty).toMatchObject({ code: 125, stdout: "" });
    expect(execPipedTty.stderr).toMatch(/^ctrd: the input device is not a TTY.*\(invalid_argument\)\n$/);
    const runPipedTty = await ctrd(
      ["run", ...fx.global, ...fx.cgroup, "--rm", "-it", "--", "sh", "-c", "cat; exit 4"],
      {
        input: "piped\n",
      },
    );
    expect(runPipedTty).toMatchObject({ code: 125, stdout: "" });
    expect(runPipedTty.stderr).toMatch(/^ctrd: the input device is not a TTY.*\(invalid_argument\)\n$/);

    expect((await ctrd(["pause", ...fx.global, "web"])).code).toBe(0);
    expect((await ps())[0]?.status).toBe("paused");
    expect((await ctrd(["resume", ...fx.global, "web"])).code).toBe(0);
    expect((await ps())[0]?.status).toBe("running");
    // docker's verb for it.
    expect((await ctrd(["pause", ...fx.global, "web"])).code).toBe(0);
    expect((await ctrd(["unpause", ...fx.global, "web"])).stdout).toBe("web\n");
    expect((await ps())[0]?.status).toBe("running");

    const stats = await ctrd(["stats", ...fx.global, "--no-stream", "--json", "web"]);
    expect(stats.code, stats.stderr).toBe(0);
    const sample = JSON.parse(stats.stdout) as { memoryUsage: number; cpuPercent: number; pids: number };
    expect(sample.memoryUsage).toBeGreaterThan(0);
    expect(sample.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(sample.pids).toBeGreaterThanOrEqual(1);
    const human = await ctrd(["stats", ...fx.global, "--no-stream", "web"]);
    expect(human.stdout).toMatch(
      /^CONTAINER\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS\s+BLOCK I\/O\nweb\s+\d+\.\d\d%/,
    );

    const refused = await ctrd(["rm", ...fx.global, "web"]);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/^ctrd: container web is running: .*\(failed_precondition\)\n$/);

    expect((await ctrd(["kill", ...fx.global, "--signal", "TERM", "web"])).code).toBe(0);
    await expect.poll(async () => (await ps(true))[0]?.status, { timeout: 5_000 }).toBe("stopped");
    expect((await ctrd(["rm", ...fx.global, "web"])).code).toBe(0);
    expect(await ps(true)).toEqual([]);

    await waitForOutput(events, (out) => out.includes('"type":"exit"'));
    await waitForOutput(exits, (out) => out.includes('"containerId":"web"'));
    exits.child.kill("SIGINT");
    const filtered = (await exits.result).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; containerId: string; processId: string });
    expect(new Set(filtered.map((event) => event.type))).toEqual(new Set(["exit"]));
    expect(filtered.filter((event) => event.processId === "web")).toHaveLength(1);
    events.child.kill("SIGINT");
    const streamed = await events.result;
    // Ended by Ctrl-C: the signal's status, as docker events.
    expect(streamed.code).toBe(130);
    const types = streamed.stdout
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as { type: string; containerId: string; processId: string; exitCode?: number },
      )
      // The init process's events; the execs above have their own (processId = the exec id).
      .filter((event) => event.containerId === "web" && event.processId === "web")
      .map((event) => (event.type === "exit" ? `exit ${event.exitCode}` : event.type));
    expect(types).toEqual(["create", "start", "paused", "resumed", "paused", "resumed", "exit 0"]);
  });

  test("rm -f removes a running container", async () => {
    const started = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "-d",
      "--rootfs",
      fx.containerd.rootfs,
      "--",
      "sleep",
      "60",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    expect(id).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
    expect((await ctrd(["rm", ...fx.global, "-f", id])).code).toBe(0);
    expect(await ps(true)).toEqual([]);
  });

  test("exec -it: the command finds its terminal sized like ours from its start", async () => {
    const started = await ctrd(["run", ...fx.global, ...fx.cgroup, "-d", "--", "sleep", "60"]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    // script(1) gives ctrd a real terminal; `stty size` asks for the size as soon as it runs.
    const shell = `stty cols 100 rows 30; ${CTRD} exec ${fx.global.join(" ")} -it ${id} stty size`;
    const { code, output } = await inTerminal(shell);
    expect(code, output).toBe(0);
    expect(output.replace(/\r/g, "")).toBe("30 100\n");
    expect((await ctrd(["rm", ...fx.global, "-f", id])).code).toBe(0);
  });

  test("kill, wait, rm of several containers: a missing one is reported, the others are still done (as docker)", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const started = await ctrd(["run", ...fx.global, ...fx.cgroup, "-d", "--", "sleep", "60"]);
      expect(started.code, started.stderr).toBe(0);
      ids.push(started.stdout.trim());
    }
    const [a, b] = ids as [string, string];
    const quiet = await ctrd(["ps", "-aq", ...fx.global]);
    expect(quiet.stdout.split("\n").sort()).toEqual(["", a, b].sort());
    // stats without ids: every running container, as docker stats.
    const stats = await ctrd(["stats", "--no-stream", "--json", ...fx.global]);
    expect(stats.code, stats.stderr).toBe(0);
    const sampled = stats.stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(sampled.sort()).toEqual([a, b].sort());
    const missing = `no-such-${process.pid}`;
    const killed = await ctrd(["kill", ...fx.global, a, missing, b]);
    expect(killed).toMatchObject({ code: 125, stdout: `${a}\n${b}\n` });
    expect(killed.stderr).toMatch(
      new RegExp(`^ctrd: load container ${missing}: no such container \\(not_found\\)\n$`),
    );
    const waited = await ctrd(["wait", ...fx.global, a, missing, b]);
    expect(waited).toMatchObject({ code: 125, stdout: "137\n137\n" });
    const removed = await ctrd(["rm", ...fx.global, missing, a, b]);
    expect(removed).toMatchObject({ code: 125, stdout: `${a}\n${b}\n` });
    expect(await ps(true)).toEqual([]);
    // -f: a container that is not there is no failure.
    const forced = await ctrd(["rm", "-f", ...fx.global, missing]);
    expect(forced).toMatchObject({ code: 0, stdout: "" });
    expect(forced.stderr).toMatch(/no such container \(not_found\)/);
  });

  test("stats: a file the container wrote is page cache, not usage (as docker stats counts it)", async () => {
    const started = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "-d",
      "--",
      "sh",
      "-c",
      "dd if=/dev/zero of=/cached bs=1M count=64 2>/dev/null; echo written; sleep 60",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    for (let logs = ""; logs !== "written\n"; logs = (await ctrd(["logs", ...fx.global, id])).stdout)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const stats = await ctrd(["stats", ...fx.global, "--no-stream", "--json", id]);
    expect(stats.code, stats.stderr).toBe(0);
    const { memoryUsage } = JSON.parse(stats.stdout) as { memoryUsage: number };
    expect(memoryUsage).toBeGreaterThan(0);
    expect(memoryUsage).toBeLessThan(32 * 1024 * 1024);
    expect((await ctrd(["rm", ...fx.global, "-f", id])).code).toBe(0);
  });

  test("wait of a container whose task was created and never started answers at once, as docker wait of a created container", async () => {
    // ctrd has no `create`: the library makes the container and its task, as a ctrd killed between
    // the two steps of `run` would leave them.
    const client = new RemoteClient({
      address: fx.containerd.address,
      namespace: "ctrd",
      stateDir: fx.containerd.stateDir,
    });
    try {
      const id = `created-${process.pid}`;
      const spec = defaultLinuxSpec({
        args: ["true"],
        rootfs: fx.containerd.rootfs,
        cgroupsPath: nextCgroup(fx.containerd),
      });
      const container = await client.newContainer(id, spec);
      await container.newTask();
      // Before, this blocked until startCtrd's guard killed it (code null).
      const waited = await ctrd(["wait", ...fx.global, id], { timeoutMs: 20_000 });
      expect(waited).toMatchObject({ code: 0, stdout: "0\n", stderr: "" });
      expect((await ctrd(["rm", ...fx.global, "-f", id])).code).toBe(0);
      expect(await ps(true)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
