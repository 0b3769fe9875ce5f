import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { badRequest } from "../errors.js";

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

/** What a container's HostConfig.LogConfig asks of its log: kept or not, and how it rotates. */
export interface LogSettings {
  /** `none`: nothing is kept, and `docker logs` is refused. */
  kept: boolean;
  /** Rotate once the file holds this many bytes; undefined: never. */
  maxSize?: number;
  /** Files kept, the current one included (its older ones are `<path>.1` … `<path>.N-1`). */
  maxFiles: number;
}

/** A size as go-units reads it: FromHumanSize is decimal (json-file's `10m` is 10^7 bytes), RAMInBytes binary. */
function unitSize(value: string, base: 1000 | 1024): number | undefined {
  const match = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i.exec(value);
  if (!match) return undefined;
  const power = match[2] ? "kmgtp".indexOf(match[2].toLowerCase()) + 1 : 0;
  return Math.floor(Number(match[1]) * base ** power);
}

/** The options each driver that keeps a file takes (moby's json-file and local ValidateLogOpt). */
const DRIVER_OPTIONS: Record<string, readonly string[]> = {
  "json-file": ["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
  local: ["max-file", "max-size", "compress"],
};
/** Options every driver takes (moby's builtInLogOpts). */
const COMMON_OPTIONS = ["mode", "max-buffer-size"];

/**
 * HostConfig.LogConfig as dockerd's json-file and local drivers read it: max-size (json-file's
 * decimal, local's binary; local rotates at 20 MiB by default) and max-file, refused as dockerd
 * words it. Other drivers (syslog, journald, …) are kept as a json-file log without rotation.
 */
export function logSettings(config: { Type: string; Config: Record<string, string> }): LogSettings {
  if (config.Type === "none") return { kept: false, maxFiles: 1 };
  const allowed = DRIVER_OPTIONS[config.Type];
  if (!allowed) return { kept: true, maxFiles: 1 };
  for (const key of Object.keys(config.Config))
    if (!allowed.includes(key) && !COMMON_OPTIONS.includes(key))
      throw badRequest(
        config.Type === "json-file"
          ? `unknown log opt '${key}' for json-file log driver`
          : `unknown log opt '${key}' for log driver ${config.Type}`,
      );
  const local = config.Type === "local";
  const sizeText = config.Config["max-size"];
  let maxSize = local ? 20 * 1024 * 1024 : undefined;
  if (sizeText !== undefined) {
    const size = unitSize(sizeText, local ? 1024 : 1000);
    if (size === undefined) throw badRequest(`invalid size: '${sizeText}'`);
    if (size <= 0 && !local) throw badRequest("max-size must be a positive number");
    maxSize = size > 0 ? size : undefined;
  }
  const filesText = config.Config["max-file"];
  let maxFiles = local ? 5 : 1;
  if (filesText !== undefined) {
    if (!/^[-+]?\d+$/.test(filesText))
      throw badRequest(`strconv.Atoi: parsing ${JSON.stringify(filesText)}: invalid syntax`);
    maxFiles = Number(filesText);
    if (maxFiles < 1) throw badRequest("max-file cannot be less than 1");
  }
  return { kept: true, ...(maxSize !== undefined ? { maxSize } : {}), maxFiles };
}

/**
 * Appends output to a file in Docker's json-file format (`{"log":…,"stream":…,"time":…}` a line),
 * so what a container wrote is kept in order and survives the engine. Writes are synchronous:
 * a read that follows a write always sees it. With a max-size, the file is rotated as moby's
 * loggerutils.LogFile does: before an entry, once the file holds max-size bytes, `<path>` becomes
 * `<path>.1` (and so on, the oldest beyond max-file going) and a new `<path>` is begun.
 */
export class LogWriter {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly path: string,
    private readonly settings: LogSettings = { kept: true, maxFiles: 1 },
  ) {}

  write(stream: "stdout" | "stderr", chunk: Buffer): void {
    if (!this.settings.kept) return;
    if (this.fd === undefined) {
      this.fd = openSync(this.path, "a", 0o640);
      this.size = fstatSync(this.fd).size;
    }
    // Split at newlines as the json-file driver does: one entry a line, a partial line on its own.
    const time = formatTimeNs(nowNs());
    let pending = "";
    for (const line of splitLines(chunk)) {
      const { maxSize } = this.settings;
      if (maxSize !== undefined && this.size >= maxSize) {
        writeSync(this.fd, pending);
        pending = "";
        this.rotate();
      }
      const entry = `${JSON.stringify({ log: line.toString("utf8"), stream, time })}\n`;
      pending += entry;
      this.size += Buffer.byteLength(entry);
    }
    writeSync(this.fd, pending);
  }

  /**
   * moby's rotate: the oldest kept goes, each other moves up one, and the log begins anew. As moby's, a
   * file that cannot be moved does not stop the log (what it held may be lost): it is begun anew all the
   * same. The descriptor is forgotten once closed, so that a failure leaves none behind to write to
   * (another file or socket may have its number by then).
   */
  private rotate(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
    const { maxFiles } = this.settings;
    if (maxFiles > 1) {
      try {
        rmSync(`${this.path}.${maxFiles - 1}`, { force: true });
        for (let generation = maxFiles - 1; generation > 1; generation--)
          if (existsSync(`${this.path}.${generation - 1}`))
            renameSync(`${this.path}.${generation - 1}`, `${this.path}.${generation}`);
        renameSync(this.path, `${this.path}.1`);
      } catch {
        // moby warns "Error rotating log file, log data may have been lost" and goes on.
      }
    }
    this.fd = openSync(this.path, "w", 0o640);
    this.size = 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The log's files, oldest first: `<path>.N` … `<path>.1`, then `<path>`. */
function logFilesOldestFirst(path: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return [];
  }
  const prefix = `${basename(path)}.`;
  const generations = names
    .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
    .map((name) => Number(name.slice(prefix.length)))
    .sort((a, b) => b - a);
  return [...generations.map((generation) => join(dirname(path), `${prefix}${generation}`)), path];
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

/** The entries of the log and its rotated files, oldest first, that the query selects. */
export function readLogFile(path: string, query: LogQuery): LogEntry[] {
  const entries: LogEntry[] = [];
  const lines = logFilesOldestFirst(path).flatMap((file) => {
    try {
      return readFileSync(file, "utf8").split("\n");
    } catch {
      return []; // not written yet, or rotated away meanwhile
    }
  });
  for (const line of lines) {
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
