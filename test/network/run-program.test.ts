// runProgram, how the CNI plugins are started: through native/network (posix_spawn, a thread that
// pumps the pipes and reaps) and, in a child process, through child_process where it is not built.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { networkAddon, runProgram } from "../../src/network/native.js";

const dir = mkdtempSync(join(tmpdir(), "run-program-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

test("the addon is built (scripts/setup.sh), so these tests are about it", () => {
  expect(networkAddon()).not.toBeNull();
});

test("input on stdin, stdout and stderr apart, the exit code, exactly the env given", async () => {
  const echo = script("echo", 'cat; echo "to stderr" >&2; env | sort >&2; exit 3');
  const outcome = await runProgram(echo, { PATH, CNI_COMMAND: "ADD" }, '{"cniVersion":"1.0.0"}', undefined);
  expect(outcome.code).toBe(3);
  expect(outcome.signal).toBeNull();
  expect(outcome.stdout).toBe('{"cniVersion":"1.0.0"}');
  const lines = outcome.stderr.trim().split("\n");
  expect(lines[0]).toBe("to stderr");
  // sh adds PWD (and may add SHLVL, _); nothing of this process's env comes along.
  const env = lines.slice(1).filter((line) => !/^(PWD|SHLVL|_)=/.test(line));
  expect(env).toEqual(["CNI_COMMAND=ADD", `PATH=${PATH}`]);
});

test("megabytes both ways at once do not deadlock on the pipes", async () => {
  const cat = script("cat", "cat; head -c 3000000 /dev/zero >&2");
  const input = "x".repeat(2_000_000);
  const outcome = await runProgram(cat, { PATH }, input, undefined);
  expect(outcome.code).toBe(0);
  expect(outcome.stdout.length).toBe(input.length);
  expect(outcome.stderr.length).toBe(3_000_000);
});

test("SIGPIPE and the signal mask are the defaults in the program, not Node's", async () => {
  // With SIGPIPE ignored (as in Node) `yes` would see EPIPE and complain on stderr; by default it dies quietly.
  const pipe = script("pipe", "yes | head -c 1 >/dev/null; grep -E '^Sig(Blk|Ign)' /proc/self/status");
  const outcome = await runProgram(pipe, { PATH }, "", undefined);
  expect(outcome.stderr).toBe("");
  expect(outcome.stdout).toContain("SigBlk:\t0000000000000000");
  expect(outcome.code).toBe(0);
});

test("an abort kills it (SIGKILL); a program that cannot start rejects with the errno", async () => {
  const sleeper = script("sleep", "exec sleep 600");
  const controller = new AbortController();
  const running = runProgram(sleeper, { PATH }, "", controller.signal);
  controller.abort();
  const outcome = await running;
  expect(outcome.signal).toBe("SIGKILL");
  expect(outcome.code).toBeNull();
  await expect(runProgram(join(dir, "missing"), { PATH }, "", undefined)).rejects.toThrow(/ENOENT/);
  const notExecutable = join(dir, "plain");
  writeFileSync(notExecutable, "");
  await expect(runProgram(notExecutable, { PATH }, "", undefined)).rejects.toThrow(/EACCES/);
});

test("without the addon (CTRD_NETWORK_ADDON=none): child_process, the same outcome", () => {
  const echo = script("echo-fallback", 'cat; echo "e" >&2; exit 4');
  const code = `
    import { networkAddon, runProgram } from "./src/network/native.ts";
    if (networkAddon() !== null) throw new Error("the addon was loaded");
    const outcome = await runProgram(${JSON.stringify(echo)}, { PATH: "/usr/bin:/bin" }, "in", undefined);
    process.stdout.write(JSON.stringify(outcome));
  `;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: join(import.meta.dirname, "..", ".."),
    env: { ...process.env, CTRD_NETWORK_ADDON: "none" },
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ code: 4, signal: null, stdout: "in", stderr: "e\n" });
});
