// containerd SIGKILLed in the middle of newContainer, newTask, exec and delete, then started again
// on the same state. Afterwards the client has either finished the operation or cleaned it up: no
// orphan container, task, exec process, FIFO, bundle or shim.
//
// "In the middle" is made deterministic two ways: containerd SIGSTOPped so the request is in flight
// but unanswered when it dies; or a runc wrapper that sleeps inside the runtime call, so containerd
// dies while the shim is running runc for it.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { Tasks } from "../../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import { isErrorCode, LibcontainerdError } from "../../src/libcontainerd/types/errors.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import { uniqueId, useRemote } from "../harness/remote.js";
import { leftoversOf, NOTHING_LEFT, until, writeSlowRuntime } from "./helpers.js";

const fx = useRemote("crash");

const settle = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** SIGSTOP containerd, let `start()` send its request, then SIGKILL and restart containerd. */
async function crashWhileInFlight<T>(start: () => Promise<T>) {
  process.kill(fx.ctrd.pid, "SIGSTOP");
  const pending = settle(start());
  await sleep(300);
  await fx.ctrd.kill();
  const outcome = await pending;
  await fx.ctrd.restart();
  return outcome;
}

/** Runs `start()`, and kills containerd once the slow runtime reports it is inside `subcommand`. */
async function crashInsideRuntime<T>(marker: string, start: () => Promise<T>) {
  const pending = settle(start());
  await until(`runc ${marker} to begin`, () => existsSync(marker), 20_000);
  await fx.ctrd.kill();
  await fx.ctrd.restart();
  return pending;
}

function slowClient(subcommand: string) {
  const dir = join(fx.ctrd.dir, `slow-${subcommand}`);
  mkdirSync(dir, { recursive: true });
  const runtimes = new RuntimeRegistry({
    stateDir: fx.ctrd.stateDir,
    runtimes: { slow: { path: writeSlowRuntime(dir, subcommand, 2) } },
  });
  return { client: fx.newClient({ runtimes }), marker: join(dir, subcommand) };
}

