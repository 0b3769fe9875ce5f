/** A container of the local backend: one HCS compute system, started at creation (as moby does). */
import type { OciSpec } from "../../oci/spec.js";
import { inspectContainer } from "../../state/inspect.js";
import type {
  CallOptions,
  Container,
  ContainerInfo,
  NewTaskOptions,
  StdioOptions,
  Task,
} from "../types/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  NotImplementedError,
} from "../types/errors.js";
import type { ContainerInspect } from "../types/inspect.js";
import type { GuestOs } from "./documents.js";
import type { HcsSystem } from "./hcs-system.js";
import { bounded, type ContainerState, honour, type LocalRuntime, LocalTask } from "./process.js";
import { assertStdioSupported } from "./stdio.js";

/** The runtime name containers of this backend report (moby's name for its in-process HCS runtime). */
export const LOCAL_RUNTIME_NAME = "com.docker.hcsshim.v1";

export interface LocalContainerInit {
  id: string;
  system: HcsSystem;
  /** Absent for a container opened by loadContainer: HCS has no way to reattach to its processes. */
  spec: OciSpec | undefined;
  guestOs: GuestOs;
  hyperV: boolean;
  labels: Record<string, string>;
  createdAt: Date | undefined;
  stopTimeoutMs: number;
  onDeleted: (id: string) => void;
}

export class LocalContainer implements Container, ContainerState {
  readonly id: string;
  readonly system: HcsSystem;
  readonly guestOs: GuestOs;
  readonly hyperV: boolean;
  paused = false;
  currentTask: LocalTask | undefined;
  private creatingTask = false;
  private deleted = false;

  constructor(
    private readonly rt: LocalRuntime,
    private readonly init: LocalContainerInit,
  ) {
    this.id = init.id;
    this.system = init.system;
    this.guestOs = init.guestOs;
    this.hyperV = init.hyperV;
  }

  newTask(opts?: NewTaskOptions): Promise<Task> {
    return honour(bounded(this.rt, opts), `new task ${this.id}`, async (signal) => {
      this.assertNotDeleted();
      const process = this.init.spec?.process;
      if (!this.init.spec) {
        throw new FailedPreconditionError(
          `container ${this.id} was loaded, not created here: HCS cannot restart it`,
        );
      }
      if (!process) throw new FailedPreconditionError(`container ${this.id}: spec has no process`);
      if (opts?.checkpointDir)
        throw new FailedPreconditionError("checkpoints are not supported by the HCS backend");
      if (this.currentTask || this.creatingTask)
        throw new AlreadyExistsError(`container ${this.id} already has a task`);
      if (this.system.exited) throw new FailedPreconditionError(`container ${this.id} has stopped`);
      assertStdioSupported(opts?.stdio);
      this.creatingTask = true;
      try {
        const task = await LocalTask.create(this.rt, this, process, opts?.stdio, this.init.spec);
        if (signal?.aborted) {
          // The caller gave up while HCS was creating the process: nobody will ever start or delete it.
          await task.dispose();
          throw new FailedPreconditionError(`new task ${this.id}: abandoned by the caller`);
        }
        this.currentTask = task;
        return task;
      } finally {
        this.creatingTask = false;
      }
    });
  }

  get labels(): Readonly<Record<string, string>> {
    return this.init.labels;
  }

  private requireTask(): LocalTask {
    if (!this.currentTask) throw new NotFoundError(`container ${this.id} has no task`);
    return this.currentTask;
  }

  /** The same handle newTask returned: HCS processes have one owner, so there is no IO-less view. */
  task(opts?: CallOptions): Promise<Task> {
    return honour(bounded(this.rt, opts), `task ${this.id}`, async () => {
      this.assertNotDeleted();
      return this.requireTask();
    });
  }

  /** Only the task this client created: HCS cannot reopen the stdio of a process it did not start. */
  attachTask(_stdio: StdioOptions, opts?: CallOptions): Promise<Task> {
    return this.task(opts);
  }

  info(opts?: CallOptions): Promise<ContainerInfo> {
    return honour(bounded(this.rt, opts), `info ${this.id}`, async () => {
      this.assertNotDeleted();
      const info: ContainerInfo = {
        id: this.id,
        runtime: { name: LOCAL_RUNTIME_NAME },
        labels: { ...this.init.labels },
      };
      if (this.init.createdAt) info.createdAt = this.init.createdAt;
      if (this.init.spec) info.spec = this.init.spec;
      return info;
    });
  }

  /** HCS keeps no record of a container's labels beyond its creator's memory. */
  async setLabels(_labels: Record<string, string | undefined>, _opts?: CallOptions): Promise<void> {
    throw new NotImplementedError(
      `set labels of container ${this.id}: the HCS backend keeps no container record`,
    );
  }

  /** What this client knows: HCS remembers nothing once a task is gone. */
  inspect(opts?: CallOptions): Promise<ContainerInspect> {
    return inspectContainer(this, opts);
  }

  /** Shutdown (Terminate after the stop timeout) and close. FailedPrecondition while a task exists. */
  delete(opts?: CallOptions): Promise<void> {
    return honour(bounded(this.rt, opts), `delete container ${this.id}`, async () => {
      this.assertNotDeleted();
      if (this.currentTask || this.creatingTask) {
        throw new FailedPreconditionError(`container ${this.id} still has a task; delete it first`);
      }
      this.deleted = true;
      try {
        await this.system.stop(this.init.stopTimeoutMs);
      } catch (err) {
        this.rt.logger.error({ id: this.id, err }, "stopping the compute system failed");
      }
      await this.system.close();
      this.init.onDeleted(this.id);
    });
  }

  /**
   * Client shutdown: terminate what this client created and close every handle. A loaded
   * container only loses this client's handle; its creator still owns it.
   */
  async dispose(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    await this.currentTask?.dispose();
    try {
      if (this.init.spec && (await this.system.terminate()))
        await this.system.waitExited(this.init.stopTimeoutMs);
    } catch (err) {
      this.rt.logger.warn({ id: this.id, err }, "terminating the compute system at close failed");
    }
    await this.system.close();
    this.init.onDeleted(this.id);
  }

  private assertNotDeleted(): void {
    if (this.deleted) throw new NotFoundError(`container ${this.id} was deleted`);
  }
}
