import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Process } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { isObject } from "./containers/config.js";
import { type ContainerManager, startError } from "./containers/manager.js";
import { outputWriter } from "./containers/routes.js";
import { mergeEnv } from "./containers/spec.js";
import type { ContainerRecord, ContainerStore } from "./containers/store.js";
import { badRequest, conflict, EngineError, notFound } from "./errors.js";
import { type Exchange, queryInt } from "./http.js";
import type { Router } from "./router.js";
import { RAW_STREAM } from "./stdcopy.js";

/**
 * The exec's environment when it is not the container's as it is: its Env over the container's, and with
 * a TTY a TERM (dockerd's CreateDaemonEnvironment gives a terminal exec TERM=xterm, so `docker exec -it
 * C top` runs in a container that has none).
 */
function execEnv(record: ContainerRecord, entry: Pick<ExecEntry, "env" | "tty">): { env?: string[] } {
  // A record from before ProcessEnv was kept: its process's environment is not known to add to.
  if (record.ProcessEnv === undefined) return entry.env ? { env: mergeEnv([], entry.env) } : {};
  const base = record.ProcessEnv;
  const term = entry.tty && !base.some((variable) => variable.startsWith("TERM=")) ? ["TERM=xterm"] : [];
  if (!entry.env && term.length === 0) return {};
  return { env: mergeEnv([...base, ...term], entry.env ?? []) };
}

interface ExecEntry {
  id: string;
  containerId: string;
  cmd: string[];
  env: string[] | null;
  user: string;
  workingDir: string;
  tty: boolean;
  privileged: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  detachKeys: string;
  /** API 1.42's ConsoleSize, [height, width]: the terminal's size before the command runs. */
  consoleSize?: { height: number; width: number };
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  process?: Process;
  finishedAt?: number;
}

/** Exec entries of exited processes are forgotten after this, or when their container is gone. */
const KEEP_FINISHED_MS = 10 * 60_000;
const DRAIN_GRACE_MS = 1_000;

function strings(value: unknown, what: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value;
  throw badRequest(`invalid ${what}: want a list of strings`);
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const flag = (value: unknown): boolean => value === true;

/** Exec: create, start (detached or attached, TTY or not), resize, inspect, as dockerd serves them. */
export class ExecService {
  private readonly entries = new Map<string, ExecEntry>();

  constructor(
    private readonly manager: ContainerManager,
    private readonly store: ContainerStore,
    private readonly logger: Logger,
  ) {}

  idsOf(containerId: string): string[] {
    return [...this.entries.values()]
      .filter((entry) => entry.containerId === containerId)
      .map((entry) => entry.id);
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, entry] of this.entries) {
      const gone = !this.store.find(entry.containerId);
      if (gone || (entry.finishedAt !== undefined && now - entry.finishedAt > KEEP_FINISHED_MS))
        this.entries.delete(id);
    }
  }

  private get(id: string): ExecEntry {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(`No such exec instance: ${id}`);
    return entry;
  }

  create(record: ContainerRecord, body: unknown): string {
    if (!isObject(body)) throw badRequest("the request body must be a JSON object");
    if (!this.manager.task(record) || record.State.Status === "restarting")
      throw conflict(`Container ${record.Id} is not running`);
    if (record.State.Status === "paused")
      throw conflict(`Container ${record.Id} is paused, unpause the container before exec`);
    const cmd = strings(body.Cmd, "Cmd");
    if (!cmd || cmd.length === 0) throw badRequest("No exec command specified");
    this.prune();
    const entry: ExecEntry = {
      id: randomBytes(32).toString("hex"),
      containerId: record.Id,
      cmd,
      env: strings(body.Env, "Env"),
      user: text(body.User),
      workingDir: text(body.WorkingDir),
      tty: flag(body.Tty),
      privileged: flag(body.Privileged),
      attachStdin: flag(body.AttachStdin),
      attachStdout: flag(body.AttachStdout),
      attachStderr: flag(body.AttachStderr),
      detachKeys: text(body.DetachKeys),
      ...consoleSizeOf(body.ConsoleSize),
      running: false,
      started: false,
      exitCode: null,
      pid: 0,
    };
    this.entries.set(entry.id, entry);
    this.manager.emit(record, `exec_create: ${cmd.join(" ")}`, { execID: entry.id });
    return entry.id;
  }

  async start(exchange: Exchange): Promise<void> {
    const entry = this.get(exchange.params.id ?? "");
    const body = await exchange.json();
    const detach = isObject(body) && body.Detach === true;
    // Start may give the size too (ExecStartCheck.ConsoleSize), over create's.
    if (isObject(body)) Object.assign(entry, consoleSizeOf(body.ConsoleSize));
    if (entry.started) throw conflict(`Error: Exec command ${entry.id} has already run`);
    const record = this.store.get(entry.containerId);
    const task = this.manager.task(record);
    if (!task) throw conflict(`Container ${record.Id} is not running`);
    entry.started = true;
    const stdin = entry.attachStdin && !detach;
    // As dockerd: an attached client has the connection before the process starts, and a process
    // that cannot start (no such command, no such user) is told on it, with exit code 126.
    const hijacked = detach ? undefined : exchange.hijack(RAW_STREAM);
    // Held until the process has a stdin to pass it to (the client may send it all, and its end, at once).
    hijacked?.input.pause();
    let process: Process;
    try {
      const user = await this.manager.userFor(record, entry.user, { signal: exchange.signal });
      process = await task.exec(
        entry.id,
        {
          args: entry.cmd,
          user,
          cwd: entry.workingDir || "",
          terminal: entry.tty,
          // runc sizes the terminal before the command runs; a resize after start comes too late for
          // one that asks at once (stty size).
          ...(entry.tty && entry.consoleSize ? { consoleSize: entry.consoleSize } : {}),
          ...execEnv(record, entry),
        },
        {
          signal: exchange.signal,
          stdio: detach
            ? {}
            : { stdin, stdout: entry.attachStdout, stderr: entry.attachStderr, terminal: entry.tty },
        },
      );
    } catch (err) {
      entry.exitCode = 126;
      entry.finishedAt = Date.now();
      const error = err instanceof EngineError ? err : startError(err).error;
      if (!hijacked) throw error;
      outputWriter(hijacked.output, entry.tty)("stdout", Buffer.from(`${error.message}\r\n`));
      hijacked.input.resume();
      hijacked.end();
      return;
    }
    entry.process = process;
    entry.pid = process.pid;
    entry.running = true;
    this.manager.emit(record, `exec_start: ${entry.cmd.join(" ")}`, { execID: entry.id });
    const exited = process.wait().then(
      (status) => status.exitCode,
      (err: unknown) => {
        this.logger.warn({ err, exec: entry.id }, "lost track of an exec process");
        return 126;
      },
    );
    if (!hijacked) {
      // Detached.
      void this.finish(entry, record, process, exited, []);
      exchange.send(200, null);
      return;
    }
    const write = outputWriter(hijacked.output, entry.tty);
    const outputs = [
      copy(process.stdout, (chunk) => write("stdout", chunk)),
      copy(process.stderr, (chunk) => write("stderr", chunk)),
    ];
    if (stdin && process.stdin) forwardStdin(hijacked.input, process.stdin, () => process.closeStdin());
    hijacked.input.resume();
    await this.finish(entry, record, process, exited, outputs);
    hijacked.end();
  }

  private async finish(
    entry: ExecEntry,
    record: ContainerRecord,
    process: Process,
    exited: Promise<number>,
    outputs: Promise<void>[],
  ): Promise<void> {
    const exitCode = await exited;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(outputs),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DRAIN_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    await process.delete().catch((err: unknown) => {
      if (!isErrorCode(err, "not_found"))
        this.logger.debug({ err, exec: entry.id }, "could not delete the exec process");
    });
    entry.exitCode = exitCode;
    entry.running = false;
    entry.finishedAt = Date.now();
    entry.process = undefined;
    this.manager.emit(record, "exec_die", { execID: entry.id, exitCode: String(exitCode) });
  }

  async resize(exchange: Exchange): Promise<void> {
    const entry = this.get(exchange.params.id ?? "");
    const height = queryInt(exchange.query, "h") ?? 0;
    const width = queryInt(exchange.query, "w") ?? 0;
    if (!entry.process) throw conflict(`Exec ${entry.id} is not running`);
    await entry.process.resize(width, height, { signal: exchange.signal });
    exchange.send(200, null);
  }

  inspect(id: string): Record<string, unknown> {
    const entry = this.get(id);
    return {
      ID: entry.id,
      Running: entry.running,
      ExitCode: entry.exitCode,
      ProcessConfig: {
        tty: entry.tty,
        entrypoint: entry.cmd[0],
        arguments: entry.cmd.slice(1),
        privileged: entry.privileged,
        ...(entry.user ? { user: entry.user } : {}),
      },
      OpenStdin: entry.attachStdin,
      OpenStderr: entry.attachStderr,
      OpenStdout: entry.attachStdout,
      CanRemove: false,
      ContainerID: entry.containerId,
      DetachKeys: entry.detachKeys,
      Pid: entry.pid,
    };
  }
}

