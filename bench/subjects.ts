// The two things compared everywhere: one container lifecycle through the library, and the same
// through `ctr` (a whole Go process per container, as a shell script or Docker-less tooling pays).
import { performance } from "node:perf_hooks";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import type { OciSpec } from "../src/oci/spec.js";
import { RuntimeRegistry } from "../src/runtime/registry.js";
import { requireBinary } from "../test/harness/binaries.js";
import type { TestContainerd } from "../test/harness/containerd.js";
import { writeCrunWrapper } from "../test/harness/crun-wrapper.js";
import { type CommandResult, runCommand } from "./measure.js";

export const NAMESPACE = "bench";

export type RuntimeKey = "runc-v2" | "runc-v1" | "crun";

export const RUNTIME_LABELS: Record<RuntimeKey, string> = {
  "runc-v2": "runc (io.containerd.runc.v2)",
  "runc-v1": "runc (io.containerd.runtime.v1.linux)",
  crun: "crun 1.8 (runc v2 shim, BinaryName = wrapper)",
};

export interface Phases {
  createContainer: number;
  createTask: number;
  start: number;
  startToExit: number;
  deleteTask: number;
  deleteContainer: number;
}

export class BenchSubjects {
  readonly client: RemoteClient;
  readonly crunWrapper: string;
  private readonly ctr = requireBinary("ctr");
  private counter = 0;

  constructor(readonly ctrd: TestContainerd) {
    this.crunWrapper = writeCrunWrapper(ctrd.dir);
    const runtimes = new RuntimeRegistry({
      stateDir: ctrd.stateDir,
      runtimes: { crun: { path: this.crunWrapper } },
    });
    this.client = new RemoteClient({
      address: ctrd.address,
      namespace: NAMESPACE,
      stateDir: ctrd.stateDir,
      runtimes,
    });
  }

  nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.counter}`;
  }

  /** What `ctr run --rootfs` would send: containerd's default spec, cgroup `/<namespace>/<id>`. */
  spec(id: string, args: string[]): OciSpec {
    return defaultLinuxSpec({ args, rootfs: this.ctrd.rootfs, cgroupsPath: `/${NAMESPACE}/${id}` });
  }

  libraryRuntimeName(runtime: RuntimeKey): string {
    return { "runc-v2": "runc", "runc-v1": "io.containerd.runtime.v1.linux", crun: "crun" }[runtime];
  }

  /**
   * create container → create task (stdout/stderr FIFOs, as ctr wires them) → wait + start →
   * exit → delete task → delete container. Returns wall milliseconds.
   */
  async libraryLifecycle(runtime: RuntimeKey, args = ["/bin/true"], phases?: Phases[]): Promise<number> {
    const id = this.nextId(`lib-${runtime}`);
    const t0 = performance.now();
    const container = await this.client.newContainer(id, this.spec(id, args), {
      runtime: this.libraryRuntimeName(runtime),
    });
    const t1 = performance.now();
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const t2 = performance.now();
    const exited = task.wait();
    await task.start();
    const t3 = performance.now();
    const status = await exited;
    const t4 = performance.now();
    await task.delete();
    const t5 = performance.now();
    await container.delete();
    const t6 = performance.now();
    if (status.exitCode !== 0) throw new Error(`library ${runtime} ${id}: exit ${status.exitCode}`);
    phases?.push({
      createContainer: t1 - t0,
      createTask: t2 - t1,
      start: t3 - t2,
      startToExit: t4 - t3,
      deleteTask: t5 - t4,
      deleteContainer: t6 - t5,
    });
    return t6 - t0;
  }

  ctrArgs(runtime: RuntimeKey): string[] {
    const base = ["--address", this.ctrd.address, "-n", NAMESPACE];
    if (runtime === "runc-v1") return [...base, "run", "--runtime", "io.containerd.runtime.v1.linux"];
    if (runtime === "crun") return [...base, "run", "--runc-binary", this.crunWrapper];
    return [...base, "run"];
  }

  /** `ctr run --rm --rootfs <dir> <id> /bin/true` as a whole process. Returns wall milliseconds. */
  async ctrLifecycle(runtime: RuntimeKey, args = ["/bin/true"]): Promise<number> {
    const id = this.nextId(`ctr-${runtime}`);
    const start = performance.now();
    const result = await runCommand(this.ctr, [
      ...this.ctrArgs(runtime),
      "--rm",
      "--rootfs",
      this.ctrd.rootfs,
      id,
      ...args,
    ]);
    const ms = performance.now() - start;
    assertSucceeded(result, `ctr run ${runtime} ${id}`);
    return ms;
  }

  /** `ctr tasks exec` of `/bin/true` in a running container. Returns wall milliseconds. */
  async ctrExec(containerId: string): Promise<number> {
    const execId = this.nextId("ctr-exec");
    const start = performance.now();
    const result = await runCommand(this.ctr, [
      "--address",
      this.ctrd.address,
      "-n",
      NAMESPACE,
      "tasks",
      "exec",
      "--exec-id",
      execId,
      containerId,
      "/bin/true",
    ]);
    const ms = performance.now() - start;
    assertSucceeded(result, `ctr tasks exec ${execId}`);
    return ms;
  }

  async ctrVersion(): Promise<string> {
    const result = await runCommand(this.ctr, ["--version"]);
    return result.stdout.trim();
  }
}

function assertSucceeded(result: CommandResult, what: string): void {
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.stderr.trim()}`);
}
