/**
 * `client.run(options)`: `docker run --rm` as one call. It composes the public API (newContainer,
 * newTask, wait, forceDelete, delete) and guarantees that, whatever happens (an exit, a timeout, an
 * abort, an error at any step), the container, its task and its FIFOs are gone when it returns.
 */
import { randomBytes } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import type { ImageProcess } from "../images/image-spec.js";
import type { PullOptions } from "../images/pull.js";
import type { ImageService } from "../images/unsupported.js";
import { abortError } from "../libcontainerd/call.js";
import type { Client, Container, NewContainerOptions, Task } from "../libcontainerd/types/client.js";
import { InvalidArgumentError, isErrorCode, NotImplementedError } from "../libcontainerd/types/errors.js";
import type { ResourceLimits } from "../libcontainerd/types/resources.js";
import type { NetworkManager } from "../network/manager.js";
import { applyNetwork, networkLabels } from "../network/spec.js";
import type { NetworkAttachment } from "../network/types.js";
import { defaultLinuxSpec, defaultWindowsSpec } from "../oci/defaults.js";
import type { OciMount, OciSpec } from "../oci/spec.js";
import { type CapturedOutput, consumeOutput, type OutputTarget } from "./output.js";
import { ownerLabels } from "./owner.js";
import { deleteExited } from "./remove.js";

/** Per stream, unless `maxOutputBytes` says otherwise: enough for a report, bounded for the caller's heap. */
export const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
/** How long the clean-up after a run may take, independent of the caller's (possibly aborted) signal. */
const CLEANUP_TIMEOUT_MS = 60_000;

export interface RunOptions {
  /** The command and its arguments; with `image`, they replace the image's Cmd (as `docker run IMAGE ARGS…`). */
  args?: string[];
  /** The root filesystem: a host directory (Linux), or the container's volume path (Windows/HCS). */
  rootfs?: string;
  /** An image reference (the client's `images`): its Entrypoint, Cmd, Env, WorkingDir and User, on a fresh snapshot. */
  image?: string;
  /** With `image`: replaces its Entrypoint. */
  entrypoint?: string[];
  /** With `image`: `"missing"` (default) pulls it when it is not there, `"always"`, or `"never"` (NotFoundError). */
  pull?: "missing" | "always" | "never";
  /** With `image`: how to pull (registry credentials, platform, progress). */
  pullOptions?: Omit<PullOptions, "signal">;
  /** Container id; default `run-<random>`. */
  id?: string;
  /** `KEY=value` strings, or an object (added to the image's). */
  env?: string[] | Record<string, string>;
  cwd?: string;
  /** `{ uid, gid }`, or `"uid[:gid]"` (with an image also names from its /etc/passwd and /etc/group). */
  user?: { uid: number; gid: number; additionalGids?: number[] } | string;
  hostname?: string;
  resources?: ResourceLimits;
  readonlyRootfs?: boolean;
  /** tmpfs mounts as docker's `--tmpfs`: path → options (`"size=64m"`), default `noexec,nosuid,nodev`. */
  tmpfs?: Record<string, string>;
  mounts?: OciMount[];
  /**
   * `"none"` (the default: a network namespace with loopback only), `"host"`, or a network's name,
   * which needs `networkManager`. Unlike docker, the default is no network.
   */
  network?: string;
  /** Attaches the container to `network` and detaches it afterwards (src/network). */
  networkManager?: NetworkManager;
  /** Published ports (`"8080:80"`, `"127.0.0.1::80/udp"`), on a named network. */
  ports?: string[];
  /** Nameservers for the container's resolv.conf (with `networkManager`). */
  dns?: string[];
  runtime?: string;
  labels?: Record<string, string>;
  /** What the command reads: a string, bytes, or a stream (stdin is closed at its end). None: EOF at once. */
  stdin?: string | Uint8Array | Readable;
  /** Default `"capture"`. */
  stdout?: OutputTarget;
  /** Default `"capture"`. */
  stderr?: OutputTarget;
  /** Captured bytes kept per stream; the rest is read and dropped (`truncated`). Default 10 MiB. */
  maxOutputBytes?: number;
  /** Kill (SIGKILL) the container after this long; the result then says `timedOut`. */
  timeoutMs?: number;
  /** Aborting kills the container, removes it, and rejects with CanceledError. */
  signal?: AbortSignal;
  /** Run a small init (tini) as PID 1: signals reach the command, zombies are reaped. */
  init?: boolean | string;
  /** Last word on the spec, after everything above was applied. */
  customizeSpec?: (spec: OciSpec) => OciSpec;
}

