import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { Container, LogOptions } from "../../src/libcontainerd/types/client.js";
import { containerLogs } from "../../src/logs/container-logs.js";
import { type LogLine, readLogs } from "../../src/logs/reader.js";
import { uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("logs");
const logRoot = mkdtempSync(join(tmpdir(), "ctrd-logs-"));
afterAll(() => rmSync(logRoot, { recursive: true, force: true }));

async function collect(lines: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

/** A started container whose output goes to a log; `exited` settles with its exit status. */
async function runLogged(args: string[], log: Partial<LogOptions> = {}) {
  const id = uniqueId("log");
  const path = join(logRoot, id, `${id}-json.log`);
  const container = await fx.client.newContainer(id, fx.spec(args));
  const task = await container.newTask({ stdio: { log: { path, ...log } } });
  const exited = task.wait();
  await task.start();
  return { id, path, container, task, exited };
}

async function remove(container: Container): Promise<void> {
  await (await container.task()).forceDelete().catch(() => {});
  await container.delete();
}

describe("logs through the shim's binary:// log driver", () => {
  test("both streams, each in order, with the exit remembered; the log goes with the container", async () => {
    const r = await runLogged(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3"]);
    expect((await r.exited).exitCode).toBe(3);
    // The task is not deleted: ending a follow flushes the logger, so nothing is missing. The
    // order across the two streams is the order the logger read its two pipes in (as with Docker).
    const lines = await collect(containerLogs(r.container, { follow: true }));
    const of = (stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.line);
    expect(of("stdout")).toEqual(["out1", "out2"]);
    expect(of("stderr")).toEqual(["err1", "err2"]);
    const inspect = await r.container.inspect();
    expect(inspect.State).toMatchObject({ Status: "exited", ExitCode: 3, Running: false, Pid: 0 });
    expect(inspect.LogPath).toBe(r.path);
    expect(inspect.State.StartedAt).not.toBe("0001-01-01T00:00:00Z");
    await r.task.delete();
    const after = await (await fx.client.loadContainer(r.id)).inspect();
    expect(after.State).toMatchObject({ Status: "exited", ExitCode: 3 });
    expect(after.State.FinishedAt).toBe(inspect.State.FinishedAt);
    await r.container.delete();
    expect(existsSync(r.path)).toBe(false);
    expect(existsSync(join(logRoot, r.id))).toBe(false);
  });

  test("read after the exit (no follow): the last line without a newline is there too", async () => {
    const r = await runLogged(["sh", "-c", "echo first; printf 'no end'"]);
    expect((await r.exited).exitCode).toBe(0);
    // The logger holds a line without its end for a second, waiting for the rest: the read has it
    // write it out first.
    const lines = await collect(containerLogs(r.container));
    expect(lines.map((line) => [line.line, line.partial ?? false])).toEqual([
      ["first", false],
      ["no end", true],
    ]);
    await remove(r.container);
  });

  test("follow yields lines as they come and ends when the container exits", async () => {
    const r = await runLogged([
      "sh",
      "-c",
      "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done; printf tail",
    ]);
    const seen: string[] = [];
    for await (const line of containerLogs(r.container, { follow: true })) seen.push(line.line);
    expect(seen).toEqual(["tick 1", "tick 2", "tick 3", "tick 4", "tick 5", "tail"]);
    expect((await r.exited).exitCode).toBe(0);
    await remove(r.container);
  });

  test("follow across rotations misses nothing", async () => {
    const r = await runLogged(
      ["sh", "-c", "sleep 0.5; i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"],
      {
        maxSize: 8192,
        maxFiles: 1000,
      },
    );
    const lines = await collect(containerLogs(r.container, { follow: true }));
    expect(lines.map((l) => l.line)).toEqual(Array.from({ length: 3000 }, (_, i) => `line ${i}`));
    expect(readdirSync(join(logRoot, r.id)).filter((n) => /\.log\.\d+$/.test(n)).length).toBeGreaterThan(5);
    await remove(r.container);
  });

  test("100,000 lines arrive whole and in order", async () => {
    const r = await runLogged(["seq", "1", "100000"]);
    await r.exited;
    const lines = await collect(containerLogs(r.container, { follow: true }));
    expect(lines).toHaveLength(100_000);
    expect(lines.every((l, i) => l.line === String(i + 1) && l.stream === "stdout")).toBe(true);
    await remove(r.container);
  });

  test("tail, since/until and stream selection", async () => {
    const r = await runLogged(["sh", "-c", "echo a; echo b >&2; sleep 1.2; echo c; echo d >&2; echo e"]);
    await r.exited;
    const all = await collect(containerLogs(r.container, { follow: true }));
    expect(all.map((l) => l.line).sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect((await collect(readLogs(r.path, { tail: 2 }))).map((l) => l.line)).toEqual(
      all.slice(3).map((l) => l.line),
    );
    expect((await collect(readLogs(r.path, { tail: 2, stdout: true }))).map((l) => l.line)).toEqual([
      "c",
      "e",
    ]);
    expect((await collect(readLogs(r.path, { tail: 0 }))).map((l) => l.line)).toEqual([]);
    // a and b came a second before c, d and e.
    const c = all.find((l) => l.line === "c") as LogLine;
    const b = all.find((l) => l.line === "b") as LogLine;
    expect((await collect(readLogs(r.path, { since: c.time }))).map((l) => l.line).sort()).toEqual([
      "c",
      "d",
      "e",
    ]);
    expect((await collect(readLogs(r.path, { until: b.time }))).map((l) => l.line).sort()).toEqual([
      "a",
      "b",
    ]);
    expect((await collect(readLogs(r.path, { stderr: true }))).map((l) => l.line)).toEqual(["b", "d"]);
    const stamped = await collect(readLogs(r.path, { timestamps: true, stdout: true, tail: 1 }));
    expect(stamped[0]?.line).toBe(`${all.find((l) => l.line === "e")?.timestamp} e`);
    await remove(r.container);
  });

  test("a restarted container appends to the same log and counts the restart", async () => {
    const r = await runLogged(["sh", "-c", "echo run"]);
    await r.exited;
    await r.task.delete();
    const again = await r.container.newTask({ stdio: { log: { path: r.path } } });
    const exited = again.wait();
    await again.start();
    await exited;
    const lines = await collect(containerLogs(r.container, { follow: true }));
    expect(lines.map((l) => l.line)).toEqual(["run", "run"]);
    expect((await r.container.inspect()).RestartCount).toBe(1);
    await remove(r.container);
  });

  test("a log deleted under a follower ends it; a truncated one is read again from its start", async () => {
    const r = await runLogged(["sh", "-c", "echo first; sleep 1; echo second; sleep 30"]);
    const follower = collect(readLogs(r.path, { follow: true }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    truncateSync(r.path, 0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    unlinkSync(r.path);
    const lines = await follower;
    expect(lines.map((l) => l.line)).toEqual(["first", "second"]);
    await remove(r.container);
  });

  test("a TTY container logs its terminal as stdout; an exec logs to a log of its own", async () => {
    const id = uniqueId("tty");
    const path = join(logRoot, id, "tty.log");
    const container = await fx.client.newContainer(
      id,
      fx.spec(["sh", "-c", "echo on the tty; echo also >&2; sleep 30"], { terminal: true }),
    );
    const task = await container.newTask({ stdio: { log: { path } } });
    await task.start();
    const execLog = join(logRoot, id, "exec.log");
    const exec = await task.exec(
      "e1",
      { args: ["sh", "-c", "echo from exec; echo err >&2"], cwd: "/", user: { uid: 0, gid: 0 } },
      { stdio: { log: { path: execLog } } },
    );
    expect((await exec.wait()).exitCode).toBe(0);
    await exec.delete();
    expect((await collect(readLogs(execLog))).map((l) => `${l.stream}:${l.line}`).sort()).toEqual([
      "stderr:err",
      "stdout:from exec",
    ]);
    await task.kill("SIGKILL");
    const lines = await collect(containerLogs(container, { follow: true }));
    // A terminal has one stream, and turns "\n" into "\r\n".
    expect(lines.map((l) => `${l.stream}:${l.line}`)).toEqual(["stdout:on the tty\r", "stdout:also\r"]);
    await remove(container);
  });

  test("bad input: typed errors, and nothing created", async () => {
    const id = uniqueId("bad");
    const container = await fx.client.newContainer(id, fx.spec(["true"]));
    await expect(container.newTask({ stdio: { log: { path: "relative.log" } } })).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(
      container.newTask({ stdio: { log: { path: join(logRoot, "x.log"), maxFiles: 0 } } }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(
      container.newTask({ stdio: { stdin: true, log: { path: join(logRoot, "x.log") } } }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    const notADir = join(logRoot, "a-file");
    writeFileSync(notADir, "");
    await expect(
      container.newTask({ stdio: { log: { path: join(notADir, "x.log") } } }),
    ).rejects.toMatchObject({ code: "failed_precondition" });
    await expect(container.task()).rejects.toMatchObject({ code: "not_found" });
    await expect(collect(containerLogs(container))).rejects.toMatchObject({ code: "not_found" });
    await expect(collect(readLogs(join(logRoot, "missing.log")))).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(collect(readLogs(join(logRoot, "x.log"), { tail: -1 }))).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(collect(readLogs("x.log"))).rejects.toMatchObject({ code: "invalid_argument" });
    await container.delete();
    // The v1 shim starts a log driver without a namespace, and fails: refused up front instead.
    const v1 = await fx.client.newContainer(uniqueId("v1"), fx.spec(["true"]), {
      runtime: "io.containerd.runtime.v1.linux",
    });
    await expect(v1.newTask({ stdio: { log: { path: join(logRoot, "v1.log") } } })).rejects.toMatchObject({
      code: "not_implemented",
    });
    await v1.delete();
  });
});
