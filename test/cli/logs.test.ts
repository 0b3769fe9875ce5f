/**
 * Long-running containers through ctrd: logs that outlive ctrd and containerd, the exit remembered,
 * docker's ps STATUS, start/stop/restart/wait and inspect.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import type { ContainerInspect } from "../../src/libcontainerd/types/inspect.js";
import { CTRD, ctrd, inTerminal, startCtrd, useHarnessCtrd, waitForOutput } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-logs");

let counter = 0;
const name = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

async function runDetached(id: string, args: string[], extra: string[] = []): Promise<void> {
  const run = await ctrd(["run", "-d", "--name", id, ...extra, ...fx.global, ...fx.cgroup, "--", ...args]);
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe(`${id}\n`);
}

async function psRow(id: string) {
  const ps = await ctrd(["ps", "-a", "--json", ...fx.global]);
  const rows = JSON.parse(ps.stdout) as {
    id: string;
    statusText: string;
    state: string;
    exitCode?: number;
  }[];
  return rows.find((row) => row.id === id);
}

/** The pids of the processes whose command line holds every one of `words`. */
function processesWith(words: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // exited meanwhile
    }
    if (words.every((word) => args.some((arg) => arg.endsWith(word)))) pids.push(Number(entry));
  }
  return pids;
}

const logDir = (id: string) => join(fx.containerd.dir, "ctrd", "logs", "ctrd", id);