/** What `run` needs of a client: the common interface, and `images` when an image is asked for. */
export type RunClient = Client & { readonly images?: ImageService };

export interface RunResult {
  id: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** A captured stream was cut at `maxOutputBytes`. */
  truncated: { stdout: boolean; stderr: boolean };
  /** The kernel killed a process of the container for want of memory (undefined: the backend cannot tell). */
  oomKilled: boolean | undefined;
  /** `timeoutMs` passed and the container was killed. */
  timedOut: boolean;
  /** From just before the start to the exit. */
  durationMs: number;
}

const KEY_VALUE = /^[^=]+=/;

function envList(env: RunOptions["env"]): string[] {
  if (env === undefined) return [];
  const list = Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  for (const entry of list)
    if (typeof entry !== "string" || !KEY_VALUE.test(entry))
      throw new InvalidArgumentError(`run: env entry ${JSON.stringify(entry)} is not KEY=value`);
  return list;
}

function parseUser(
  user: RunOptions["user"],
): { uid: number; gid: number; additionalGids?: number[] } | undefined {
  if (user === undefined || typeof user === "object") return user;
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match)
    throw new InvalidArgumentError(`run: user ${JSON.stringify(user)} must be "uid" or "uid:gid" (numbers)`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

function tmpfsMounts(tmpfs: RunOptions["tmpfs"]): OciMount[] {
  return Object.entries(tmpfs ?? {}).map(([destination, options]) => {
    if (!destination.startsWith("/"))
      throw new InvalidArgumentError(`run: tmpfs ${JSON.stringify(destination)} must be an absolute path`);
    const given = options ? options.split(",").filter(Boolean) : [];
    return {
      destination,
      type: "tmpfs",
      source: "tmpfs",
      options: given.length > 0 ? given : ["noexec", "nosuid", "nodev"],
    };
  });
}

/** The spec `run` sends: docker's defaults plus the options (and the image's process), for the client's platform. */
export function runSpec(client: Client, id: string, options: RunOptions, image?: ImageProcess): OciSpec {
  const args = image?.args ?? options.args;
  if (!Array.isArray(args) || args.length === 0)
    throw new InvalidArgumentError("run: args must be a non-empty array (or come from an image)");
  const network = options.network ?? "none";
  const env = image ? image.env : envList(options.env);
  const user = image ? image.user : parseUser(options.user);
  const cwd = image ? image.cwd : options.cwd;
  const mounts = [...tmpfsMounts(options.tmpfs), ...(options.mounts ?? [])];
  let spec: OciSpec;
  if (client.backend === "local") {
    // Never silently dropped: what a Windows container cannot honour is refused.
    for (const linuxOnly of ["init", "readonlyRootfs", "tmpfs", "user"] as const)
      if (options[linuxOnly] !== undefined && options[linuxOnly] !== false)
        throw new NotImplementedError(`run: ${linuxOnly} is for Linux containers (containerd), not HCS`);
    spec = defaultWindowsSpec({
      args,
      env,
      mounts,
      ...(cwd !== undefined ? { cwd } : {}),
      ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
      ...(options.resources !== undefined ? { resources: options.resources } : {}),
    });
    if (options.rootfs !== undefined) spec.root = { path: options.rootfs };
  } else {
    // With an image the snapshot is mounted at the bundle's `rootfs`.
    const rootfs = image ? "rootfs" : options.rootfs;
    if (rootfs === undefined) throw new InvalidArgumentError("run: rootfs or image is required");
    spec = defaultLinuxSpec({
      args,
      rootfs,
      env,
      mounts,
      readonlyRootfs: options.readonlyRootfs ?? false,
      hostNetwork: network === "host",
      cgroupsPath: `/${client.namespace}/${id}`,
      ...(user ? { user } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
      ...(options.resources !== undefined ? { resources: options.resources } : {}),
      ...(options.init !== undefined ? { init: options.init } : {}),
    });
  }
  return options.customizeSpec ? options.customizeSpec(spec) : spec;
}

function checkOptions(options: RunOptions): number {
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isSafeInteger(max) || max < 0)
    throw new InvalidArgumentError(`run: maxOutputBytes must be a whole number of bytes, not ${String(max)}`);
  const timeout = options.timeoutMs;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0))
    throw new InvalidArgumentError(`run: timeoutMs must be a positive number, not ${String(timeout)}`);
  return max;
}

