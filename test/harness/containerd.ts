import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Namespaces } from "../../src/gen/github.com/containerd/containerd/api/services/namespaces/v1/namespace_pb.js";
import { Tasks } from "../../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { Version } from "../../src/gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import { containerdConfigToml } from "../../src/libcontainerd/supervisor/config.js";
import { managedContainerdLayout } from "../../src/libcontainerd/supervisor/layout.js";
import { requireBinary } from "./binaries.js";
import { buildBusyboxRootfs } from "./rootfs.js";
import { scratchDir } from "./temp-dirs.js";

/** A private containerd for one test file: its own root, state, socket and busybox rootfs. */
export interface TestContainerd {
  readonly dir: string;
  readonly address: string;
  /** A state dir for clients (FIFOs, bundles), inside `dir`. */
  readonly stateDir: string;
  readonly rootfs: string;
  /** containerd's own state (`state` in its config): shim bundles under io.containerd.runtime.v2.task/. */
  readonly containerdState: string;
  /** Give containers a cgroupsPath under it: their processes are then killed on stop, whatever happened. */
  readonly cgroupParent: string;
  readonly pid: number;
  /** The log so far, for failure messages. */
  log(): string;
  /** SIGKILL containerd (shims survive, as they would in production). */
  kill(): Promise<void>;
  /** Starts containerd again on the same root, state and socket. */
  restart(): Promise<void>;
  /** Removes every container and task, stops containerd, kills leftover shims, removes the temp dir. */
  stop(): Promise<void>;
}

export { processesUnder } from "./temp-dirs.js";

export interface StartContainerdOptions {
  prefix?: string;
  /** TOML appended to the managed containerd's config (e.g. a `[metrics]` section for the bench). */
  extraConfig?: string;
}

export async function startContainerd(opts: StartContainerdOptions = {}): Promise<TestContainerd> {
  const binary = requireBinary("containerd");
  requireBinary("runc");
  requireBinary("containerd-shim-runc-v2");
  const scratch = scratchDir(opts.prefix ?? "lcd-test-");
  const dir = scratch.dir;
  // The same config the managed containerd runs with, in the temp dir.
  const layout = { ...managedContainerdLayout(join(dir, "root"), dir), daemonStateDir: join(dir, "state") };
  const address = layout.socket;
  const logPath = join(dir, "containerd.log");
  const rootfs = buildBusyboxRootfs(join(dir, "rootfs"));
  writeFileSync(layout.configFile, containerdConfigToml(layout, "info") + (opts.extraConfig ?? ""));
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const logFd = openSync(logPath, "a");
    child = spawn(binary, ["--config", layout.configFile], {
      stdio: ["ignore", logFd, logFd],
      detached: true,
    });
    closeSync(logFd);
    child.unref();
    await waitServing(address, child, () => readLog());
  };
  const readLog = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");

  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill(signal);
    await Promise.race([exited, sleep(10_000)]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await exited;
    }
  };

  try {
    await launch();
  } catch (err) {
    await stopChild("SIGKILL");
    await scratch.cleanup();
    throw err;
  }

  return {
    dir,
    address,
    stateDir: join(dir, "client-state"),
    rootfs,
    containerdState: layout.daemonStateDir,
    cgroupParent: scratch.cgroupParent,
    get pid() {
      return child?.pid ?? 0;
    },
    log: readLog,
    kill: () => stopChild("SIGKILL"),
    restart: launch,
    async stop() {
      try {
        if (child && child.exitCode === null && child.signalCode === null) await removeEverything(address);
      } catch (err) {
        process.stderr.write(`harness: cleanup through containerd failed: ${String(err)}\n`);
      }
      await stopChild("SIGTERM");
      await scratch.cleanup();
    },
  };
}

async function waitServing(address: string, child: ChildProcess, log: () => string): Promise<void> {
  const version = serviceClient(Version, createContainerdTransport({ address, namespace: "default" }));
  const deadline = Date.now() + 20_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`containerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${log()}`);
    }
    if (existsSync(address)) {
      try {
        await version.version({}, { timeoutMs: 1000 });
        return;
      } catch (err) {
        lastError = err;
      }
    }
    await sleep(25);
  }
  throw new Error(`containerd did not serve within 20 s: ${String(lastError)}\n${log()}`);
}

/** Kills and deletes every task, then deletes every container, in every namespace. */
async function removeEverything(address: string): Promise<void> {
  const namespaces = serviceClient(Namespaces, createContainerdTransport({ address, namespace: "default" }));
  const { namespaces: list } = await namespaces.list({}, { timeoutMs: 5000 });
  for (const ns of list) {
    const transport = createContainerdTransport({ address, namespace: ns.name });
    const tasks = serviceClient(Tasks, transport);
    const containers = serviceClient(Containers, transport);
    const { tasks: running } = await tasks.list({}, { timeoutMs: 5000 });
    await Promise.all(
      running.map(async (task) => {
        await tasks.kill({ containerId: task.id, signal: 9, all: true }, { timeoutMs: 5000 }).catch(() => {});
        for (let i = 0; i < 100; i++) {
          try {
            await tasks.delete({ containerId: task.id }, { timeoutMs: 5000 });
            return;
          } catch {
            await sleep(50);
          }
        }
      }),
    );
    const { containers: all } = await containers.list({}, { timeoutMs: 5000 });
    await Promise.all(all.map((c) => containers.delete({ id: c.id }, { timeoutMs: 5000 }).catch(() => {})));
  }
}
