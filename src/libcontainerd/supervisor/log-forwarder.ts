import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { Logger } from "pino";

type PinoMethod = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

const LEVELS: Record<string, PinoMethod> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  warn: "warn",
  error: "error",
  fatal: "fatal",
  panic: "fatal",
};

/** containerd logs logrus text: `time="…" level=info msg="…" key=value …`. */
export function parseContainerdLogLine(line: string): { level: PinoMethod; msg: string } {
  const level = LEVELS[/(?:^|\s)level=(\w+)/.exec(line)?.[1] ?? ""] ?? "info";
  const quoted = /(?:^|\s)msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
  const bare = /(?:^|\s)msg=(\S+)/.exec(line)?.[1];
  const msg = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : (bare ?? line);
  return { level, msg };
}

/** Forwards a containerd output stream line by line, at the level containerd logged it. */
export function forwardContainerdLog(stream: Readable, logger: Logger, pid: number): void {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    const { level, msg } = parseContainerdLogLine(line);
    logger[level]({ containerdPid: pid, line }, msg);
  });
  // A closed pipe is the normal end (containerd exited or we detached); nothing to report.
  lines.on("error", () => {});
}
