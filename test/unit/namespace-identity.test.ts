import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, expect, test } from "vitest";
import { inNamespaceOf } from "../../src/engine/containers/shared-namespaces.js";

// A joiner's namespace paths (/proc/PID/ns/…) name whatever process has the pid when runc opens them: the
// engine checks after the task is made that it is in its donor's namespaces, by the namespaces' identity.
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  }
});

/** A process that has started (its pid's namespaces are its own, not its parent's any more). */
async function started(command: string, args: string[]): Promise<number> {
  const child = spawn(command, [...args, "sh", "-c", "echo up; exec sleep 600"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  await once(child.stdout ?? child, "data");
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  return child.pid;
}

test("a process in another's namespace is told apart from one in a namespace of its own, or a pid that is gone", async () => {
  const sameNetwork = await started("env", []);
  const ownNetwork = await started("unshare", ["--net"]);
  expect(await inNamespaceOf(sameNetwork, process.pid, "network")).toBe(true);
  expect(await inNamespaceOf(ownNetwork, process.pid, "network")).toBe(false);
  expect(await inNamespaceOf(ownNetwork, process.pid, "ipc")).toBe(true);
  const gone = children[0];
  gone?.kill("SIGKILL");
  if (gone) await once(gone, "exit");
  expect(await inNamespaceOf(sameNetwork, process.pid, "network")).toBe(false);
});