describe("ctrd logs, ps -a, inspect, wait", () => {
  test("run -d: after ctrd exits and containerd is SIGKILLed and restarted, logs has every line and ps -a says Exited (3)", async () => {
    const id = name("survivor");
    await runDetached(id, ["sh", "-c", "echo o1; echo e1 >&2; sleep 1; echo o2; echo e2 >&2; exit 3"]);
    // ctrd has exited; containerd dies while the container still runs, and exits while it is down.
    await fx.containerd.kill();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await fx.containerd.restart();
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("3\n");
    const logs = await ctrd(["logs", id, ...fx.global]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe("o1\no2\n");
    expect(logs.stderr).toBe("e1\ne2\n");
    const row = await psRow(id);
    expect(row?.statusText).toMatch(/^Exited \(3\) (Less than a second|\d+ seconds?) ago$/);
    expect(row).toMatchObject({ state: "exited", exitCode: 3 });
    const table = await ctrd(["ps", "-a", ...fx.global]);
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+Exited \\(3\\) `));
    const format = await ctrd([
      "inspect",
      "--format",
      "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Cmd}}",
      id,
      ...fx.global,
    ]);
    expect(format.stdout).toBe(
      `exited 3 ["sh","-c","echo o1; echo e1 >&2; sleep 1; echo o2; echo e2 >&2; exit 3"]\n`,
    );
    expect((await ctrd(["rm", id, ...fx.global])).code).toBe(0);
    expect(existsSync(logDir(id))).toBe(false);
    // The exit was remembered before the task went: it is gone now, and that is all.
    expect(await psRow(id)).toBeUndefined();
  });

  test("stop a b | head -1: ctrd ends for the broken pipe, and both exits are remembered", async () => {
    const [a, b] = [name("piped"), name("piped")];
    for (const id of [a, b])
      await runDetached(id, ["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done"]);
    // b's task is deleted (its exit noted) while the write of a's id hits the closed pipe.
    const piped = spawnSync(
      "bash",
      [
        "-c",
        `node ${CTRD} stop ${[...fx.global, a, b].join(" ")} | head -1; echo "status \${PIPESTATUS[0]}"`,
      ],
      { encoding: "utf8" },
    );
    expect(piped.stdout).toBe(`${a}\nstatus 141\n`);
    for (const id of [a, b]) {
      expect(await psRow(id)).toMatchObject({ state: "exited", exitCode: 3 });
      expect((await ctrd(["rm", id, ...fx.global])).code).toBe(0);
    }
  });

  test("inspect: docker's core shape, remembered after the task is gone", async () => {
    const id = name("inspect");
    await runDetached(
      id,
      ["sh", "-c", "exit 4"],
      ["-e", "A=1", "-w", "/tmp", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50"],
    );
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("4\n");
    // stop deletes the exited task: the exit is then only in the labels.
    expect((await ctrd(["stop", id, ...fx.global])).code).toBe(0);
    const result = await ctrd(["inspect", id, ...fx.global]);
    const [info] = JSON.parse(result.stdout) as ContainerInspect[];
    expect(info).toMatchObject({
      Id: id,
      Name: `/${id}`,
      Path: "sh",
      Args: ["-c", "exit 4"],
      State: { Status: "exited", Running: false, Paused: false, OOMKilled: false, Pid: 0, ExitCode: 4 },
      RestartCount: 0,
      LogPath: join(logDir(id), `${id}-json.log`),
      Config: { Cmd: ["sh", "-c", "exit 4"], WorkingDir: "/tmp", Tty: false, Entrypoint: null },
      HostConfig: {
        Runtime: "io.containerd.runc.v2",
        Memory: 64 * 1024 * 1024,
        NanoCpus: 5e8,
        PidsLimit: 50,
      },
    });
    expect(info?.Config.Env).toContain("A=1");
    expect(Date.parse(info?.State.FinishedAt ?? "")).toBeGreaterThanOrEqual(
      Date.parse(info?.State.StartedAt ?? ""),
    );
    await ctrd(["rm", id, ...fx.global]);
  });

  test("logs -f follows, across rotations, and ends when the container exits; max-file is kept", async () => {
    const id = name("follow");
    await runDetached(
      id,
      ["sh", "-c", "sleep 0.5; i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo bye >&2"],
      ["--log-opt", "max-size=4k", "--log-opt", "max-file=1000"],
    );
    const follow = await ctrd(["logs", "-f", id, ...fx.global], { timeoutMs: 60_000 });
    expect(follow.code).toBe(0);
    expect(follow.stdout).toBe(Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(""));
    expect(follow.stderr).toBe("bye\n");
    expect(readdirSync(logDir(id)).filter((f) => /\.log\.\d+$/.test(f)).length).toBeGreaterThan(3);
    await ctrd(["rm", id, ...fx.global]);

    const kept = name("kept");
    await runDetached(kept, ["seq", "1", "5000"], ["--log-opt", "max-size=2k", "--log-opt", "max-file=3"]);
    expect((await ctrd(["wait", kept, ...fx.global])).stdout).toBe("0\n");
    const tail = await ctrd(["logs", "--tail", "1", kept, ...fx.global]);
    expect(tail.stdout).toBe("5000\n");
    await ctrd(["stop", kept, ...fx.global]); // the logger has written everything once the task is gone
    expect(readdirSync(logDir(kept)).filter((f) => f.includes("-json.log")).length).toBeLessThanOrEqual(3);
    await ctrd(["rm", kept, ...fx.global]);
  });

  test("--tail, --since, -t", async () => {
    const id = name("select");
    await runDetached(id, ["sh", "-c", "echo one; echo two; sleep 1.5; echo three"]);
    await ctrd(["wait", id, ...fx.global]);
    expect((await ctrd(["logs", "--tail", "2", id, ...fx.global])).stdout).toBe("two\nthree\n");
    expect((await ctrd(["logs", "--tail", "all", id, ...fx.global])).stdout).toBe("one\ntwo\nthree\n");
    expect((await ctrd(["logs", "--since", "1h", id, ...fx.global])).stdout).toBe("one\ntwo\nthree\n");
    expect((await ctrd(["logs", "--until", "1h", id, ...fx.global])).stdout).toBe("");
    const stamped = await ctrd(["logs", "-t", "--tail", "1", id, ...fx.global]);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n$/);
    const at = stamped.stdout.split(" ")[0] ?? "";
    expect((await ctrd(["logs", "--since", at, id, ...fx.global])).stdout).toBe("three\n");
    expect((await ctrd(["logs", "--until", at, id, ...fx.global])).stdout).toBe("one\ntwo\nthree\n");
    await ctrd(["rm", id, ...fx.global]);
  });

  test("stop, start (same log, restart counted), restart, and ps STATUS as docker prints it", async () => {
    const id = name("cycle");
    await runDetached(id, ["sh", "-c", "echo started; sleep 300"]);
    expect((await psRow(id))?.statusText).toMatch(/^Up (Less than a second|\d+ seconds?)$/);
    // A follow ended by Ctrl-C exits with the signal's status, as docker logs -f.
    const follow = startCtrd(["logs", "-f", id, ...fx.global]);
    await waitForOutput(follow, (out) => out === "started\n");
    follow.child.kill("SIGINT");
    expect(await follow.result).toMatchObject({ code: 130, stdout: "started\n" });
    expect((await ctrd(["pause", id, ...fx.global])).code).toBe(0);
    expect((await psRow(id))?.statusText).toMatch(/^Up .* \(Paused\)$/);
    expect((await ctrd(["stop", "-t", "1", id, ...fx.global])).stdout).toBe(`${id}\n`);
    // sh as PID 1 ignores SIGTERM: SIGKILL after the second.
    expect((await psRow(id))?.statusText).toMatch(/^Exited \(137\) /);
    expect((await ctrd(["start", id, ...fx.global])).stdout).toBe(`${id}\n`);
    expect((await psRow(id))?.state).toBe("running");
    expect((await ctrd(["restart", "-t", "0", id, ...fx.global])).stdout).toBe(`${id}\n`);
    const count = await ctrd(["inspect", "-f", "{{.RestartCount}} {{.State.Running}}", id, ...fx.global]);
    expect(count.stdout).toBe("2 true\n");
    const logs = await ctrd(["logs", id, ...fx.global]);
    expect(logs.stdout).toBe("started\nstarted\nstarted\n");
    await ctrd(["rm", "-f", id, ...fx.global]);
  });

  test("a container killed by the OOM killer: OOMKilled true and exit 137", async () => {
    const id = name("oom");
    await runDetached(id, ["tail", "/dev/zero"], ["-m", "16m"]);
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("137\n");
    await ctrd(["stop", id, ...fx.global]);
    const state = await ctrd(["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", id, ...fx.global]);
    expect(state.stdout).toBe("true 137\n");
    await ctrd(["rm", id, ...fx.global]);
  });

  test("a run whose shim was killed (containerd cleans up, no exit seen): Exited (255), as Docker reports it", async () => {
    const id = name("lost");
    await runDetached(id, ["sleep", "300"]);
    const shim = processesWith(["containerd-shim-runc-v2", "-id", id, fx.containerd.address]);
    expect(shim).toHaveLength(1);
    process.kill(shim[0] ?? 0, "SIGKILL");
    // containerd sees its shim go and deletes the task; nobody saw an exit.
    for (let row = await psRow(id); row?.state === "running"; row = await psRow(id))
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await psRow(id)).toMatchObject({ state: "exited", statusText: "Exited (255)", exitCode: 255 });
    const state = await ctrd(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id, ...fx.global]);
    expect(state.stdout).toBe("exited 255\n");
    // One that does not exist among them: the others are still shown (docker inspect's way).
    const mixed = await ctrd(["inspect", "-f", "{{.State.ExitCode}}", id, "no-such-one", ...fx.global]);
    expect(mixed).toMatchObject({ code: 125, stdout: "255\n" });
    expect(mixed.stderr).toMatch(/^ctrd: load container no-such-one: no such container \(not_found\)\n$/);
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("255\n");
    // Started again, it runs; its earlier end stays unknown.
    expect((await ctrd(["start", id, ...fx.global])).code).toBe(0);
    expect(await psRow(id)).toMatchObject({ state: "running" });
    expect((await ctrd(["rm", "-f", id, ...fx.global])).code).toBe(0);
  });

  test("logs prints the output byte for byte: a line longer than the reader joins, an end without a newline", async () => {
    const id = name("bytes");
    // 1.5 MiB on one line (split by the logger at 16 KiB, handed out by the reader at 1 MiB), then a
    // last line with no end.
    await runDetached(id, ["sh", "-c", "head -c 1572864 /dev/zero | tr '\\0' x; echo; printf 'no end'"]);
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("0\n");
    const logs = await ctrd(["logs", id, ...fx.global]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe(`${"x".repeat(1572864)}\nno end`);
    await ctrd(["rm", id, ...fx.global]);
  });

  test("stop -s: the signal docker stop --signal sends instead of SIGTERM", async () => {
    const id = name("stopsig");
    await runDetached(id, ["sh", "-c", "trap 'exit 7' INT; while true; do sleep 0.1; done"]);
    // A long grace: were INT not sent, the stop would end with SIGKILL (137) only after it.
    expect((await ctrd(["stop", "-s", "INT", "-t", "600", id, ...fx.global])).stdout).toBe(`${id}\n`);
    expect(await psRow(id)).toMatchObject({ state: "exited", exitCode: 7 });
    const bad = await ctrd(["stop", "-s", "FOO", id, ...fx.global]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/^ctrd: invalid --signal "FOO".*\(invalid_argument\)\n$/);
    expect((await ctrd(["rm", id, ...fx.global])).code).toBe(0);
  });

  test("bad input: typed one-line errors", async () => {
    const expectError = async (args: string[], pattern: RegExp) => {
      const result = await ctrd([...args, ...fx.global]);
      expect(result.code).toBe(125);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    };
    await expectError(["logs", "no-such-container"], /no such container.*\(not_found\)/);
    await expectError(["inspect", "no-such-container"], /\(not_found\)/);
    await expectError(["wait", "no-such-container"], /\(not_found\)/);
    await expectError(["logs", "--tail", "lots", "x"], /invalid --tail "lots".*\(invalid_argument\)/);
    await expectError(["logs", "--since", "yesterday", "x"], /invalid --since.*\(invalid_argument\)/);
    await expectError(["inspect", "--format", "{{.State", "x"], /unclosed.*\(invalid_argument\)/);
    await expectError(
      ["inspect", "--format", "{{range .Mounts}}", "x"],
      /not supported.*\(invalid_argument\)/,
    );
    await expectError(
      ["run", "-d", "--log-opt", "colour=red", "--", "true"],
      /invalid --log-opt.*\(invalid_argument\)/,
    );
    await expectError(
      ["run", "-d", "--log-opt", "max-file=0", "--", "true"],
      /max-file.*\(invalid_argument\)/,
    );
    await expectError(["stop", "-t", "soon", "x"], /invalid --time.*\(invalid_argument\)/);
    // A container run without a log (--log-driver none) has none to show.
    const id = name("nolog");
    await runDetached(id, ["true"], ["--log-driver", "none"]);
    await expectError(["logs", id], /has no log.*\(not_found\)/);
    // Nor when it is started again.
    expect((await ctrd(["start", id, ...fx.global])).code).toBe(0);
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("0\n");
    await expectError(["logs", id], /has no log.*\(not_found\)/);
    expect(existsSync(logDir(id))).toBe(false);
    await ctrd(["rm", "-f", id, ...fx.global]);
  });

  test("a foreground run keeps a log as run -d does (docker logs works for any container); --rm keeps none", async () => {
    const id = name("fg");
    const script = "echo out; echo err >&2; printf end";
    const ran = await ctrd(["run", "--name", id, ...fx.global, ...fx.cgroup, "--", "sh", "-c", script]);
    expect(ran).toMatchObject({ code: 0, stdout: "out\nend", stderr: "err\n" });
    // ctrd waited for its logger to write everything and exit.
    expect(processesWith([`${id}-json.log`])).toEqual([]);
    const logs = await ctrd(["logs", id, ...fx.global]);
    expect(logs).toMatchObject({ code: 0, stdout: "out\nend", stderr: "err\n" });
    // ctrd-logger's json-file records, as run -d's.
    const records = readFileSync(join(logDir(id), `${id}-json.log`), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { log: string; stream: string; time: string });
    expect(records.filter((record) => record.stream === "stdout").map((record) => record.log)).toEqual([
      "out\n",
      "end",
    ]);
    expect(records.find((record) => record.stream === "stderr")?.time).toMatch(/^\d{4}-.*\.\d{9}Z$/);
    // A start appends to the same log (the shim's logger from here on), as docker's.
    expect((await ctrd(["start", id, ...fx.global])).code).toBe(0);
    expect((await ctrd(["wait", id, ...fx.global])).stdout).toBe("0\n");
    expect((await ctrd(["logs", id, ...fx.global])).stdout).toBe("out\nendout\nend");
    expect((await ctrd(["rm", id, ...fx.global])).code).toBe(0);
    expect(existsSync(logDir(id))).toBe(false);

    const removed = name("fg-rm");
    const gone = await ctrd([
      "run",
      "--rm",
      "--name",
      removed,
      ...fx.global,
      ...fx.cgroup,
      "--",
      "echo",
      "hi",
    ]);
    expect(gone).toMatchObject({ code: 0, stdout: "hi\n" });
    expect(existsSync(logDir(removed))).toBe(false);
    expect(processesWith([`${removed}-json.log`])).toEqual([]);
  });

  test("a foreground run -t: the terminal works as before, and its output is logged as the terminal showed it", async () => {
    const id = name("fg-tty");
    const run = `${CTRD} run -t --name ${id} ${[...fx.global, ...fx.cgroup].join(" ")} -- sh -c 'stty size; echo tty'`;
    const { code, output } = await inTerminal(`stty cols 90 rows 20; ${run}`);
    expect(code, output).toBe(0);
    expect(output.replace(/\r/g, "")).toBe("20 90\ntty\n");
    const logs = await ctrd(["logs", id, ...fx.global]);
    expect(logs).toMatchObject({ code: 0, stdout: "20 90\r\ntty\r\n", stderr: "" });
    await ctrd(["rm", "-f", id, ...fx.global]);
  });
});
