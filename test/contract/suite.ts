/**
 * Backend-agnostic expectations: every backend (containerd, HCS) must pass these unchanged.
 * Commands come from the host (the HCS fake runs them there) or from a busybox rootfs (remote).
 */
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  CallOptions,
  Client,
  Container,
  Process,
  StdioOptions,
  Task,
} from "../../src/libcontainerd/types/client.js";
import {
  AlreadyExistsError,
  CanceledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  type LibcontainerdEvent,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
} from "../../src/libcontainerd/types/index.js";
import type { OciProcess, OciSpec } from "../../src/oci/spec.js";
import type { RunOptions } from "../../src/run/run.js";

export interface ContractSpecOptions {
  terminal?: boolean;
  env?: string[];
}

export interface ContractHarness {
  client: Client;
  /** What `run` needs on this backend besides the command: the rootfs, and any spec adjustment. */
  runOptions: Partial<RunOptions>;
  /** A spec that runs `args` as the task's init process. */
  spec: (args: string[], opts?: ContractSpecOptions) => OciSpec;
  /** Another client of the same backend with these options (throws as the constructor does). */
  clientWith(options: { namespace?: string; defaultTimeoutMs?: number }): Client;
  /**
   * Makes the backend stop answering. `call` then starts an operation that hangs until its deadline
   * or signal; `resume` lets the backend answer again and waits until what the call left is gone.
   */
  hang(): Promise<{
    call: (client: Client, opts: CallOptions) => Promise<unknown>;
    resume: () => Promise<void>;
  }>;
  /** A runtime that cannot checkpoint or restore (undefined: the backend's default runtime cannot). */
  runtimeWithoutCheckpoints: string | undefined;
  cleanup(): Promise<void>;
}

/** Long enough for a slow CI host, short enough that a hang fails the test, not the run. */
const TEST_TIMEOUT_MS = 30_000;
/** How long to watch for a duplicate exit after the first one. */
const DUPLICATE_WINDOW_MS = 300;

function collect(stream: Readable | null): Promise<string> {
  if (!stream) return Promise.resolve("");
  return new Promise((resolve, reject) => {
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      text += chunk;
    });
    stream.once("end", () => resolve(text));
    stream.once("error", reject);
  });
}

/** Records the client's events from now on, for later assertions. */
class EventRecorder {
  readonly events: LibcontainerdEvent[] = [];
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(client: Client) {
    const iterable = client.events({ signal: this.abort.signal });
    this.done = (async () => {
      for await (const event of iterable) this.events.push(event);
    })().catch(() => {});
  }

  of(containerId: string, processId = containerId): LibcontainerdEvent[] {
    return this.events.filter((e) => e.containerId === containerId && e.processId === processId);
  }