/** Runs a command in a new container and removes it, whatever happens. See `RunOptions`. */
export async function run(client: RunClient, options: RunOptions): Promise<RunResult> {
  const maxBytes = checkOptions(options);
  const id = options.id ?? `run-${randomBytes(6).toString("hex")}`;
  const what = `run ${id}`;
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal, what);
  // What exists before the container does, undone last-made first whatever happens.
  const undo: (() => Promise<void>)[] = [];
  let container: Container | undefined;
  const made: MadeTask = { task: undefined, deleted: false };
  try {
    const create: NewContainerOptions = {
      labels: { ...options.labels, ...ownerLabels() },
      ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
    };
    let image: ImageProcess | undefined;
    if (options.image !== undefined) {
      const images = imageService(client);
      const prepared = await prepareImage(images, id, options.image, options);
      undo.push(() =>
        images.removeSnapshot(prepared.snapshot.snapshotter, prepared.snapshot.key, cleanupCall()),
      );
      image = prepared.process;
      create.image = options.image;
      create.snapshot = prepared.snapshot;
    }
    let spec = runSpec(client, id, options, image);
    const attachment = await attachNetwork(client, id, options);
    if (attachment) {
      const manager = options.networkManager as NetworkManager;
      undo.push(() => manager.detach(client.namespace, id, cleanupCall()));
      spec = applyNetwork(spec, attachment);
      create.labels = { ...create.labels, ...networkLabels(attachment) };
    }
    if (signal?.aborted) throw abortError(signal, what);
    container = await client.newContainer(id, spec, create);
    return await runTask(container, options, maxBytes, what, made);
  } finally {
    try {
      if (container) await cleanUp(container, made);
    } finally {
      for (const step of undo.reverse()) await step();
    }
  }
}

function imageService(client: RunClient): ImageService {
  if (!client.images)
    throw new NotImplementedError(
      "run: image needs a client with an image service (createClient's); use rootfs",
    );
  return client.images;
}

