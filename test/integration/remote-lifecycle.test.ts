import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { CGROUP_PARENT_LABEL } from "../../src/libcontainerd/remote/cgroup-parents.js";
import type { Container } from "../../src/libcontainerd/types/client.js";
import { FailedPreconditionError } from "../../src/libcontainerd/types/errors.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { joinNamespaces } from "../../src/oci/linux-options.js";
import type { OciSpec } from "../../src/oci/spec.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("lifecycle");

async function run(args: string[], stdio = { stdout: true, stderr: true }) {
  const id = uniqueId("run");
  const container = await fx.client.newContainer(id, fx.spec(args));
  const task = await container.newTask({ stdio });
  const out = readAll(task.stdout);
  const err = readAll(task.stderr);
  const exited = task.wait();
  await task.start();
  const status = await exited;
  const deleted = await task.delete();
  await container.delete();
  return { id, status, deleted, stdout: await out, stderr: await err };
}

/** Runs a container of `spec` to its exit: its stdout, and nothing left. */
async function runSpec(spec: OciSpec, prepare?: (container: Container) => Promise<void>): Promise<string> {
  const container = await fx.client.newContainer(uniqueId("ns"), spec);
  try {
    await prepare?.(container);
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const out = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    await exited;
    await task.delete();
    return await out;
  } finally {
    await container.delete();
  }
}

