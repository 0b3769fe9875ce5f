import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "pino";
import type { Process } from "../libcontainerd/types/client.js";
import { onBrokenPipe } from "./output.js";

export interface AttachOptions {
  /** Forward our stdin; its end closes the process's stdin. */
  stdin: boolean;
  /** The process has a terminal: put ours in raw mode and forward its size. */
  tty: boolean;
  logger: Logger;
  /** Our stdout or stderr was closed by its reader; called once. */
  onOutputGone?: () => void;
  /** Where the output is also kept (the container's log), whether or not anyone reads ours. */
  log?: { stdout: Writable; stderr: Writable };
}

/** How long output may keep flowing after the process exited (a background child holding the FIFO). */
const DRAIN_GRACE_MS = 1_000;

/** Our stdio wired to a container process's: output copied out, input in, terminal size kept in sync. */
export class Attachment {
  private readonly outputs: Promise<void>[] = [];
  private rawMode = false;
  /** True once a reader of our output went away. */
  outputGone = false;
  private readonly onResize = (): void => {
    void this.resize("resizing the terminal");
  };
  /** The resizes sent so far, one after another (see `resize`). */
  private resizes: Promise<void> = Promise.resolve();
  private readonly onStdinEnd = (): void => {
    this.process
      .closeStdin()
      .catch((err: unknown) => this.opts.logger.debug({ err }, "closing stdin failed"));
  };

  constructor(
    private readonly process: Process,
    private readonly opts: AttachOptions,
  ) {}

  /** Output first (before start), so nothing the process writes at once is missed. */
  wireOutput(): void {
    const local = globalThis.process;
    this.outputs.push(copyOut(this.process.stdout, local.stdout));
    this.outputs.push(copyOut(this.process.stderr, local.stderr));
    // Not ended with the source: the caller closes the log once the output is drained.
    if (this.opts.log) {
      this.process.stdout?.pipe(this.opts.log.stdout, { end: false });
      this.process.stderr?.pipe(this.opts.log.stderr, { end: false });
    }
    // Our reader went away (`ctrd run … | head`). The shim holds its own read end of the FIFO, so
    // closing ours would only stall the container: its output is discarded instead, and the caller
    // decides how the process ends, as SIGPIPE would in a shell pipeline.
    onBrokenPipe((stream) => {
      const source = stream === local.stdout ? this.process.stdout : this.process.stderr;
      if (source) {
        source.unpipe(stream);
        source.resume();
      }
      if (!this.outputGone) {
        this.outputGone = true;
        this.opts.onOutputGone?.();
      }
    });
  }

  /**
   * The terminal's size, before start: the pty exists once the task is created, and runc (1.1)
   * ignores the spec's consoleSize, so a program that asks at once would otherwise see 0x0.
   */
  async sizeTerminal(): Promise<void> {
    const local = globalThis.process;
    if (!this.opts.tty || !local.stdout.isTTY) return;
    // Resizes are followed from here, before the start, not once it has returned: a terminal
    // resized while the task starts (the program already running, the Start's answer not yet
    // here) would otherwise keep the old size for good. A created task's pty takes a resize.
    local.on("SIGWINCH", this.onResize);
    await this.resize("sizing the terminal");
  }

  /** Input and terminal, once the process runs. */
  wireInput(): void {
    const local = globalThis.process;
    if (!this.opts.stdin || !this.process.stdin) return;
    if (this.opts.tty && local.stdin.isTTY) {
      // Keys (Ctrl-C included) go to the container's terminal, as with `docker run -it`.
      local.stdin.setRawMode(true);
      this.rawMode = true;
    }
    local.stdin.pipe(this.process.stdin, { end: false });
    local.stdin.once("end", this.onStdinEnd);
  }

  /**
   * Sends the terminal's size as it is when the previous resize has been answered. One at a time:
   * `stty cols 120 rows 40` is two SIGWINCHs (120x30, then 120x40), and two ResizePty calls in
   * flight at once may be applied in either order, leaving the pty at the older size.
   */
  private resize(what: string): Promise<void> {
    this.resizes = this.resizes.then(async () => {
      const { columns, rows } = globalThis.process.stdout;
      if (!columns || !rows) return;
      await this.process
        .resize(columns, rows)
        .catch((err: unknown) => this.opts.logger.debug({ err }, `${what} failed`));
    });
    return this.resizes;
  }

  /** After the exit: the rest of the output, bounded by a grace period. */
  async drain(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DRAIN_GRACE_MS);
    });
    await Promise.race([Promise.all(this.outputs), grace]);
    clearTimeout(timer);
  }

  /** Gives the terminal and stdin back. Safe to call more than once. */
  detach(): void {
    const local = globalThis.process;
    onBrokenPipe(undefined);
    if (this.opts.log) {
      this.process.stdout?.unpipe(this.opts.log.stdout);
      this.process.stderr?.unpipe(this.opts.log.stderr);
    }
    local.off("SIGWINCH", this.onResize);
    if (this.rawMode) {
      local.stdin.setRawMode(false);
      this.rawMode = false;
    }
    if (this.opts.stdin) {
      local.stdin.off("end", this.onStdinEnd);
      if (this.process.stdin) local.stdin.unpipe(this.process.stdin);
      local.stdin.pause();
    }
  }
}

async function copyOut(source: Readable | null, target: NodeJS.WriteStream): Promise<void> {
  if (!source) return;
  source.pipe(target, { end: false });
  await Promise.race([once(source, "end"), once(source, "close")]).catch(() => {});
}
