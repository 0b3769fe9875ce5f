import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll } from "vitest";
import { startContainerd, type TestContainerd } from "../harness/containerd.js";

const repo = join(import.meta.dirname, "../..");
// ctrd's default network is a bridge shared by the whole host: every ctrd a CLI test starts, through
// startCtrd or not, runs with --network none unless the test asks for a network (test/cli/network.test.ts).
process.env.CTRD_NETWORK ??= "none";

/** What `bin.ctrd` in package.json points to: the tests run the built CLI, as users do. */
export const CTRD = join(repo, "dist/cli/main.js");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isStale(): boolean {
  return !existsSync(CTRD) || statSync(CTRD).mtimeMs < newestSource(join(repo, "src"));
}

/**
 * Builds dist/ when a source is newer than the CLI. Test files run in parallel, so one builds while
 * the others wait on a lock directory, then find the build fresh.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = join(tmpdir(), "ctrd-cli-test-build.lock");
  for (let waited = 0; isStale(); waited += 200) {
    try {
      mkdirSync(lock);
    } catch {
      if (waited > 120_000) throw new Error(`waited 2 minutes for ${lock}; remove it if no build runs`);
      await sleep(200);
      continue;
    }
    try {
      if (isStale()) {
        // Not spawnSync: a blocked event loop would starve the harness containerd's start-up checks.
        const build = spawn(process.execPath, ["scripts/build.js"], { cwd: repo });
        let output = "";
        build.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        build.stderr.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        const [status] = (await once(build, "close")) as [number | null];
        // The build still emits when some other area has a type error; only a CLI it did not write is fatal.
        if (status !== 0 && isStale()) throw new Error(`building the CLI failed:\n${output}`);
      }
    } finally {
      rmdirSync(lock);
    }
  }
  chmodSync(CTRD, 0o755);
}

export interface CtrdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CtrdOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** A running ctrd: its output so far, and its result once it exits. */
export interface CtrdProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  result: Promise<CtrdResult>;
}

export function startCtrd(args: readonly string[], opts: CtrdOptions = {}): CtrdProcess {
  const child = spawn(CTRD, args, {
    env: { ...process.env, ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  else child.stdin?.end();
  const timeout = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const result = new Promise<CtrdResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timeout);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, result };
}

export function ctrd(args: readonly string[], opts: CtrdOptions = {}): Promise<CtrdResult> {
  return startCtrd(args, opts).result;
}

/** Resolves once `predicate` holds for the process's stdout (or rejects after `timeoutMs`). */
export async function waitForOutput(
  proc: CtrdProcess,
  predicate: (stdout: string) => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(proc.stdout())) {
    if (Date.now() > deadline || proc.child.exitCode !== null) {
      throw new Error(
        `ctrd did not print what was expected; stdout: ${proc.stdout()} stderr: ${proc.stderr()}`,
      );
    }
    await sleep(25);
  }
}

export interface PsRow {
  id: string;
  status: string;
  pid: number;
  runtime: string;
  command: string[];
}

export interface HarnessCtrd {
  containerd: TestContainerd;
  /** Points ctrd at the harness's containerd and state dir. */
  global: string[];
  /** Puts containers under the harness's cgroup, which it kills whatever a failed test left. */
  cgroup: string[];
}

/** A private containerd for the test file and the flags that point ctrd at it; built ctrd first. */
export function useHarnessCtrd(prefix: string): HarnessCtrd {
  const fx = {} as HarnessCtrd;
  beforeAll(async () => {
    await ensureBuilt();
    fx.containerd = await startContainerd({ prefix });
    // --root too: ctrd keeps container logs beside it (<root>/../logs), here inside the harness's dir.
    fx.global = [
      "--containerd",
      fx.containerd.address,
      "--state",
      fx.containerd.stateDir,
      "--root",
      join(fx.containerd.dir, "ctrd", "root"),
    ];
    fx.cgroup = ["--cgroup-parent", fx.containerd.cgroupParent];
  });
  afterAll(async () => {
    await fx.containerd?.stop();
  });
  return fx;
}

/**
 * Runs `shell` under script(1), which gives it (and the ctrd it starts) a real terminal; its output
 * as the terminal showed it. Our end of script's stdin stays open until it exits: at EOF script
 * would hang up the terminal.
 */
export async function inTerminal(shell: string): Promise<{ code: number | null; output: string }> {
  const script = spawn("script", ["-qec", shell, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  for (const stream of [script.stdout, script.stderr])
    stream.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
  const [code] = (await once(script, "close")) as [number | null];
  script.stdin.end();
  return { code, output };
}
