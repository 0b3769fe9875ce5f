// ctrd's own failures: one line on stderr, `ctrd: <message> (<code>)`, exit status 125.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { stateDirLayout } from "../../src/platform/state-dir.js";
import { ctrd, useHarnessCtrd } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-err-");

function expectOneLine(
  result: { code: number | null; stdout: string; stderr: string },
  pattern: RegExp,
): void {
  expect(result.code, result.stderr).toBe(125);
  expect(result.stdout).toBe("");
  expect(result.stderr).toMatch(/^ctrd: [^\n]+ \([a-z_]+\)\n$/);
  expect(result.stderr).toMatch(pattern);
}

describe("ctrd's own failures exit 125 with one clear line", () => {
  test("an unknown flag, a missing command, a bad value", async () => {
    expectOneLine(await ctrd(["run", "--bogus", "--", "true"]), /unknown option '--bogus'.*ctrd run --help/);
    expectOneLine(await ctrd(["run", ...fx.global]), /missing required argument 'image-or-cmd'/);
    expectOneLine(
      await ctrd(["run", ...fx.global, ...fx.cgroup, "--memory", "lots", "--", "true"]),
      /invalid --memory "lots"/,
    );
    expectOneLine(await ctrd(["frobnicate"]), /unknown command 'frobnicate'/);
    expectOneLine(await ctrd(["ps", "--log-level", "loud"]), /--log-level/);
  });

  test("an unknown runtime, per container or as the default", async () => {
    const args = ["run", ...fx.global, ...fx.cgroup, "--rm", "--rootfs", fx.containerd.rootfs];
    expectOneLine(
      await ctrd([...args, "--runtime", "nope", "--", "true"]),
      /unknown or invalid runtime name 'nope'.*\(invalid_argument\)/,
    );
    expectOneLine(
      await ctrd([...args, "--default-runtime", "nope", "--", "true"]),
      /default runtime 'nope' does not exist/,
    );
    const ps = await ctrd(["ps", "-a", "--json", ...fx.global]);
    expect(JSON.parse(ps.stdout)).toEqual([]);
  });

  test("a missing rootfs", async () => {
    expectOneLine(
      await ctrd([
        "run",
        ...fx.global,
        ...fx.cgroup,
        "--rm",
        "--rootfs",
        join(fx.containerd.dir, "nowhere"),
        "--",
        "true",
      ]),
      /rootfs .*nowhere does not exist \(not_found\)/,
    );
  });

  test("an unreachable --containerd: no socket, not a socket, nobody listening", async () => {
    expectOneLine(
      await ctrd(["ps", "--containerd", join(fx.containerd.dir, "missing.sock")]),
      /cannot reach containerd at .*missing\.sock: no socket there \(unavailable\)/,
    );
    expectOneLine(await ctrd(["ps", "--containerd", fx.containerd.dir]), /is not a socket/);
    expectOneLine(await ctrd(["ps", "--containerd", "relative.sock"]), /must be absolute/);
  });

  test("a socket nobody listens on: one line, and a run with a network sets none up", async () => {
    // A listener SIGKILLed leaves its socket file behind (a clean close would remove it).
    const dead = join(fx.containerd.dir, "dead.sock");
    const listener = spawn(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(dead)}); setInterval(() => {}, 60_000);`,
    ]);
    try {
      for (let waited = 0; !existsSync(dead); waited += 20) {
        if (waited > 10_000) throw new Error("the listener did not create its socket");
        await sleep(20);
      }
    } finally {
      listener.kill("SIGKILL");
      if (listener.exitCode === null && listener.signalCode === null) await once(listener, "exit");
    }
    const unreachable = /cannot reach containerd at .*dead\.sock: .*ECONNREFUSED.*\(unavailable\)/;
    expectOneLine(await ctrd(["ps", "--containerd", dead]), unreachable);
    const state = join(fx.containerd.dir, "dead-state");
    const run = [
      "run",
      "--rm",
      ...fx.global,
      "--containerd",
      dead,
      "--state",
      state,
      "--rootfs",
      fx.containerd.rootfs,
    ];
    expectOneLine(await ctrd([...run, "--network", "bridge", "--", "true"]), unreachable);
    expect(existsSync(join(stateDirLayout(state).network, "attachments"))).toBe(false);
    expectOneLine(await ctrd([...run, "--network", "none", "--", "true"]), unreachable);
  });

  test("a broken --config daemon.json", async () => {
    const config = join(fx.containerd.dir, "daemon.json");
    writeFileSync(config, JSON.stringify({ runtimes: { bad: { shim: "x" } } }));
    expectOneLine(await ctrd(["info", ...fx.global, "--config", config]), /key 'shim' is not allowed/);
  });

  test("a missing container", async () => {
    expectOneLine(
      await ctrd(["kill", ...fx.global, "ghost"]),
      /load container ghost: no such container \(not_found\)/,
    );
    expectOneLine(
      await ctrd(["exec", ...fx.global, "ghost", "--", "true"]),
      /container ghost: no such container/,
    );
  });
});
