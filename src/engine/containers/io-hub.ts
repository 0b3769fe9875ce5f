import { once } from "node:events";
import type { Readable } from "node:stream";
import type { Process } from "../../libcontainerd/types/client.js";
import type { LogWriter } from "./log-file.js";

export interface OutputListener {
  output(stream: "stdout" | "stderr", chunk: Buffer): void;
  /** The process this output came from ended (its streams closed, or the grace after its exit passed). */
  end(): void;
}

/** How long output may still arrive after the exit (a background child holding the pipe open). */
const DRAIN_GRACE_MS = 1_000;
const MAX_PENDING_STDIN = 1024 * 1024;

/**
 * The output of a container's running process, copied to its log and to whoever is attached or
 * following, and its stdin for attached clients. One per container; reconnected at every start.
 */
export class IoHub {
  private readonly listeners = new Set<OutputListener>();
  private process: Process | undefined;
  private outputs: Promise<void>[] = [];
  /** Input an attached client sent before the process existed (`docker run -i` attaches before start). */
  private pendingStdin: Buffer[] = [];
  private pendingBytes = 0;
  private stdinClosed = false;
  private started = false;
  /** Attached clients holding their input until stdin can take more (see stdinWritable). */
  private stdinWaiters: (() => void)[] = [];

  constructor(private readonly log: LogWriter) {}

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts copying a (new) process's output. */
  connect(process: Process): void {
    this.process = process;
    this.started = false;
    this.outputs = [this.copy(process.stdout, "stdout"), this.copy(process.stderr, "stderr")];
    this.pendingBytes = 0;
    for (const chunk of this.pendingStdin.splice(0)) this.writeStdin(chunk);
    this.releaseStdinWaiters();
  }

  private releaseStdinWaiters(): void {
    for (const resume of this.stdinWaiters.splice(0)) resume();
  }

  /** The process runs: a stdin end that came before can now be passed on. */
  async markStarted(): Promise<void> {
    this.started = true;
    if (this.stdinClosed) {
      this.stdinClosed = false;
      await this.closeStdin();
    }
  }

  private copy(source: Readable | null, stream: "stdout" | "stderr"): Promise<void> {
    if (!source) return Promise.resolve();
    source.on("data", (chunk: Buffer) => {
      try {
        this.log.write(stream, chunk);
      } catch {
        // A full disk must not stop the container or its attached clients.
      }
      for (const listener of this.listeners) listener.output(stream, chunk);
    });
    return Promise.race([once(source, "end"), once(source, "close")]).then(
      () => {},
      () => {},
    );
  }

  subscribe(listener: OutputListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Writes to the process's stdin, if it has one open, or holds the input until the process exists.
   * False: the caller should send no more until stdinWritable() resolves (none of it is dropped).
   */
  writeStdin(chunk: Buffer): boolean {
    if (!this.process) {
      this.pendingStdin.push(chunk);
      this.pendingBytes += chunk.length;
      return this.pendingBytes < MAX_PENDING_STDIN;
    }
    const stdin = this.process.stdin;
    if (stdin && !stdin.destroyed && !stdin.writableEnded) return stdin.write(chunk);
    return true;
  }

  /** Resolves when stdin takes more: the process exists and its stdin has drained (or the hub ends). */
  stdinWritable(): Promise<void> {
    const stdin = this.process?.stdin;
    if (this.process && !stdin?.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      if (!stdin) {
        this.stdinWaiters.push(resolve);
        return;
      }
      const done = (): void => {
        stdin.off("drain", done);
        stdin.off("close", done);
        resolve();
      };
      stdin.once("drain", done);
      stdin.once("close", done);
    });
  }

  async closeStdin(): Promise<void> {
    if (!this.process || !this.started) {
      this.stdinClosed = true;
      return;
    }
    await this.process.closeStdin().catch(() => {});
  }

  async resize(width: number, height: number): Promise<void> {
    await this.process?.resize(width, height);
  }

  /** After the exit: the rest of the output (bounded), then every listener is told the process ended. */
  async finish(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DRAIN_GRACE_MS);
    });
    await Promise.race([Promise.all(this.outputs), grace]);
    clearTimeout(timer);
    for (const stream of [this.process?.stdout, this.process?.stderr]) stream?.removeAllListeners("data");
    this.process = undefined;
    this.started = false;
    this.stdinClosed = false;
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener.end();
  }

  /** Ends every listener without a process (the container was removed). */
  close(): void {
    this.releaseStdinWaiters();
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener.end();
    this.log.close();
  }
}
