// CniPlugins with plugins of the test's own (shell scripts): what an abort does to an interface
// plugin's ADD. The real plugins' behaviour under abort is in network.test.ts.
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
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
  expect(alive(Number(readFileSync(pidFile, "utf8")))).toBe(false);
});

test("an ADD that is not aborted is not limited by the grace", async () => {
  plugin("patient", `cat >/dev/null; sleep 0.4; echo '${RESULT}'`);
  const result = await new CniPlugins([dir], 100).add(list("patient"), runtime, new AbortController().signal);
  expect(result.interfaces).toEqual([{ name: "eth0" }]);
});
