// N container lifecycles at once through one client (create → task with stdout+stderr FIFOs →
// wait → start → read output → delete), as the reproduction ran them: shared by the in-suite
// stress test and bench/stress.ts (the full 300).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { LibcontainerdClient } from "../../src/libcontainerd/factory.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { readAll } from "../harness/remote.js";

export interface LifecycleRun {
  count: number;
  failures: { id: string; error: unknown }[];
  /** containerd restarts the supervisor made meanwhile. */
  restarts: number;
  /** Health-check misses it judged busy (left running). */
  busyVerdicts: number;
  ms: number;
}

export interface LifecycleOptions {
  count: number;
  rootfs: string;
  /** Containers get cgroupsPath `<cgroupParent>/<id>`. */
  cgroupParent: string;
  prefix?: string;
}

async function lifecycle(client: LibcontainerdClient, id: string, opts: LifecycleOptions): Promise<void> {
  const spec = defaultLinuxSpec({
    args: ["sh", "-c", `echo out-${id}; echo err-${id} >&2`],
    rootfs: opts.rootfs,
    cgroupsPath: `${opts.cgroupParent}/${id}`,
  });
  const container = await client.newContainer(id, spec);
  try {
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    try {
      const exited = task.wait();
      const [out, err] = [readAll(task.stdout), readAll(task.stderr)];
      await task.start();
      const status = await exited;
      const [stdout, stderr] = await Promise.all([out, err]);
      if (status.exitCode !== 0 || stdout !== `out-${id}\n` || stderr !== `err-${id}\n`) {
        throw new Error(
          `${id}: exit ${status.exitCode}, stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`,
        );
      }
    } finally {
      await task.delete();
    }
  } finally {
    await container.delete();
  }
}

export async function runConcurrentLifecycles(
  client: LibcontainerdClient,
  opts: LifecycleOptions,
): Promise<LifecycleRun> {
  const supervisor = client.managedContainerd;
  let restarts = 0;
  let busyVerdicts = 0;
  const onRestart = () => restarts++;
  const onUnhealthy = (e: { busy: boolean }) => {
    if (e.busy) busyVerdicts++;
  };
  supervisor?.on("restarted", onRestart);
  supervisor?.on("unhealthy", onUnhealthy);
  const started = performance.now();
  const prefix = opts.prefix ?? `stress-${process.pid}`;
  const ids = Array.from({ length: opts.count }, (_, i) => `${prefix}-${i}`);
  const results = await Promise.allSettled(ids.map((id) => lifecycle(client, id, opts)));
  const ms = performance.now() - started;
  supervisor?.off("restarted", onRestart);
  supervisor?.off("unhealthy", onUnhealthy);
  const failures = results.flatMap((r, i) =>
    r.status === "rejected" ? [{ id: ids[i] ?? "", error: r.reason as unknown }] : [],
  );
  return { count: opts.count, failures, restarts, busyVerdicts, ms };
}

/** What a run left behind in containerd and in the client's state dir. */
export async function leftovers(
  client: LibcontainerdClient,
  stateDir: string,
  namespace: string,
): Promise<{ containers: string[]; fifoDirs: string[] }> {
  const containers = (await client.listContainers()).map((c) => c.id);
  let fifoDirs: string[] = [];
  try {
    fifoDirs = readdirSync(join(stateDir, namespace));
  } catch {}
  return { containers, fifoDirs };
}
