/** A container of the local backend: one HCS compute system, started at creation (as moby does). */
import type { OciSpec } from "../../oci/spec.js";
import type { Call } from "../core/calls.js";
import { ContainerBase, type RuntimeSupport, type TaskRequest } from "../core/container.js";
import type { Stdio } from "../core/inputs.js";
import type { ContainerInfo, Task } from "../types/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  NotImplementedError,
} from "../types/errors.js";
import type { GuestOs } from "./documents.js";
import type { HcsSystem } from "./hcs-system.js";
import { type ContainerState, type LocalRuntime, LocalTask } from "./process.js";
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

export class LocalContainer extends ContainerBase implements ContainerState {
  readonly system: HcsSystem;
  readonly guestOs: GuestOs;
  readonly hyperV: boolean;
  paused = false;
  currentTask: LocalTask | undefined;
  private creatingTask = false;
  /** An LCOW container's guest is made by its first process (opengcs): there is no second one. */
  private guestCreated = false;
  private deleted = false;

  constructor(
    private readonly rt: LocalRuntime,
    private readonly init: LocalContainerInit,
  ) {
    super(rt.core, init.id);
    this.system = init.system;
    this.guestOs = init.guestOs;
    this.hyperV = init.hyperV;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.init.labels;
  }

  async spec(_call: Call): Promise<OciSpec | undefined> {
    return this.init.spec;
  }

  async runtimeSupport(_call: Call): Promise<RuntimeSupport> {
    return { name: LOCAL_RUNTIME_NAME, checkpoint: false };
  }

  protected async createTask(call: Call, { stdio }: TaskRequest): Promise<Task> {
    this.assertNotDeleted();
    const process = this.init.spec?.process;
    if (!this.init.spec)
      throw new FailedPreconditionError("the container was loaded, not created here: HCS cannot restart it");
    if (!process) throw new FailedPreconditionError("its spec has no process");
    if (this.currentTask || this.creatingTask)
      throw new AlreadyExistsError("the container already has a task");
    if (this.system.exited) throw new FailedPreconditionError("the container has stopped");
    if (this.guestOs === "linux" && this.guestCreated) {
      throw new FailedPreconditionError(
        "an LCOW container runs one init process (its first process creates the container in the utility VM); create a new container",
      );
    }
    assertStdioSupported(stdio);
    this.creatingTask = true;
    try {
      const task = await LocalTask.create(this.rt, this, process, stdio, this.init.spec);
      this.guestCreated = true;
      if (call.signal?.aborted) {
        // The caller gave up while HCS was creating the process: nobody will ever start or delete it.
        await task.dispose();
        throw new FailedPreconditionError("abandoned by the caller");
      }
      this.currentTask = task;
      return task;
    } finally {
      this.creatingTask = false;
    }
  }

  /** The same handle newTask returned: HCS cannot reopen the stdio of a process it did not start. */
  protected async openTask(_call: Call, _stdio: Stdio | undefined): Promise<Task> {
    this.assertNotDeleted();
    if (!this.currentTask) throw new NotFoundError(`container ${this.id} has no task`);
    return this.currentTask;
  }

  protected async containerInfo(_call: Call): Promise<ContainerInfo> {
    this.assertNotDeleted();
    const info: ContainerInfo = {
      id: this.id,
      runtime: { name: LOCAL_RUNTIME_NAME },
      labels: { ...this.init.labels },
    };
    if (this.init.createdAt) info.createdAt = this.init.createdAt;
    if (this.init.spec) info.spec = this.init.spec;
    return info;
  }

  /** HCS keeps no record of a container's labels beyond its creator's memory. */
  protected async updateLabels(): Promise<void> {
    throw new NotImplementedError("the HCS backend keeps no container record");
  }

  /** HCS keeps no spec to replace: a compute system is created from the one given at create. */
  protected async replaceSpec(): Promise<void> {
    throw new NotImplementedError("the HCS backend keeps no container record");
  }

  /** Shutdown (Terminate after the stop timeout) and close. FailedPrecondition while a task exists. */
  protected async deleteContainer(_call: Call): Promise<void> {
    this.assertNotDeleted();
    if (this.currentTask || this.creatingTask)
      throw new FailedPreconditionError("it has a task; delete the task first");
    this.deleted = true;
    try {
      await this.system.stop(this.init.stopTimeoutMs);
    } catch (err) {
      this.rt.logger.error({ id: this.id, err }, "stopping the compute system failed");
    }
    await this.system.close();
    this.init.onDeleted(this.id);
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
    if (this.deleted) throw new NotFoundError("the container was deleted");
  }
}