  async until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for events; have ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

export function defineContractSuite(name: string, makeClient: () => Promise<ContractHarness>): void {
  describe(`contract: ${name}`, () => {
    let h: ContractHarness;
    let recorder: EventRecorder;
    let counter = 0;
    const live: { container: Container; task?: Task }[] = [];

    const nextId = () => `contract-${process.pid}-${++counter}`;

    async function createTask(
      args: string[],
      stdio: StdioOptions = {},
      specOptions?: ContractSpecOptions,
      runtime?: string,
    ) {
      const id = nextId();
      const container = await h.client.newContainer(
        id,
        h.spec(args, specOptions),
        runtime ? { runtime } : {},
      );
      const entry: { container: Container; task?: Task } = { container };
      live.push(entry);
      const task = await container.newTask({ stdio });
      entry.task = task;
      return { id, container, task };
    }

    /** Kills the (running) task, waits for its exit, and removes task and container. */
    async function killAndRemove(container: Container, task: Task): Promise<void> {
      const exited = task.wait();
      await task.kill("SIGKILL");
      await exited;
      await remove(container, task);
    }

    /** Deletes the task (`null` when the test already did) and the container. */
    async function remove(container: Container, task: Task | null): Promise<void> {
      if (task) await task.delete().catch(() => task.forceDelete());
      await container.delete();
      const index = live.findIndex((e) => e.container === container);
      if (index >= 0) live.splice(index, 1);
    }

    beforeAll(async () => {
      h = await makeClient();
      recorder = new EventRecorder(h.client);
    });

    afterAll(async () => {
      for (const { container, task } of live.splice(0)) {
        await task?.forceDelete().catch(() => {});
        await container.delete().catch(() => {});
      }
      await recorder?.stop();
      await h?.cleanup();
    });

    it(
      "runs echo: stdout hello, exit 0, created → running → stopped",
      async () => {
        const { container, task } = await createTask(["echo", "hello"], { stdout: true, stderr: true });
        const stdout = collect(task.stdout);
        const exited = task.wait();
        expect(await task.status()).toBe("created");
        await task.start();
        const status = await exited;
        expect(status.exitCode).toBe(0);
        expect(status.exitedAt).toBeInstanceOf(Date);
        expect(await stdout).toBe("hello\n");
        expect(await task.status()).toBe("stopped");
        expect((await task.delete()).exitCode).toBe(0);
        await remove(container, null);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "reports the exit code",
      async () => {
        const { container, task } = await createTask(["sh", "-c", "exit 7"]);
        const exited = task.wait();
        await task.start();
        expect((await exited).exitCode).toBe(7);
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "pipes stdin: cat echoes it and exits after closeStdin",
      async () => {
        const { container, task } = await createTask(["cat"], { stdin: true, stdout: true, stderr: true });
        const stdout = collect(task.stdout);
        const exited = task.wait();
        await task.start();
        task.stdin!.write("through the pipe\n");
        await task.closeStdin();
        expect((await exited).exitCode).toBe(0);
        expect(await stdout).toBe("through the pipe\n");
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "SIGKILL ends a sleep with 137",
      async () => {
        const { container, task } = await createTask(["sleep", "30"]);
        const exited = task.wait();
        await task.start();
        await task.kill("SIGKILL");
        expect((await exited).exitCode).toBe(137);
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "SIGTERM ends a sleep with 143",
      async () => {
        // Not the init process: as PID 1 of a PID namespace, sleep would ignore SIGTERM on Linux.
        const { container, task } = await createTask(["sleep", "30"]);
        await task.start();
        const sleeper = await task.exec("sleeper", {
          args: ["sleep", "30"],
          cwd: "",
          user: { uid: 0, gid: 0 },
        });
        const exited = sleeper.wait();
        await waitRunning(sleeper);
        await sleeper.kill("SIGTERM");
        expect((await exited).exitCode).toBe(143);
        await sleeper.delete();
        const initExited = task.wait();
        await task.kill("SIGKILL");
        await initExited;
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "SIGTERM reaches an init process that handles it",
      async () => {
        const { container, task } = await createTask(["sh", "-c", "trap 'exit 143' TERM; sleep 30 & wait"]);
        const exited = task.wait();
        let done = false;
        const finish = () => {
          done = true;
        };
        exited.then(finish, finish);
        await task.start();
        // As PID 1, sh ignores SIGTERM until its trap is installed: repeat until it lands.
        while (!done) {
          await task.kill("SIGTERM").catch(() => {});
          await new Promise((r) => setTimeout(r, 200));
        }
        expect((await exited).exitCode).toBe(143);
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "exec: output, exit code and exec-added → exec-started → exit events",
      async () => {
        const { id, container, task } = await createTask(["sleep", "30"]);
        await task.start();
        const exec = await task.exec(
          "say",
          { args: ["sh", "-c", "echo from-exec; exit 3"], cwd: "", user: { uid: 0, gid: 0 } },
          { stdio: { stdout: true, stderr: true } },
        );
        const stdout = collect(exec.stdout);
        expect((await exec.wait()).exitCode).toBe(3);
        expect(await stdout).toBe("from-exec\n");
        await recorder.until(() => recorder.of(id, "say").some((e) => e.type === "exit"));
        expect(recorder.of(id, "say").map((e) => e.type)).toEqual(["exec-added", "exec-started", "exit"]);
        const exit = recorder.of(id, "say").find((e) => e.type === "exit")!;
        expect(exit.exitCode).toBe(3);
        expect(exit.pid).toBe(exec.pid);
        await exec.delete();
        const initExited = task.wait();
        await task.kill("SIGKILL");
        await initExited;
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "events per container: create → start → exit, exactly one exit",
      async () => {
        const { id, container, task } = await createTask(["sh", "-c", "exit 5"]);
        const exited = task.wait();
        await task.start();
        await exited;
        await recorder.until(() => recorder.of(id).some((e) => e.type === "exit"));
        await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS));
        const events = recorder.of(id);
        expect(events.map((e) => e.type)).toEqual(["create", "start", "exit"]);
        expect(events[2]!.exitCode).toBe(5);
        expect(events[1]!.pid).toBe(task.pid);
        await remove(container, task);
        await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS));
        expect(recorder.of(id).filter((e) => e.type === "exit")).toHaveLength(1);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "the Backend callback sees the same sequence",
      async () => {
        const seen: string[] = [];
        const id = `contract-${process.pid}-${++counter}`;
        h.client.setBackend({
          processEvent: async (containerId, type) => {
            if (containerId !== id) return;
            // A slow handler must not reorder the container's events.
            await new Promise((r) => setTimeout(r, type === "create" ? 50 : 0));
            seen.push(type);
          },
        });
        const container = await h.client.newContainer(id, h.spec(["true"]));
        const task = await container.newTask();
        const exited = task.wait();
        await task.start();
        await exited;
        await recorder.until(() => seen.includes("exit"));
        expect(seen.filter((t) => t !== "exec-added" && t !== "exec-started")).toEqual([
          "create",
          "start",
          "exit",
        ]);
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "wait() called before start() resolves after the exit",
      async () => {
        const { container, task } = await createTask(["sh", "-c", "exit 2"]);
        const early = task.wait();
        let settled = false;
        void early.then(() => {
          settled = true;
        });
        await new Promise((r) => setTimeout(r, 100));
        expect(settled).toBe(false);
        await task.start();
        expect((await early).exitCode).toBe(2);
        expect((await task.wait()).exitCode).toBe(2);
        await remove(container, task);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "refuses to delete a running task or a container that has a task",
      async () => {
        const { container, task } = await createTask(["sleep", "30"]);
        await task.start();
        await expect(task.delete()).rejects.toBeInstanceOf(FailedPreconditionError);
        await expect(container.delete()).rejects.toBeInstanceOf(FailedPreconditionError);
        await task.forceDelete();
        await remove(container, null);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "replace takes over a running container's id; removeContainer needs force while it runs",
      async () => {
        const { id, container, task } = await createTask(["sleep", "30"]);
        await task.start();
        // Replaced below: not for the suite's clean-up any more.
        live.splice(
          live.findIndex((e) => e.container === container),
          1,
        );
        const replacement = await h.client.newContainer(id, h.spec(["sleep", "30"]), { replace: true });
        const second = await replacement.newTask();
        await second.start();
        await expect(h.client.removeContainer(id)).rejects.toBeInstanceOf(FailedPreconditionError);
        await h.client.removeContainer(id, { force: true });
        await expect(h.client.loadContainer(id)).rejects.toMatchObject({ code: "not_found" });
        await expect(h.client.removeContainer(id, { force: true })).rejects.toMatchObject({
          code: "not_found",
        });
      },
      TEST_TIMEOUT_MS,
    );

    describe("run", () => {
      const leftovers = async () =>
        (await h.client.listContainers()).map((c) => c.id).filter((id) => id.startsWith("run-"));

      it(
        "captures stdout and stderr, feeds stdin, returns the exit code, and leaves nothing",
        async () => {
          const result = await h.client.run({
            ...h.runOptions,
            args: ["sh", "-c", "read line; echo out:$line; echo err >&2; exit 3"],
            stdin: "piped\n",
          });
          expect(result).toMatchObject({
            exitCode: 3,
            stdout: "out:piped\n",
            stderr: "err\n",
            timedOut: false,
          });
          expect(result.durationMs).toBeGreaterThan(0);
          expect(await leftovers()).toEqual([]);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "kills at the timeout (timedOut) and caps captured output (truncated)",
        async () => {
          const slow = await h.client.run({ ...h.runOptions, args: ["sleep", "30"], timeoutMs: 300 });
          expect(slow).toMatchObject({ timedOut: true });
          expect(slow.exitCode).not.toBe(0);
          const loud = await h.client.run({
            ...h.runOptions,
            args: ["sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done"],
            maxOutputBytes: 1000,
          });
          expect(loud).toMatchObject({ exitCode: 0, truncated: { stdout: true, stderr: false } });
          expect(loud.stdout).toBe("0123456789\n".repeat(91).slice(0, 1000));
          expect(await leftovers()).toEqual([]);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "an abort kills and removes the container and rejects with CanceledError",
        async () => {
          const abort = new AbortController();
          const running = h.client.run({ ...h.runOptions, args: ["sleep", "30"], signal: abort.signal });
          running.catch(() => {});
          while ((await leftovers()).length === 0) await new Promise((r) => setTimeout(r, 20));
          abort.abort();
          await expect(running).rejects.toMatchObject({ code: "canceled" });
          expect(await leftovers()).toEqual([]);
        },
        TEST_TIMEOUT_MS,
      );
    });
    describe("the rules both backends share", () => {
      it(
        "invalid container ids are InvalidArgumentError, named after the operation, before anything exists",
        async () => {
          for (const id of [
            "",
            "a--b",
            "a..b",
            "a_.b",
            "-lead",
            "trail-",
            "has space",
            "a/b",
            "é",
            "x".repeat(77),
          ]) {
            const attempt = h.client.newContainer(id, h.spec(["true"]));
            await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
            await expect(attempt).rejects.toThrow(
              new RegExp(`^create container ${escapeRegExp(id)}: container id`),
            );
            await expect(h.client.loadContainer(id)).rejects.toBeInstanceOf(InvalidArgumentError);
          }
          expect((await h.client.listContainers()).filter((c) => !c.id.startsWith("contract-"))).toEqual([]);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "a duplicate id is AlreadyExistsError, an unknown one NotFoundError, in the same words",
        async () => {
          const id = nextId();
          const container = await h.client.newContainer(id, h.spec(["true"]));
          live.push({ container });
          const duplicate = h.client.newContainer(id, h.spec(["true"]));
          await expect(duplicate).rejects.toBeInstanceOf(AlreadyExistsError);
          await expect(duplicate).rejects.toThrow(`create container ${id}: it already exists`);
          const unknown = h.client.loadContainer(`${id}-none`);
          await expect(unknown).rejects.toBeInstanceOf(NotFoundError);
          await expect(unknown).rejects.toThrow(`load container ${id}-none: no such container`);
          const noTask = container.task();
          await expect(noTask).rejects.toBeInstanceOf(NotFoundError);
          await expect(noTask).rejects.toThrow(`get task of container ${id}: container ${id} has no task`);
          await remove(container, null);
        },
        TEST_TIMEOUT_MS,
      );

      it("invalid and reserved namespaces are refused when the client is made", () => {
        for (const namespace of ["a--b", "", "has space", "runtimes"]) {
          expect(() => h.clientWith({ namespace })).toThrow(InvalidArgumentError);
        }
      });

      it(
        "labels: no empty key, no NUL in a key, string values only",
        async () => {
          const invalid: Record<string, string>[] = [
            { "": "x" },
            { "a\u0000b": "x" },
            { key: 5 as unknown as string },
          ];
          for (const labels of invalid) {
            const id = nextId();
            const attempt = h.client.newContainer(id, h.spec(["true"]), { labels });
            await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
            await expect(attempt).rejects.toThrow(new RegExp(`^create container ${id}: label`));
            await expect(h.client.loadContainer(id)).rejects.toBeInstanceOf(NotFoundError);
          }
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "exec ids: invalid ones, the container's own id and one in use are refused; a deleted one is free again",
        async () => {
          const { id, container, task } = await createTask(["sleep", "30"]);
          await task.start();
          const process = (args: string[]): OciProcess => ({ args, cwd: "", user: { uid: 0, gid: 0 } });
          for (const bad of ["", "bad id", "a--b"]) {
            await expect(task.exec(bad, process(["true"]))).rejects.toBeInstanceOf(InvalidArgumentError);
          }
          const own = task.exec(id, process(["true"]));
          await expect(own).rejects.toBeInstanceOf(AlreadyExistsError);
          await expect(own).rejects.toThrow(
            `exec ${id} in container ${id}: exec id ${id} is the container's own id`,
          );
          const first = await task.exec("twice", process(["sleep", "30"]));
          const again = task.exec("twice", process(["true"]));
          await expect(again).rejects.toBeInstanceOf(AlreadyExistsError);
          await expect(again).rejects.toThrow(`exec twice in container ${id}: exec id twice is in use`);
          const firstExited = first.wait();
          await first.kill("SIGKILL");
          await firstExited;
          await first.delete();
          const second = await task.exec("twice", process(["true"]));
          expect((await second.wait()).exitCode).toBe(0);
          await second.delete();
          await killAndRemove(container, task);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "terminal comes from the spec: one output stream, no stderr",
        async () => {
          const { container, task } = await createTask(
            ["echo", "hello"],
            { stdout: true, stderr: true },
            { terminal: true },
          );
          expect(task.stderr).toBeNull();
          expect(task.stdout).not.toBeNull();
          const stdout = collect(task.stdout);
          const exited = task.wait();
          await task.start();
          expect((await exited).exitCode).toBe(0);
          expect(await stdout).toContain("hello");
          await remove(container, task);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "exec defaults: env, cwd and user from the container; a relative cwd is InvalidArgumentError",
        async () => {
          const { id, container, task } = await createTask(
            ["sleep", "30"],
            {},
            { env: ["CONTRACT_VAR=from-the-spec"] },
          );
          await task.start();
          const bare = { args: ["sh", "-c", "echo $CONTRACT_VAR"] } as OciProcess;
          const exec = await task.exec("env", bare, { stdio: { stdout: true, stderr: true } });
          const stdout = collect(exec.stdout);
          expect((await exec.wait()).exitCode).toBe(0);
          expect(await stdout).toBe("from-the-spec\n");
          await exec.delete();
          const relative = task.exec("rel", { args: ["true"], cwd: "relative", user: { uid: 0, gid: 0 } });
          await expect(relative).rejects.toBeInstanceOf(InvalidArgumentError);
          await expect(relative).rejects.toThrow(
            `exec rel in container ${id}: process.cwd must be an absolute path`,
          );
          await killAndRemove(container, task);
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "a hung call ends: timeoutMs and the default deadline as DeadlineExceededError, an abort as CanceledError",
        async () => {
          const bounded = h.clientWith({ defaultTimeoutMs: 200 });
          const hung = await h.hang();
          try {
            const timedOut = hung.call(h.client, { timeoutMs: 200 });
            await expect(timedOut).rejects.toBeInstanceOf(DeadlineExceededError);
            await expect(timedOut).rejects.toThrow(/: deadline exceeded$/);
            const byDefault = hung.call(bounded, {});
            await expect(byDefault).rejects.toBeInstanceOf(DeadlineExceededError);
            const abort = new AbortController();
            const aborted = hung.call(h.client, { signal: abort.signal });
            setTimeout(() => abort.abort(), 50);
            await expect(aborted).rejects.toBeInstanceOf(CanceledError);
            await expect(aborted).rejects.toThrow(/: canceled$/);
          } finally {
            await hung.resume();
            await bounded.close();
          }
          await expect(h.client.version({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
            CanceledError,
          );
        },
        TEST_TIMEOUT_MS,
      );

      it(
        "restore and checkpoint on a runtime without them: NotImplementedError naming the runtime",
        async () => {
          const id = nextId();
          const runtime = h.runtimeWithoutCheckpoints;
          const container = await h.client.newContainer(
            id,
            h.spec(["sleep", "30"]),
            runtime ? { runtime } : {},
          );
          const entry: { container: Container; task?: Task } = { container };
          live.push(entry);
          const restore = container.newTask({ checkpointDir: "/nonexistent/checkpoint" });
          await expect(restore).rejects.toBeInstanceOf(NotImplementedError);
          await expect(restore).rejects.toThrow(
            new RegExp(
              `^restore task for container ${id}: runtime \\S+ does not support checkpoint and restore`,
            ),
          );
          await expect(container.newTask({ checkpointDir: "relative" })).rejects.toBeInstanceOf(
            InvalidArgumentError,
          );
          const task = await container.newTask();
          entry.task = task;
          await task.start();
          const checkpoint = task.checkpoint("/nonexistent/checkpoint");
          await expect(checkpoint).rejects.toBeInstanceOf(NotImplementedError);
          await expect(checkpoint).rejects.toThrow(
            new RegExp(`^checkpoint container ${id}: runtime \\S+ does not support`),
          );
          await killAndRemove(container, task);
        },
        TEST_TIMEOUT_MS,
      );

      it("a closed client refuses calls with UnavailableError", async () => {
        const other = h.clientWith({});
        await other.close();
        const refused = other.version();
        await expect(refused).rejects.toBeInstanceOf(UnavailableError);
        await expect(refused).rejects.toThrow("version: the client is closed");
        await expect(other.newContainer(nextId(), h.spec(["true"]))).rejects.toBeInstanceOf(UnavailableError);
      });
    });
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** An exec may need a moment before a signal can reach the program rather than its launcher. */
async function waitRunning(process: Process): Promise<void> {
  expect(process.pid).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, 100));
}
