import type { Readable, Writable } from "node:stream";
import type { ReapOptions } from "../../run/owner.js";
import type { RemoveContainerOptions } from "../../run/remove.js";
import type { RunOptions, RunResult } from "../../run/run.js";
import type { Backend, LibcontainerdEvent } from "./events.js";
import type { ContainerInspect } from "./inspect.js";
import type { OciProcess, OciSpec } from "./oci-spec.js";
import type { ResourceUpdate } from "./resources.js";
import type { Stats } from "./stats.js";

/** Every async call takes these. `timeoutMs` becomes a DeadlineExceededError, `signal` a CanceledError. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * While the backend is unreachable (containerd restarting), wait for it until `signal` or
   * `timeoutMs` instead of failing at once with UnavailableError.
   */
  waitForReady?: boolean;
}

/**
 * Which streams to create; they appear on the Process. With `terminal`, stdout carries both streams.
 * With `log`, stdout and stderr go to a log file instead (no streams): see `LogOptions`.
 */
export interface StdioOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  terminal?: boolean;
  log?: LogOptions;
}

/**
 * A log that outlives the caller: the shim runs `ctrd-logger`, which writes Docker json-file records
 * to `path` (absolute; its directory is created) and rotates it: at most `maxFiles` files (default
 * 1) of at most `maxSize` bytes (default: unlimited). Read it with `readLogs`. Excludes stdin and
 * the stdout/stderr streams.
 */
export interface LogOptions {
  path: string;
  maxSize?: number;
  maxFiles?: number;
}

export type TaskStatus = "created" | "running" | "paused" | "pausing" | "stopped" | "unknown";

export interface ExitStatus {
  exitCode: number;
  exitedAt: Date;
  /**
   * The init process's exit only: whether the kernel killed a process of the container for want
   * of memory (docker's `OOMKilled`). Read from the cgroup's oom_kill counter after the exit, and
   * from containerd's OOM event; undefined where the backend cannot tell (HCS, exec processes).
   */
  oomKilled?: boolean;
}

export interface ProcessInfo {
  pid: number;
  /** The exec id when the process belongs to an exec, where the backend knows it. */
  execId?: string;
}

export interface ContainerInfo {
  id: string;
  /**
   * The runtime (a containerd shim name, or the local backend's) and its options in daemon.json's
   * terms (`{ BinaryName, SystemdCgroup, … }`), where the backend can read them.
   */
  runtime: { name: string; options?: Record<string, unknown> };
  labels: Record<string, string>;
  /** The image it was created from, if any. */
  image?: string;
  createdAt?: Date;
  /** The OCI spec the container was created with, where the backend keeps it. */
  spec?: OciSpec;
}

export interface NewContainerOptions extends CallOptions {
  /** A runtime name (`runc`, `io.containerd.runtime.v1.linux`, a configured name, or a shim name). */
  runtime?: string;
  labels?: Record<string, string>;
  /**
   * Remove a container with the same id first (killing its task), as `docker run --replace`
   * would: a rerun after a crash then never fails with AlreadyExistsError.
   */
  replace?: boolean;
  /** The image the container runs, recorded on containerd's container record (remote backend). */
  image?: string;
  /**
   * The container's rootfs is this snapshot (e.g. from `client.images.prepareSnapshot`): its mounts
   * go to the task, `spec.root.path` is then relative (`rootfs`), and deleting the container removes
   * the snapshot. Remote backend only.
   */
  snapshot?: { snapshotter: string; key: string };
}

export interface NewTaskOptions extends CallOptions {
  stdio?: StdioOptions;
  /** Restore from a checkpoint written by `Task.checkpoint`. */
  checkpointDir?: string;
}

export interface ExecOptions extends CallOptions {
  stdio?: StdioOptions;
}

export interface CheckpointOptions extends CallOptions {
  /** Stop the task after checkpointing it. */
  exit?: boolean;
}

export interface EventsOptions {
  signal?: AbortSignal;
}