async function prepareImage(
  images: ImageService,
  id: string,
  ref: string,
  options: RunOptions,
): Promise<{ process: ImageProcess; snapshot: { snapshotter: string; key: string } }> {
  const call = options.signal ? { signal: options.signal } : {};
  const policy = options.pull ?? "missing";
  const present =
    policy === "always"
      ? false
      : await images.get(ref, call).then(
          () => true,
          (err: unknown) => {
            if (isErrorCode(err, "not_found") && policy === "missing") return false;
            throw err;
          },
        );
  if (!present) await images.pull(ref, { ...options.pullOptions, ...call });
  const env = options.env === undefined ? undefined : envList(options.env);
  const user = typeof options.user === "object" ? `${options.user.uid}:${options.user.gid}` : options.user;
  const process = await images.process(ref, {
    ...(options.args !== undefined ? { args: options.args } : {}),
    ...(options.entrypoint !== undefined ? { entrypoint: options.entrypoint } : {}),
    ...(env !== undefined ? { env } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(user !== undefined ? { user } : {}),
  });
  if (typeof options.user === "object") process.user = { additionalGids: [], ...options.user };
  // Not given the caller's signal: a prepare cut short on our side may still finish in containerd,
  // and the snapshot it made would be nobody's. The abort is looked at once it is ours to remove.
  const { snapshotter, key } = await images.prepareSnapshot(ref, id);
  return { process, snapshot: { snapshotter, key } };
}

/** A named network (or `host` with the manager's files) is attached before the container exists. */
async function attachNetwork(
  client: Client,
  id: string,
  options: RunOptions,
): Promise<NetworkAttachment | undefined> {
  const network = options.network ?? "none";
  const manager = options.networkManager;
  if (!manager) {
    if (network !== "none" && network !== "host")
      throw new InvalidArgumentError(`run: network ${JSON.stringify(network)} needs options.networkManager`);
    if ((options.ports?.length ?? 0) > 0 || (options.dns?.length ?? 0) > 0)
      throw new InvalidArgumentError("run: ports and dns need options.networkManager");
    return undefined;
  }
  if (client.backend === "local")
    throw new NotImplementedError("run: networks are for containerd's Linux containers");
  return manager.attach({
    namespace: client.namespace,
    containerId: id,
    network,
    ...(options.ports ? { ports: options.ports } : {}),
    ...(options.dns ? { dns: options.dns } : {}),
    ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The task `run` made, for the clean-up: none yet, made, or already deleted after its exit. */
interface MadeTask {
  task: Task | undefined;
  deleted: boolean;
}

/** Creates, starts, feeds and waits for the task, then deletes it; whatever fails, `made` says what to remove. */
async function runTask(
  container: Container,
  options: RunOptions,
  maxBytes: number,
  what: string,
  made: MadeTask,
): Promise<RunResult> {
  const signal = options.signal;
  // Not given the caller's signal: a create cut short on our side may still finish in containerd,
  // and what it made would be nobody's. An abort is looked at between the steps instead.
  const task = await container.newTask({
    stdio: { stdin: options.stdin !== undefined, stdout: true, stderr: true },
  });
  made.task = task;
  const output = Promise.all([
    consumeOutput(task.stdout, options.stdout ?? "capture", maxBytes, process.stdout),
    consumeOutput(task.stderr, options.stderr ?? "capture", maxBytes, process.stderr),
  ]);
  const exited = task.wait();
  exited.catch(() => {});
  if (signal?.aborted) throw abortError(signal, what);
  const started = performance.now();
  await task.start();
  const stopper = new Stopper(task, options.timeoutMs, signal);
  void feedStdin(task, options.stdin);
  let status: Awaited<typeof exited>;
  try {
    status = await exited;
  } finally {
    stopper.done();
  }
  const durationMs = performance.now() - started;
  const [out, err] = await output;
  // Exited: a plain delete is all it needs (the forced clean-up would kill and wait first).
  await deleteExited(container, task, cleanupCall());
  made.deleted = true;
  if (stopper.aborted && signal) throw abortError(signal, what);
  return result(container.id, status.exitCode, status.oomKilled, out, err, stopper.timedOut, durationMs);
}

const cleanupCall = () => ({ timeoutMs: CLEANUP_TIMEOUT_MS });

function result(
  id: string,
  exitCode: number,
  oomKilled: boolean | undefined,
  out: CapturedOutput,
  err: CapturedOutput,
  timedOut: boolean,
  durationMs: number,
): RunResult {
  return {
    id,
    exitCode,
    stdout: out.text,
    stderr: err.text,
    truncated: { stdout: out.truncated, stderr: err.truncated },
    oomKilled,
    timedOut,
    durationMs,
  };
}

/** Kills the container (SIGKILL) when the deadline passes or the caller aborts. */
class Stopper {
  timedOut = false;
  aborted = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => {
    this.aborted = true;
    this.kill();
  };

  constructor(
    private readonly task: Task,
    timeoutMs: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (timeoutMs !== undefined)
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.kill();
      }, timeoutMs);
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  private kill(): void {
    this.task.kill("SIGKILL").catch(() => {
      // Already gone: the exit is what the kill wanted. Anything else, the forced clean-up retries.
    });
  }

  done(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

/**
 * Writes the input, then closes the process's stdin; a source that fails midway ends the input there
 * (the process would wait for more for good). A process that exits without reading it all is fine:
 * once its stdin closes the source is left (and so destroyed), not waited on for a drain never to come.
 */
async function feedStdin(task: Task, input: RunOptions["stdin"]): Promise<void> {
  const stdin: Writable | null = task.stdin;
  if (input === undefined || !stdin) return;
  stdin.on("error", () => {});
  const source = input instanceof Readable ? input : Readable.from([Buffer.from(input)]);
  // Whenever the process's stdin closes: also while the loop waits for the source's next chunk.
  // Destroyed without an error (the loop's own clean-up would give it an AbortError to emit).
  const leave = () => source.destroy();
  stdin.once("close", leave);
  try {
    for await (const chunk of source) {
      if (!stdin.destroyed && stdin.write(chunk)) continue;
      if (!stdin.destroyed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off("drain", done);
            stdin.off("close", done);
            resolve();
          };
          stdin.once("drain", done);
          stdin.once("close", done);
        });
      }
      if (stdin.destroyed) {
        source.destroy();
        break;
      }
    }
  } catch {
    // The process exited (EPIPE) or the source failed: the exit status tells the caller the rest.
  } finally {
    stdin.off("close", leave);
  }
  await task.closeStdin().catch(() => {
    // Exited already.
  });
}

async function cleanUp(container: Container, made: MadeTask): Promise<void> {
  const opts = cleanupCall();
  if (!made.deleted) {
    // A newTask that failed on our side may have created the task anyway: look for it.
    const existing = made.task ?? (await container.task(opts).catch(() => undefined));
    if (existing) await existing.forceDelete(opts).catch(ignoreNotFound);
  }
  await container.delete(opts).catch(ignoreNotFound);
}

function ignoreNotFound(err: unknown): void {
  if (!isErrorCode(err, "not_found")) throw err;
}