describe("remote lifecycle", () => {
  test("a container joins another's PID namespace: by a path in its spec, or by updateSpec before its task", async () => {
    const donor = await fx.client.newContainer(uniqueId("pid-donor"), fx.spec(["sleep", "4242"]));
    const task = await donor.newTask();
    const exited = task.wait();
    await task.start();
    try {
      const path = `/proc/${task.pid}/ns/pid`;
      expect(await runSpec(fx.spec(["ps"], { pid: { path } }))).toContain("sleep 4242");
      expect(await runSpec(fx.spec(["ps"]))).not.toContain("sleep 4242");
      // Created with its own namespace; the spec replaced before the task is what the task runs with.
      const updated = await runSpec(fx.spec(["ps"]), async (container) => {
        const spec = (await container.info()).spec;
        if (!spec) throw new Error("no spec");
        joinNamespaces(spec, { pid: path });
        await container.updateSpec(spec);
        expect((await container.info()).spec?.linux?.namespaces).toContainEqual({ type: "pid", path });
      });
      expect(updated).toContain("sleep 4242");
    } finally {
      await task.kill("SIGKILL");
      await exited;
      await task.delete();
      await donor.delete();
    }
    expect(await fx.client.listContainers()).toEqual([]);
  });

  test("two clients of one process share the cgroup parents the library had runc create", async () => {
    // The first client's container goes and its parent is kept for a next one; the second client's
    // container under it is recorded as under a made parent (not taken for someone else's, which no
    // client would then remove), and the parent goes when the last client closes.
    const parent = `/${uniqueId("lcd-shared-parent")}`;
    const root = "/sys/fs/cgroup";
    const dirs = (
      existsSync(join(root, "cgroup.controllers")) ? [root] : readdirSync(root).map((h) => join(root, h))
    )
      .map((hierarchy) => join(hierarchy, parent))
      .filter((dir) => !dir.includes("/unified/") || existsSync(dir));
    const made = () => dirs.filter((dir) => existsSync(dir));
    const other = fx.newClient();
    const first = await fx.client.newContainer(
      uniqueId("first"),
      fx.spec(["true"], { cgroupsPath: `${parent}/a` }),
    );
    const second = uniqueId("second");
    try {
      const task = await first.newTask();
      const exited = task.wait();
      await task.start();
      await exited;
      await task.delete();
      await first.delete();
      const container = await other.newContainer(second, fx.spec(["true"], { cgroupsPath: `${parent}/b` }));
      const info = (await other.listContainers()).find((c) => c.id === second);
      expect(info?.labels[CGROUP_PARENT_LABEL]).toBe(parent);
      await container.delete();
      await other.close();
      expect(made()).toEqual([]);
    } finally {
      await other.removeContainer(second, { force: true }).catch(() => {});
      await fx.client.removeContainer(first.id, { force: true }).catch(() => {});
      for (const dir of made()) rmdirSync(dir);
    }
  });

  test("echo hello → stdout hello, exit 0, nothing left behind", async () => {
    const r = await run(["echo", "hello"]);
    expect(r.stdout).toBe("hello\n");
    expect(r.stderr).toBe("");
    expect(r.status.exitCode).toBe(0);
    expect(r.deleted.exitCode).toBe(0);
    expect(existsSync(join(fx.ctrd.stateDir, fx.namespace, r.id))).toBe(false);
    expect(await fx.client.listContainers()).toEqual([]);
  });

  test("the exit of a container that exits at once is remembered after its task is deleted (the start's write cannot overtake it)", async () => {
    // The start's labels (which clear the last exit) and the exit's are written while other calls
    // are in flight; 40 runs, 4 at a time, lost some exits when the two writes raced.
    const remembered = async () => {
      const id = uniqueId("quick-exit");
      const container = await fx.client.newContainer(id, fx.spec(["sh", "-c", "exit 3"]));
      const task = await container.newTask();
      const exited = task.wait();
      await task.start();
      await exited;
      await task.delete();
      const { State } = await (await fx.client.loadContainer(id)).inspect();
      await container.delete();
      return `${State.Status} ${State.ExitCode}`;
    };
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) seen.push(await remembered());
      }),
    );
    expect(seen).toEqual(Array.from({ length: 40 }, () => "exited 3"));
  });

  test("the exit of a task deleted just before the client closes is on the record for the next client", async () => {
    // The exit is written after the task is deleted, on the next turn (a container delete that
    // follows at once makes it needless); close() must still write it.
    const client = fx.newClient();
    const id = uniqueId("outlives");
    const container = await client.newContainer(id, fx.spec(["sh", "-c", "exit 5"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    await exited;
    await task.delete();
    await client.close();
    const other = fx.newClient();
    const { State } = await (await other.loadContainer(id)).inspect();
    expect(`${State.Status} ${State.ExitCode}`).toBe("exited 5");
    expect(Date.parse(State.FinishedAt)).toBeGreaterThanOrEqual(Date.parse(State.StartedAt));
    await (await other.loadContainer(id)).delete();
  });

  test("a container whose task another client created after ours was deleted is not deleted under it", async () => {
    const id = uniqueId("retasked");
    const container = await fx.client.newContainer(id, fx.spec(["sleep", "30"]));
    const task = await container.newTask();
    await task.delete();
    const other = await fx.newClient().loadContainer(id);
    const theirs = await other.newTask();
    await expect(container.delete()).rejects.toBeInstanceOf(FailedPreconditionError);
    await theirs.forceDelete();
    await container.delete();
    expect(await fx.client.listContainers()).toEqual([]);
  });

  test("exit code 7 and stderr", async () => {
    const r = await run(["sh", "-c", "echo oops >&2; exit 7"]);
    expect(r.status.exitCode).toBe(7);
    expect(r.stderr).toBe("oops\n");
  });

  test("cat echoes piped stdin and exits after closeStdin", async () => {
    const container = await fx.client.newContainer(uniqueId("cat"), fx.spec(["cat"]));
    const task = await container.newTask({ stdio: { stdin: true, stdout: true, stderr: true } });
    const out = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    task.stdin!.write("line one\n");
    task.stdin!.write("line two\n");
    await task.closeStdin();
    expect((await exited).exitCode).toBe(0);
    expect(await out).toBe("line one\nline two\n");
    await task.delete();
    await container.delete();
  });

  test("TTY mode prints through one stream and resizes", async () => {
    const container = await fx.client.newContainer(
      uniqueId("tty"),
      fx.spec(["sh", "-c", "sleep 0.3; stty size"], { terminal: true }),
    );
    const task = await container.newTask({ stdio: { stdout: true, terminal: true } });
    expect(task.stderr).toBeNull();
    const out = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    await task.resize(100, 40);
    expect((await exited).exitCode).toBe(0);
    expect(await out).toContain("40 100");
    await task.delete();
    await container.delete();
  });

  // PID 1 of a pid namespace ignores signals it has no handler for (so does `docker kill -s TERM`
  // on a bare `sleep`); SIGTERM's default action is shown on an exec'd sleep, and on init with a trap.
  test("SIGTERM to an exec'd sleep → 143, SIGKILL to init sleep → 137, SIGTERM to a trapping init → its code", async () => {
    const container = await fx.client.newContainer(uniqueId("sig"), fx.spec(["sleep", "60"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    const sleeper = await task.exec("sleeper", { args: ["sleep", "60"], cwd: "/", user: { uid: 0, gid: 0 } });
    const sleeperExit = sleeper.wait();
    await sleeper.kill("SIGTERM");
    expect((await sleeperExit).exitCode).toBe(143);
    await sleeper.delete();
    await task.kill("KILL");
    expect((await exited).exitCode).toBe(137);
    await task.delete();
    await container.delete();

    const trapping = await fx.client.newContainer(
      uniqueId("trap"),
      fx.spec(["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done"]),
    );
    const trapTask = await trapping.newTask();
    const trapExit = trapTask.wait();
    await trapTask.start();
    await new Promise((r) => setTimeout(r, 200));
    await trapTask.kill(15);
    expect((await trapExit).exitCode).toBe(42);
    await trapTask.delete();
    await trapping.delete();
  });

  test("exec: output, exit code and events", async () => {
    const id = uniqueId("exec");
    const abort = new AbortController();
    const seen: LibcontainerdEvent[] = [];
    const collecting = (async () => {
      for await (const e of fx.client.events({ signal: abort.signal }))
        if (e.containerId === id) seen.push(e);
    })();
    const container = await fx.client.newContainer(id, fx.spec(["sleep", "60"]));
    const task = await container.newTask();
    await task.start();
    const proc = await task.exec(
      "e1",
      { args: ["sh", "-c", "echo from exec; exit 3"], cwd: "/", user: { uid: 0, gid: 0 } },
      {
        stdio: { stdout: true, stderr: true },
      },
    );
    const out = readAll(proc.stdout);
    expect((await proc.wait()).exitCode).toBe(3);
    expect(await out).toBe("from exec\n");
    expect((await proc.delete()).exitCode).toBe(3);
    await expect
      .poll(() => seen.filter((e) => e.processId === "e1").map((e) => e.type))
      .toEqual(["exec-added", "exec-started", "exit"]);
    expect(seen.find((e) => e.processId === "e1" && e.type === "exit")?.exitCode).toBe(3);
    await task.kill("SIGKILL");
    await task.wait();
    await expect(
      task.exec("e2", { args: ["true"], cwd: "/", user: { uid: 0, gid: 0 } }),
    ).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("stopped"),
    });
    await task.delete();
    await container.delete();
    abort.abort();
    await collecting;
    expect(readdirSync(join(fx.ctrd.stateDir, fx.namespace)).filter((f) => f.startsWith(id))).toEqual([]);
  });

  test("pause → paused, resume → running, pids lists the init pid", async () => {
    const container = await fx.client.newContainer(uniqueId("pause"), fx.spec(["sleep", "60"]));
    const task = await container.newTask();
    await task.start();
    expect(await task.status()).toBe("running");
    await task.pause();
    expect(await task.status()).toBe("paused");
    await task.resume();
    expect(await task.status()).toBe("running");
    expect((await task.pids()).map((p) => p.pid)).toContain(task.pid);
    await task.forceDelete();
    await container.delete();
  });

  test("stats and updateResources", async () => {
    const container = await fx.client.newContainer(
      uniqueId("stats"),
      fx.spec(["sh", "-c", "x=0; while true; do x=$((x+1)); done"]),
    );
    const task = await container.newTask();
    await task.start();
    await new Promise((r) => setTimeout(r, 300));
    const before = await task.stats();
    expect(before.kind).toMatch(/^cgroup-v/);
    expect(before.memory.usage).toBeGreaterThan(0);
    expect(before.cpu.usageNs).toBeGreaterThan(0);
    expect(before.raw.kind).toBe(before.kind);
    await task.updateResources({ linux: { memory: { limit: 64 * 1024 * 1024 } } });
    const after = await task.stats();
    expect(after.memory).toMatchObject({ limit: 64 * 1024 * 1024 });
    await task.forceDelete();
    await container.delete();
  });
});
