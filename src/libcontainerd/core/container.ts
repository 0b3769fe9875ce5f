/** The backend-neutral container: checks, defaults and wording; the driver creates and deletes. */
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
import { LibcontainerdError, NotImplementedError } from "../types/errors.js";
import type { ContainerInspect } from "../types/inspect.js";
import { type Call, reworded } from "./calls.js";
import type { Core } from "./client.js";
import { validateLabelUpdate } from "./identifiers.js";
import { checkAbsoluteDir, resolveStdio, type Stdio } from "./inputs.js";

/** The runtime a container runs on, as far as the core's rules need it. */
export interface RuntimeSupport {
  name: string;
  /** Whether checkpoint and restore are supported (runc through the v2 shim). */
  checkpoint: boolean;
}

export interface TaskRequest {
  /** `terminal` already defaulted from the spec's process. */
  stdio: Stdio;
  /** An absolute directory whose checkpoint the task is restored from; the runtime supports it. */
  checkpointDir?: string;
}

export abstract class ContainerBase implements Container {
  constructor(
    protected readonly core: Core,
    readonly id: string,
  ) {}

  newTask(opts?: NewTaskOptions): Promise<Task> {
    const restoring = opts?.checkpointDir !== undefined;
    const what = `${restoring ? "restore" : "create"} task for container ${this.id}`;
    return this.core.calls.run(what, opts, async (call) => {
      const request: TaskRequest = { stdio: resolveStdio(opts?.stdio, (await this.spec(call))?.process) };
      if (restoring) {
        request.checkpointDir = checkAbsoluteDir(opts?.checkpointDir, "checkpointDir");
        await this.requireCheckpoints(call);
      }
      return this.createTask(call, request);
    });
  }

  task(opts?: CallOptions): Promise<Task> {
    return this.core.calls.run(`get task of container ${this.id}`, opts, (call) =>
      this.noTaskIsNotFound(call, this.openTask(call, undefined)),
    );
  }

  attachTask(stdio: StdioOptions, opts?: CallOptions): Promise<Task> {
    return this.core.calls.run(`attach to task of container ${this.id}`, opts, async (call) => {
      const wanted = resolveStdio(stdio, undefined);
      return this.noTaskIsNotFound(call, this.openTask(call, wanted));
    });
  }

  info(opts?: CallOptions): Promise<ContainerInfo> {
    return this.core.calls.run(`info of container ${this.id}`, opts, (call) => this.containerInfo(call));
  }

  /** Sets labels (a value) or removes them (`undefined`), leaving the others. */
  setLabels(labels: Record<string, string | undefined>, opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`set labels of container ${this.id}`, opts, async (call) => {
      const update = validateLabelUpdate(labels);
      if (Object.keys(update).length > 0) await this.updateLabels(call, update);
    });
  }

  updateSpec(spec: OciSpec, opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`update spec of container ${this.id}`, opts, (call) =>
      this.replaceSpec(call, spec),
    );
  }

  /** `docker inspect`'s core, from what the backend holds now. */
  inspect(opts?: CallOptions): Promise<ContainerInspect> {
    this.forgetCached();
    return inspectContainer(this, opts);
  }

  /** FailedPreconditionError while a task exists (the driver's check, in the core's words). */
  delete(opts?: CallOptions): Promise<void> {
    return this.core.calls.run(`delete container ${this.id}`, opts, (call) => this.deleteContainer(call));
  }

  /** NotImplementedError, in one wording, when the container's runtime cannot checkpoint or restore. */
  async requireCheckpoints(call: Call): Promise<void> {
    const runtime = await this.runtimeSupport(call);
    if (!runtime.checkpoint) {
      throw new NotImplementedError(
        `${call.what}: runtime ${runtime.name} does not support checkpoint and restore (runc through io.containerd.runc.v2 does)`,
      );
    }
  }

  private async noTaskIsNotFound(call: Call, task: Promise<Task>): Promise<Task> {
    try {
      return await task;
    } catch (err) {
      if (err instanceof LibcontainerdError && err.code === "not_found")
        throw reworded(err, `${call.what}: container ${this.id} has no task`);
      throw err;
    }
  }

  /** The spec the container was created with; undefined when the backend cannot tell (HCS, opened). */
  abstract spec(call: Call): Promise<OciSpec | undefined>;
  abstract runtimeSupport(call: Call): Promise<RuntimeSupport>;
  protected abstract createTask(call: Call, request: TaskRequest): Promise<Task>;
  /** The existing task: without IO (`stdio` undefined), or with its IO reopened. NotFoundError when none. */
  protected abstract openTask(call: Call, stdio: Stdio | undefined): Promise<Task>;
  protected abstract containerInfo(call: Call): Promise<ContainerInfo>;
  protected abstract deleteContainer(call: Call): Promise<void>;
  /** NotImplementedError where the backend keeps no container record. */
  protected abstract updateLabels(call: Call, labels: Record<string, string | undefined>): Promise<void>;
  /** NotImplementedError where the backend keeps no container record. */
  protected abstract replaceSpec(call: Call, spec: OciSpec): Promise<void>;
  /** Drops what this handle cached about the container, so the next look asks the backend. */
  protected forgetCached(): void {}
}
