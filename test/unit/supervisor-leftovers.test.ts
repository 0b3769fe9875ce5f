// Which processes the supervisor takes for an earlier run's containerd on its dirs: the pid file's
// alone when it names one (no look through /proc on every command), else whatever /proc shows
// running our config. The "containerds" here are node processes whose command line says so.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterEach, expect, test } from "vitest";
import { ContainerdProcessControl } from "../../src/libcontainerd/supervisor/containerd-process.js";
import { managedContainerdLayout } from "../../src/libcontainerd/supervisor/layout.js";

const started: ChildProcess[] = [];
let dir = "";
afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A process whose command line is `containerd … --config <configFile>`, as /proc shows it. */
async function fakeContainerd(configFile: string): Promise<number> {
  const child = spawn(
    process.execPath,
    ["-e", "setInterval(() => {}, 60_000)", "--", "--config", configFile],
    {
      argv0: "containerd",
      stdio: "ignore",
    },
  );
  started.push(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error("spawn failed");
  // Until /proc shows the new command line (spawn returns before exec).
  for (
    let waited = 0;
    !readFileSync(`/proc/${pid}/cmdline`, "latin1").startsWith("containerd\0");
    waited += 10
  ) {
    if (waited > 5_000) throw new Error("the fake containerd did not start");
    await sleep(10);
  }
  return pid;
}

function control(): { processes: ContainerdProcessControl; pidFile: string; configFile: string } {
  dir = mkdtempSync(join(tmpdir(), "lcd-leftovers-"));
  const layout = managedContainerdLayout(join(dir, "root"), dir);
  const processes = new ContainerdProcessControl({
    binary: "/usr/bin/containerd",
    layout,
    env: {},
    logger: pino({ level: "silent" }),
    onChildExit: () => {},
  });
  return { processes, pidFile: layout.pidFile, configFile: layout.configFile };
}

test("the pid file names our containerd: that one alone, /proc is not searched", async () => {
  const { processes, pidFile, configFile } = control();
  const recorded = await fakeContainerd(configFile);
  await fakeContainerd(configFile);
  writeFileSync(pidFile, `${recorded}\n`);
  expect(processes.leftovers()).toEqual([recorded]);
});

test("no pid file, or one naming another process: every containerd on our config that /proc shows", async () => {
  const { processes, pidFile, configFile } = control();
  const first = await fakeContainerd(configFile);
  const second = await fakeContainerd(configFile);
  await fakeContainerd(join(dir, "another.toml"));
  expect(processes.leftovers().sort()).toEqual([first, second].sort());
  writeFileSync(pidFile, `${process.pid}\n`);
  expect(processes.leftovers().sort()).toEqual([first, second].sort());
});
