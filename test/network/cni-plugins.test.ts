// CniPlugins with plugins of the test's own (shell scripts): what an abort does to an interface
// plugin's ADD. The real plugins' behaviour under abort is in network.test.ts.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { CniPlugins } from "../../src/network/cni.js";

const dir = mkdtempSync(join(tmpdir(), "cni-plugins-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function plugin(type: string, body: string): void {
  const path = join(dir, type);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

const list = (type: string) => ({ cniVersion: "1.0.0", name: `test-${type}`, plugins: [{ type }] });
const runtime = { containerId: "c1", netns: "", ifName: "eth0" };
const RESULT = '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}]}';

/** Running or sleeping: not gone, nor a zombie its new parent has yet to reap. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is gone within a few seconds. A process the group's SIGKILL reached closes its files
 * (the plugin's pipes, whose end the ADD waits for) before it is a zombie: on a loaded machine CI saw
 * it between the two. One that was never killed sleeps on (600 s) and is still alive after the wait.
 */
async function dies(pid: number): Promise<boolean> {
  for (let waited = 0; waited < 5000; waited += 20) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

test("an aborted ADD of an interface plugin runs to its end (its DEL can undo it), then is CanceledError", async () => {
  const done = join(dir, "slow.done");
  plugin("slow", `cat >/dev/null; sleep 0.3; touch ${done}; echo '${RESULT}'`);
  const controller = new AbortController();
  const adding = new CniPlugins([dir]).add(list("slow"), runtime, controller.signal);
  controller.abort();
  await expect(adding).rejects.toMatchObject({ code: "canceled" });
  expect(existsSync(done)).toBe(true);
});

test("one still running when the grace after an abort is over is killed: the abort does not wait for good", async () => {
  const pidFile = join(dir, "stuck.pid");
  plugin("stuck", `echo $$ > ${pidFile}; exec sleep 600`);
  const controller = new AbortController();
  const adding = new CniPlugins([dir], 200).add(list("stuck"), runtime, controller.signal);
  while (!existsSync(pidFile)) await new Promise((resolve) => setTimeout(resolve, 10));
  controller.abort();
  await expect(adding).rejects.toMatchObject({ code: "canceled" });
  expect(await dies(Number(readFileSync(pidFile, "utf8")))).toBe(true);
});

test("an ADD that is not aborted is not limited by the grace", async () => {
  plugin("patient", `cat >/dev/null; sleep 0.4; echo '${RESULT}'`);
  const result = await new CniPlugins([dir], 100).add(list("patient"), runtime, new AbortController().signal);
  expect(result.interfaces).toEqual([{ name: "eth0" }]);
});

test("what the plugin started (host-local under bridge, sharing its stderr) is killed with it", async () => {
  const pidFile = join(dir, "grandchild.pid");
  plugin("parent", `sh -c 'echo $$ > ${pidFile}; exec sleep 600' & wait`);
  const controller = new AbortController();
  const adding = new CniPlugins([dir], 200).add(list("parent"), runtime, controller.signal);
  while (!existsSync(pidFile)) await new Promise((resolve) => setTimeout(resolve, 10));
  controller.abort();
  await expect(adding).rejects.toMatchObject({ code: "canceled" });
  expect(await dies(Number(readFileSync(pidFile, "utf8")))).toBe(true);
});

test("a terminal's Ctrl-C (SIGINT to ctrd's process group) does not reach the plugin: its ADD runs to its end", async () => {
  const done = join(dir, "interrupted.done");
  plugin(
    "interrupted",
    `touch ${join(dir, "interrupted.started")}; cat >/dev/null; sleep 0.5; touch ${done}; echo '${RESULT}'`,
  );
  const fixture = join(import.meta.dirname, "../fixtures/cni-add-until-sigint.ts");
  // A group of its own, as a shell gives a foreground job: the signal goes to the whole group.
  const child = spawn(process.execPath, ["--import", "tsx", fixture, dir, "interrupted"], {
    detached: true,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    if (chunk.includes("READY")) process.kill(-child.pid!, "SIGINT");
  });
  await once(child, "close");
  expect(output).toBe("READY\nrejected canceled\n");
  expect(existsSync(done)).toBe(true);
});