describe("containerd killed mid-operation", () => {
  test("newContainer: the call fails with a typed error and no container exists", async () => {
    const id = uniqueId("newc");
    const outcome = await crashWhileInFlight(() => fx.client.newContainer(id, fx.spec(["true"])));
    if (outcome.ok) {
      await outcome.value.delete();
    } else {
      expect(outcome.error).toBeInstanceOf(LibcontainerdError);
      expect(isErrorCode(outcome.error, "unavailable")).toBe(true);
    }
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
    // The id is free again and the client works once containerd is back.
    const again = await fx.client.newContainer(id, fx.spec(["true"]));
    await again.delete();
  });

  test("newTask (containerd dies while the shim runs `runc create`): no task, FIFO, bundle or shim left", async () => {
    const { client, marker } = slowClient("create");
    const id = uniqueId("newt");
    const container = await client.newContainer(id, fx.spec(["sleep", "60"]), { runtime: "slow" });
    const outcome = await crashInsideRuntime(marker, () =>
      container.newTask({ stdio: { stdout: true, stderr: true } }),
    );
    if (outcome.ok) {
      await outcome.value.forceDelete();
    } else {
      expect(outcome.error).toBeInstanceOf(LibcontainerdError);
    }
    await until(
      "the half-created task to be cleaned up",
      async () => {
        const left = await leftoversOf(fx.ctrd, fx.namespace, id);
        return !left.task && !left.bundle && left.shims.length === 0 && left.fifos.length === 0;
      },
      20_000,
    ).catch(() => {});
    expect({ ...(await leftoversOf(fx.ctrd, fx.namespace, id)), container: false }).toEqual(NOTHING_LEFT);
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
  });

  test("exec (containerd dies while the shim runs `runc exec`): the exec process is finished or gone", async () => {
    const { client, marker } = slowClient("exec");
    const id = uniqueId("exec");
    const container = await client.newContainer(id, fx.spec(["sleep", "60"]), { runtime: "slow" });
    const task = await container.newTask();
    await task.start();
    const outcome = await crashInsideRuntime(marker, () =>
      task.exec(
        "chaos-exec",
        { args: ["sleep", "30"], cwd: "/", user: { uid: 0, gid: 0 } },
        {
          stdio: { stdout: true, stderr: true },
        },
      ),
    );
    const tasks = serviceClient(
      Tasks,
      createContainerdTransport({ address: fx.ctrd.address, namespace: fx.namespace }),
    );
    if (outcome.ok) {
      // Finished: the exec is ours to kill and delete, like any other.
      const exec = outcome.value;
      const exited = exec.wait();
      await exec.kill("SIGKILL");
      await exited;
      await exec.delete();
    } else {
      expect(outcome.error).toBeInstanceOf(LibcontainerdError);
      // Cleaned up: containerd no longer knows the exec, and its FIFOs are gone.
      await until(
        "the half-started exec to be removed",
        () =>
          tasks.get({ containerId: id, execId: "chaos-exec" }).then(
            () => false,
            () => true,
          ),
        20_000,
      ).catch(() => {});
      const lookup = await tasks.get({ containerId: id, execId: "chaos-exec" }).then(
        (reply) => `exec still exists (status ${reply.process?.status})`,
        () => "gone",
      );
      expect(lookup).toBe("gone");
    }
    expect(
      (await leftoversOf(fx.ctrd, fx.namespace, id)).fifos.filter((f) => f.startsWith("chaos-exec")),
    ).toEqual([]);
    await task.forceDelete();
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
  });

  test("task delete (containerd dies while the shim runs `runc delete`): the delete completes", async () => {
    const { client, marker } = slowClient("delete");
    const id = uniqueId("del");
    const container = await client.newContainer(id, fx.spec(["sh", "-c", "exit 3"]), { runtime: "slow" });
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(3);
    const outcome = await crashInsideRuntime(marker, () => task.delete());
    if (outcome.ok) {
      expect(outcome.value.exitCode).toBe(3);
    } else {
      expect(outcome.error).toBeInstanceOf(LibcontainerdError);
    }
    await until(
      "the task to be gone",
      async () => !(await leftoversOf(fx.ctrd, fx.namespace, id)).task,
      20_000,
    ).catch(() => {});
    await container.delete();
    expect(await leftoversOf(fx.ctrd, fx.namespace, id)).toEqual(NOTHING_LEFT);
  });

  test("while containerd is down, newTask and delete fail at once instead of waiting for it", async () => {
    const id = uniqueId("down");
    const container = await fx.client.newContainer(id, fx.spec(["sh", "-c", "exit 4"]));
    const task = await container.newTask();
    const exited = task.wait();
    await task.start();
    expect((await exited).exitCode).toBe(4);
    const other = await fx.client.newContainer(uniqueId("down2"), fx.spec(["true"]));
    await fx.ctrd.kill();
    try {
      // Until the client has seen the connection close, a request may still go out on it, and then
      // it may have reached containerd (which is why the client cleans up after such a failure).
      // Once a new connection is refused, the client knows containerd is down.
      await expect
        .poll(() =>
          fx.client.version().then(
            () => "up",
            (err: unknown) => String(err),
          ),
        )
        .toMatch(/ECONNREFUSED|ENOENT/);
      // "At once", without timing it on a loaded host: a call that waited for containerd would end
      // at its deadline, deadline_exceeded, instead of unavailable.
      const call = { timeoutMs: 30_000 };
      const refusedCreate = await other.newTask(call).then(
        () => "created",
        (err: unknown) => err,
      );
      const refusedDelete = await task.delete(call).then(
        () => "deleted",
        (err: unknown) => err,
      );
      expect(isErrorCode(refusedCreate, "unavailable")).toBe(true);
      expect(isErrorCode(refusedDelete, "unavailable")).toBe(true);
    } finally {
      await fx.ctrd.restart();
    }
    expect((await task.delete()).exitCode).toBe(4);
    await container.delete();
    await other.delete();
  });
});
