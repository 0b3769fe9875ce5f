import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll } from "vitest";
import { NetworkManager } from "../../src/network/manager.js";
import { CTRD, ensureBuilt } from "../cli/helpers.js";
import { requireBinary } from "../harness/binaries.js";
import { startContainerd, type TestContainerd } from "../harness/containerd.js";
import { busyboxLayer, publishImage } from "../harness/images.js";
import { uniqueBridge, uniqueSubnet } from "../harness/network.js";
import { startRegistry, type TestRegistry } from "../harness/registry.js";

/** Debian's docker CLI (docker.io), not the one in /usr/local/bin. */
export const DOCKER = "/usr/bin/docker";

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestEngine {
  containerd: TestContainerd;
  registry: TestRegistry;
  /** The socket ctrd serve listens on. */
  socket: string;
  /** `DOCKER_HOST` for clients. */
  host: string;
  /** A busybox image in the registry: `127.0.0.1:PORT/busybox:latest`. */
  image: string;
  namespace: string;
  /** The serve process's stderr so far. */
  log(): string;
  /** Runs Debian's docker CLI against the engine. */
  docker(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** A docker CLI process left running (events, logs -f). */
  spawnDocker(args: readonly string[]): ChildProcess;
  /** An Engine API request over the socket. */
  api(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }>;
  /** SIGKILLs ctrd serve (containers keep running) and starts it again on the same state. */
  restartServe(signal?: NodeJS.Signals): Promise<void>;
  /** Stops ctrd serve with `signal` (SIGKILL: containers keep running), until `startServe`. */
  stopServe(signal: NodeJS.Signals): Promise<void>;
  /** Starts ctrd serve again on the same state. */
  startServe(): Promise<void>;
  /** The pid of the ctrd serve running now. */
  servePid(): number;
}

function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input?: string,
  timeoutMs = 60_000,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.stdin.on("error", () => {});
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `check` until it holds (every 50 ms, `attempts` times), else throws naming `what`. */
export async function waitFor(check: () => Promise<boolean>, what: string, attempts = 200): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not happen`);
}

/**
 * The actions of the events `filters` select from `since` until `until` (both as `docker events` takes
 * them: seconds, with a fraction), oldest first, from the docker CLI.
 */
export async function eventActions(
  engine: TestEngine,
  since: string,
  filters: readonly string[],
  until = (Date.now() / 1000).toFixed(3),
): Promise<string[]> {
  const args = ["events", "--since", since, "--until", until, ...filters.flatMap((f) => ["--filter", f])];
  const result = await engine.docker([...args, "--format", "{{.Action}}"]);
  if (result.code !== 0 || result.stderr !== "")
    throw new Error(`docker ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.split("\n").filter(Boolean);
}

/** GET /_ping until it answers. */
async function waitForPing(socket: string, serve: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (serve.exitCode !== null || serve.signalCode !== null) throw new Error(`ctrd serve exited:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ socketPath: socket, path: "/_ping", method: "GET" }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
      req.end();
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`ctrd serve never answered /_ping:\n${log()}`);
}

/** A containerd, a registry with a busybox image, and `ctrd serve` on them, for one test file. */
export function useEngine(prefix: string): TestEngine {
  const fx = {} as TestEngine & {
    serve?: ChildProcess;
    stderr: string;
    dir: string;
    bridge: string;
    subnet: string;
  };
  fx.stderr = "";
  const serveArgs = (): string[] => [
    "serve",
    "--containerd",
    fx.containerd.address,
    "--state",
    fx.containerd.stateDir,
    "--root",
    join(fx.dir, "root", "containerd"),
    "--namespace",
    fx.namespace,
    "--data-root",
    join(fx.dir, "engine"),
    "-H",
    `unix://${fx.socket}`,
    "--bridge",
    fx.bridge,
    "--bip",
    fx.subnet,
    "--group",
    "daemon",
  ];
  const startServe = async (): Promise<void> => {
    const child = spawn(CTRD, serveArgs(), { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      fx.stderr += chunk;
    });
    fx.serve = child;
    await waitForPing(fx.socket, child, () => fx.stderr);
  };
  const stopServe = async (signal: NodeJS.Signals): Promise<void> => {
    const child = fx.serve;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await Promise.race([exited, sleep(15_000)]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  };

  beforeAll(async () => {
    requireBinary("docker");
    await ensureBuilt();
    fx.containerd = await startContainerd({ prefix });
    fx.dir = fx.containerd.dir;
    fx.registry = await startRegistry();
    const { ref } = await publishImage(fx.registry, fx.dir, "busybox:latest", {
      layers: [busyboxLayer()],
      config: { Cmd: ["sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
    });
    fx.image = ref;
    fx.namespace = `eng-${randomBytes(4).toString("hex")}`;
    fx.bridge = uniqueBridge("te");
    fx.subnet = uniqueSubnet();
    fx.socket = join(fx.dir, "docker.sock");
    fx.host = `unix://${fx.socket}`;
    await startServe();
  }, 120_000);

  afterAll(async () => {
    try {
      if (fx.serve) {
        const ids = (await fx.docker(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
        if (ids.length > 0) await fx.docker(["rm", "-f", ...ids]);
      }
    } finally {
      await stopServe("SIGTERM");
      if (fx.dir) {
        // The networks the engine defined (the default bridge included): their devices and IPAM state.
        const manager = new NetworkManager({
          stateDir: join(fx.containerd.stateDir, "network"),
          dataDir: join(dirname(join(fx.dir, "root", "containerd")), "network"),
        });
        for (const network of await manager.listNetworks().catch(() => [])) {
          await manager
            .removeNetwork(network.name)
            .catch((err: unknown) => process.stderr.write(`engine harness: ${String(err)}\n`));
        }
        for (const controller of existsSync("/sys/fs/cgroup") ? readdirSync("/sys/fs/cgroup") : []) {
          const path = join("/sys/fs/cgroup", controller, fx.namespace);
          try {
            if (existsSync(path)) rmdirSync(path);
          } catch {}
        }
      }
      await fx.registry?.stop();
      await fx.containerd?.stop();
    }
  }, 120_000);

  fx.log = () => fx.stderr;
  fx.servePid = () => {
    if (fx.serve?.pid === undefined) throw new Error("ctrd serve is not running");
    return fx.serve.pid;
  };
  fx.docker = (args, opts = {}) =>
    run(
      DOCKER,
      args,
      { ...process.env, DOCKER_HOST: fx.host, DOCKER_CONFIG: join(fx.dir, "docker-config") },
      opts.input,
      opts.timeoutMs,
    );
  fx.spawnDocker = (args) =>
    spawn(DOCKER, args, {
      env: { ...process.env, DOCKER_HOST: fx.host, DOCKER_CONFIG: join(fx.dir, "docker-config") },
      stdio: ["ignore", "pipe", "pipe"],
    });
  fx.api = (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      const req = request(
        {
          socketPath: fx.socket,
          path,
          method,
          headers: {
            ...(text !== undefined
              ? { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) }
              : {}),
            ...headers,
          },
        },
        (res) => {
          let data = "";
          res.setEncoding("utf8").on("data", (chunk: string) => {
            data += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data, headers: res.headers }));
        },
      );
      req.on("error", reject);
      req.end(text);
    });
  fx.stopServe = stopServe;
  fx.startServe = startServe;
  fx.restartServe = async (signal = "SIGKILL") => {
    await stopServe(signal);
    await startServe();
  };
  return fx;
}