export interface Client {
  /** What this client talks to: `remote` (containerd) or `local` (HCS). */
  readonly backend: "remote" | "local";
  readonly namespace: string;
  version(opts?: CallOptions): Promise<{ version: string; revision: string }>;
  newContainer(id: string, spec: OciSpec, opts?: NewContainerOptions): Promise<Container>;
  /** NotFoundError when there is no such container. */
  loadContainer(id: string, opts?: CallOptions): Promise<Container>;
  listContainers(opts?: CallOptions): Promise<ContainerInfo[]>;
  /** Task events of this client's namespace, as they happen. Ends when `signal` aborts or the client closes. */
  events(opts?: EventsOptions): AsyncIterable<LibcontainerdEvent>;
  /** The moby-style callback: serial per container, parallel across containers. */
  setBackend(backend: Backend): void;
  /** `docker run --rm` in one call: limits, timeout, captured output, OOM; nothing is left behind. */
  run(options: RunOptions): Promise<RunResult>;
  /** `docker rm [-f]`: the container and its task. NotFoundError when absent. */
  removeContainer(id: string, opts?: RemoveContainerOptions): Promise<void>;
  /** Removes the containers whose owner process (label `io.ctrd.owner.pid`) has died; returns their ids. */
  reap(opts?: ReapOptions): Promise<string[]>;
  close(): Promise<void>;
}

export interface Container {
  readonly id: string;
  /** Creates the task (init process) without starting it. */
  newTask(opts?: NewTaskOptions): Promise<Task>;
  /** The existing task, without IO. NotFoundError when there is none. */
  task(opts?: CallOptions): Promise<Task>;
  /** The existing task with its IO reopened (for a new client after a restart). */
  attachTask(stdio: StdioOptions, opts?: CallOptions): Promise<Task>;
  info(opts?: CallOptions): Promise<ContainerInfo>;
  /**
   * Sets (or, with `undefined`, removes) labels on the container's record, leaving the others.
   * NotImplementedError where the backend keeps no record (local).
   */
  setLabels(labels: Record<string, string | undefined>, opts?: CallOptions): Promise<void>;
  /**
   * Replaces the spec the container's next task is created with (a running task keeps its own): what
   * is only known at start, such as the namespaces of another container's process to join.
   * NotImplementedError where the backend keeps no record (local).
   */
  updateSpec(spec: OciSpec, opts?: CallOptions): Promise<void>;
  /** `docker inspect`'s core: config, live state, and the exit remembered after the task is gone. */
  inspect(opts?: CallOptions): Promise<ContainerInspect>;
  /** Removes the container and its bundle/FIFO directory. FailedPreconditionError while a task exists. */
  delete(opts?: CallOptions): Promise<void>;
}

export interface Process {
  readonly id: string;
  readonly containerId: string;
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** A signal name (`SIGTERM`), number (15) or name without prefix (`TERM`). */
  kill(signal: NodeJS.Signals | string | number, opts?: CallOptions): Promise<void>;
  resize(width: number, height: number, opts?: CallOptions): Promise<void>;
  closeStdin(opts?: CallOptions): Promise<void>;
  /** Resolves with the exit status. Call it before `start()` so a fast exit is never missed. */
  wait(opts?: CallOptions): Promise<ExitStatus>;
  /** Removes the stopped process and returns its exit status. FailedPreconditionError while it runs. */
  delete(opts?: CallOptions): Promise<ExitStatus>;
}

export interface Task extends Process {
  start(opts?: CallOptions): Promise<void>;
  status(opts?: CallOptions): Promise<TaskStatus>;
  /** Creates and starts an exec process. */
  exec(execId: string, process: OciProcess, opts?: ExecOptions): Promise<Process>;
  pause(opts?: CallOptions): Promise<void>;
  resume(opts?: CallOptions): Promise<void>;
  pids(opts?: CallOptions): Promise<ProcessInfo[]>;
  stats(opts?: CallOptions): Promise<Stats>;
  /** Docker-style limits (`{ memory: "128m", cpus: 1 }`) or raw OCI resources (`{ linux }` / `{ windows }`). */
  updateResources(resources: ResourceUpdate, opts?: CallOptions): Promise<void>;
  checkpoint(dir: string, opts?: CheckpointOptions): Promise<void>;
  /** Kills (SIGKILL) whatever runs, waits for the exit, and deletes the task. */
  forceDelete(opts?: CallOptions): Promise<void>;
}
