import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";

/** One line of output as the json-file log driver stores it. */
export interface LogEntry {
  stream: "stdout" | "stderr";
  /** The bytes, as written (a line with its newline, or a partial line). */
  log: Buffer;
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
}

/** RFC 3339 with nanoseconds, as Docker prints timestamps. */
export function formatTimeNs(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString();
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${fraction}Z`;
}

function parseTimeNs(text: string): bigint {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(text);
  if (!match) return BigInt(Date.parse(text)) * 1_000_000n;
  const seconds = BigInt(Date.parse(`${match[1]}Z`) / 1000);
  return seconds * 1_000_000_000n + BigInt((match[2] ?? "").padEnd(9, "0").slice(0, 9));
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}

/** A chunk of output as lines, each with its newline (the last may be a partial line without). */
export function splitLines(chunk: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < chunk.length) {
    const newline = chunk.indexOf(0x0a, start);
    const end = newline === -1 ? chunk.length : newline + 1;
    lines.push(chunk.subarray(start, end));
    start = end;
  }
  return lines;
}

/**
 * Appends output to a file in Docker's json-file format (`{"log":…,"stream":…,"time":…}` a line),
 * so what a container wrote is kept in order and survives the engine. Writes are synchronous:
 * a read that follows a write always sees it.
 */
export class LogWriter {
  private fd: number | undefined;

  constructor(readonly path: string) {}

  write(stream: "stdout" | "stderr", chunk: Buffer): void {
    if (this.fd === undefined) this.fd = openSync(this.path, "a", 0o640);
    // Split at newlines as the json-file driver does: one entry a line, a partial line on its own.
    const time = formatTimeNs(nowNs());
    let lines = "";
    for (const line of splitLines(chunk))
      lines += `${JSON.stringify({ log: line.toString("utf8"), stream, time })}\n`;
    writeSync(this.fd, lines);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface LogQuery {
  stdout: boolean;
  stderr: boolean;
  /** Nanoseconds; entries before it are skipped. */
  sinceNs?: bigint;
  untilNs?: bigint;
  /** Only the last N entries (after the other filters); undefined = all. */
  tail?: number;
}

export function readLogFile(path: string, query: LogQuery): LogEntry[] {
  if (!existsSync(path)) return [];
  const entries: LogEntry[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    let parsed: { log?: unknown; stream?: unknown; time?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    if (typeof parsed.log !== "string" || typeof parsed.time !== "string") continue;
    const stream = parsed.stream === "stderr" ? "stderr" : "stdout";
    if (!(stream === "stdout" ? query.stdout : query.stderr)) continue;
    const timeNs = parseTimeNs(parsed.time);
    if (query.sinceNs !== undefined && timeNs < query.sinceNs) continue;
    if (query.untilNs !== undefined && timeNs > query.untilNs) continue;
    entries.push({ stream, log: Buffer.from(parsed.log, "utf8"), timeNs });
  }
  return query.tail !== undefined && query.tail >= 0
    ? entries.slice(Math.max(0, entries.length - query.tail))
    : entries;
}