/**
 * The client's input into the process's stdin, with backpressure: while the stdin pipe is full (the
 * process reads slower than the client sends), the connection is paused, so the kernel's buffers
 * push back on the client instead of the engine holding everything it sent. Once the process's
 * stdin is closed, the rest is read and dropped (the client is not left blocked on a write).
 */
export function forwardStdin(input: Readable, target: Writable, closeStdin: () => Promise<void>): void {
  const resume = (): void => {
    target.off("drain", resume);
    target.off("close", resume);
    input.resume();
  };
  input.on("data", (chunk: Buffer) => {
    if (target.destroyed || target.writableEnded) return;
    if (target.write(chunk)) return;
    input.pause();
    target.once("drain", resume);
    target.once("close", resume);
  });
  input.once("end", () => void closeStdin().catch(() => {}));
}

async function copy(source: Readable | null, write: (chunk: Buffer) => void): Promise<void> {
  if (!source) return;
  source.on("data", write);
  await Promise.race([once(source, "end"), once(source, "close")]).catch(() => {});
}

export function execRoutes(router: Router, service: ExecService, store: ContainerStore): void {
  router.add("POST", "/containers/{id}/exec", async (exchange) => {
    const record = store.get(exchange.params.id ?? "");
    const id = service.create(record, await exchange.json());
    exchange.send(201, { Id: id });
  });
  router.add("POST", "/exec/{id}/start", (exchange) => service.start(exchange));
  router.add("POST", "/exec/{id}/resize", (exchange) => service.resize(exchange));
  router.add("GET", "/exec/{id}/json", (exchange) =>
    exchange.send(200, service.inspect(exchange.params.id ?? "")),
  );
}

/** `ConsoleSize: [height, width]` (null or absent: none), as moby decodes its *[2]uint. */
function consoleSizeOf(value: unknown): { consoleSize?: { height: number; width: number } } {
  if (value === undefined || value === null) return {};
  const valid = (n: unknown): n is number =>
    typeof n === "number" && Number.isInteger(n) && n >= 0 && n < 2 ** 32;
  if (!Array.isArray(value) || value.length !== 2 || !value.every(valid))
    throw badRequest(`invalid ConsoleSize ${JSON.stringify(value)}: want [height, width]`);
  const [height, width] = value as [number, number];
  return { consoleSize: { height, width } };
}
