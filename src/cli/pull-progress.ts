import type { PullProgress } from "../images/pull.js";
import { formatBytes } from "./output.js";

const BAR = 30;

/**
 * Shows a pull's progress on stderr: on a terminal one bar per layer, redrawn in place; otherwise
 * one plain line per blob when its state changes (no redraws in a log file).
 */
export class PullProgressView {
  private readonly rows = new Map<string, PullProgress>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    tty?: boolean,
  ) {
    this.tty = tty ?? out.isTTY === true;
  }

  update = (event: PullProgress): void => {
    const previous = this.rows.get(event.digest);
    this.rows.set(event.digest, event);
    if (!this.tty) {
      if (previous?.state !== event.state && event.state !== "downloading" && event.state !== "extracting")
        this.out.write(`${short(event.digest)}: ${label(event)}\n`);
      return;
    }
    // Redrawn at most every 100 ms: a fast local pull sends thousands of events.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 100);
  };

  private draw(): void {
    const lines = [...this.rows.values()].map((row) => {
      const ratio = row.total > 0 ? Math.min(1, row.current / row.total) : 1;
      const filled = Math.round(ratio * BAR);
      const bar = row.kind === "layer" ? `[${"=".repeat(filled)}${" ".repeat(BAR - filled)}] ` : "";
      const bytes = `${formatBytes(row.current)}/${formatBytes(row.total)}`;
      return `${short(row.digest)}: ${label(row).padEnd(12)} ${bar}${bytes}`;
    });
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    this.out.write(`${up}${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`);
    this.drawn = lines.length;
  }

  /** Draws the final state and stops. */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty && this.rows.size > 0) this.draw();
  }
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

function label(event: PullProgress): string {
  const kind = event.kind === "layer" ? "" : `${event.kind} `;
  switch (event.state) {
    case "exists":
      return `${kind}already exists`;
    case "done":
      return `${kind}done`;
    default:
      return `${kind}${event.state}`;
  }
}
