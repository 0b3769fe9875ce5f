import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { requireBinary } from "../harness/binaries.js";
import type { TestContainerd } from "../harness/containerd.js";

/** Host pids of the shim processes serving container `id` (the runc v2 shim's argv names it). */
export function shimPidsOf(id: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (
        argv[0]?.includes("containerd-shim") &&
        argv.includes("-id") &&
        argv[argv.indexOf("-id") + 1] === id
      )
        pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** The runc v2 shim's bundle for a task: containerd's state dir, per namespace and id. */
export function bundleDir(ctrd: TestContainerd, namespace: string, id: string): string {
  return join(ctrd.dir, "state", "io.containerd.runtime.v2.task", namespace, id);
}

export interface Leftovers {
  container: boolean;
  task: boolean;
  fifos: string[];
  bundle: boolean;
  shims: number[];
}

/**
 * Everything containerd, the shims and the client's state dir still hold for `id`. Read straight
 * from containerd's API and the filesystem, not through the client under test.
 */
export async function leftoversOf(ctrd: TestContainerd, namespace: string, id: string): Promise<Leftovers> {
  const transport = createContainerdTransport({ address: ctrd.address, namespace });
  const tasks = serviceClient(Tasks, transport);
  const { tasks: running } = await tasks.list({}, { timeoutMs: 5000 });
  const task = running.find((t) => t.id === id || t.containerId === id);
  const { containers } = await serviceClient(Containers, transport).list({}, { timeoutMs: 5000 });
  const fifoDir = join(ctrd.stateDir, namespace, id);
  return {
    container: containers.some((c) => c.id === id),
    task: task !== undefined,
    fifos: existsSync(fifoDir) ? readdirSync(fifoDir) : [],
    bundle: existsSync(bundleDir(ctrd, namespace, id)),
    shims: shimPidsOf(id),
  };
}

export const NOTHING_LEFT: Leftovers = {
  container: false,
  task: false,
  fifos: [],
  bundle: false,
  shims: [],
};

/**
 * A runc wrapper that, when runc is called with `subcommand`, first touches `<markerDir>/<subcommand>`
 * and sleeps `seconds`: the window in which a test kills containerd "in the middle" of the call.
 */
export function writeSlowRuntime(dir: string, subcommand: string, seconds: number): string {
  const path = join(dir, `slow-${subcommand}-runc`);
  writeFileSync(
    path,
    `#!/bin/sh
for arg in "$@"; do
  if [ "$arg" = "${subcommand}" ]; then
    touch '${join(dir, subcommand)}'
    sleep ${seconds}
    break
  fi
done
exec '${requireBinary("runc")}' "$@"
`,
    { mode: 0o755 },
  );
  return path;
}

export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Collects events from an iterable in the background until `stop()`. */
export function recordEvents(source: AsyncIterable<LibcontainerdEvent>): {
  events: LibcontainerdEvent[];
  exitsOf(containerId: string, processId?: string): LibcontainerdEvent[];
} {
  const events: LibcontainerdEvent[] = [];
  void (async () => {
    for await (const event of source) events.push(event);
  })();
  return {
    events,
    exitsOf: (containerId, processId = containerId) =>
      events.filter((e) => e.type === "exit" && e.containerId === containerId && e.processId === processId),
  };
}
