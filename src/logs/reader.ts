import { existsSync, type FSWatcher, watch } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../libcontainerd/types/errors.js";
import { type LogFile, listLogFiles } from "./files.js";
import { flushLogger } from "./flush.js";
import { type LogRecord, parseRecord } from "./json-file.js";

export interface LogLine {
  stream: "stdout" | "stderr";
  /** When the logger read the line (of its first part, for a line that came in parts). */
  time: Date;
  /** The same, in RFC 3339 with nanoseconds, as the log holds it. */
  timestamp: string;
  /** The text without its newline; a long line written in parts comes back whole. */
  line: string;
  /**
   * The line has no end: the container exited in the middle of it, or it is one piece of a line
   * longer than the reader joins (1 MiB; the next piece carries on). Print it without a newline,
   * as docker logs does, and the output is the container's, byte for byte.
   */
  partial?: true;
}

export interface ReadLogsOptions {
  /** Keep reading as the log grows (across rotations), until `exited`, `until` or `signal`. */
  follow?: boolean;
  /** Only the last N lines (of those the other options select). */
  tail?: number;
  since?: Date;
  until?: Date;
  /** Prefix each line with its timestamp and a space, as `docker logs -t` prints it. */
  timestamps?: boolean;
  /** Which streams; both when neither is given. */
  stdout?: boolean;
  stderr?: boolean;
  /** Ends the iteration (without an error). */
  signal?: AbortSignal;
  /**
   * With `follow`: settles once the container has exited (e.g. `task.wait()`). The reader then has
   * the logger write out what its pipes still hold, reads to the end, and ends.
   */
  exited?: PromiseLike<unknown>;
}

const CHUNK = 64 * 1024;
/** A line arriving in parts is handed out anyway beyond this, so memory stays bounded. */
const MAX_JOINED = 1024 * 1024;
/** Without inotify events (or when they are lost), look again this often. */
const POLL_MS = 500;

/**
 * Reads a json-file log written by ctrd-logger (or Docker): its rotated files oldest first, then,
 * with `follow`, what is appended, across rotations and truncation. NotFoundError when there is
 * no log at `path`; a log removed while followed ends the iteration.
 */
export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogLine> {
  validate(path, opts);
  const select = selector(opts);
  const joiner = new LineJoiner(opts.timestamps ?? false);
  const tail = opts.tail;
  const ring: LogLine[] = [];
  const keep = (lines: LogLine[]) => {
    for (const line of lines) {
      ring.push(line);
      if (ring.length > (tail ?? 0)) ring.shift();
    }
  };
  const take = (records: string[]): LogLine[] => {
    const lines: LogLine[] = [];
    for (const text of records) {
      const record = parseRecord(text);
      if (record && select(record)) joiner.add(record, lines);
    }
    return lines;
  };

  // The last lines are looked for from the end of the current file, not read from the first
  // file on: `--tail 10` of a log of gigabytes took as long as reading all of it.
  let cursor =
    (tail !== undefined ? await openAtTail(path, tail, select) : undefined) ?? (await openOldest(path));
  try {
    // The files oldest first, following the chain of rotations by inode (a rotation meanwhile
    // renames them under us).
    for (;;) {
      const lines = take(await cursor.readAvailable());
      if (tail === undefined) yield* lines;
      else keep(lines);
      const next = await advance(path, cursor);
      if (!next) break;
      await cursor.close();
      cursor = next;
    }
    if (!opts.follow) {
      const rest = joiner.rest();
      if (tail === undefined) yield* rest;
      else {
        keep(rest);
        yield* ring;
      }
      return;
    }
    if (tail !== undefined) yield* ring;
    ring.length = 0;
    yield* follow(path, cursor, opts, take, joiner, (next) => {
      cursor = next;
    });
  } finally {
    await cursor.close();
  }
}

/**
 * The log's files, listed until two listings agree: a rotation renames every file, so a listing
 * taken while it runs can name one file twice, or in the wrong place.
 */
async function stableListing(path: string): Promise<LogFile[]> {
  const key = (files: LogFile[]) => files.map((file) => `${file.generation}:${file.ino}`).join(",");
  let previous = await listLogFiles(path);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await listLogFiles(path);
    if (key(current) === key(previous) && new Set(current.map((f) => f.ino)).size === current.length)
      return current;
    previous = current;
  }
  return previous;
}

async function openOldest(path: string): Promise<Cursor> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const files = await stableListing(path);
    const oldest = files[0];
    if (!oldest) break;
    const cursor = await Cursor.open(oldest);
    if (cursor && cursor.ino === oldest.ino) return cursor;
    await cursor?.close(); // rotated between the listing and the open: look again
  }
  throw new NotFoundError(`no log at ${path}`);
}

/**
 * The current file, opened where its last `tail` selected lines begin (at a record that starts a
 * line in every stream the lines are of), or undefined when they reach back into an older file, or
 * cannot be told apart: then the log is read from its oldest file.
 */
async function openAtTail(
  path: string,
  tail: number,
  select: (record: LogRecord) => boolean,
): Promise<Cursor | undefined> {
  const current = (await stableListing(path)).find((file) => file.generation === 0);
  const cursor = current && (await Cursor.open(current));
  if (!cursor) return undefined;
  // Rotated between the listing and the open: what was the current file is an older one now.
  const start =
    cursor.ino === current.ino ? await cursor.tailStart(tail, select).catch(() => undefined) : undefined;
  if (start === undefined) {
    await cursor.close();
    return undefined;
  }
  cursor.position = start;
  return cursor;
}

/**
 * The file written after the cursor's (which has been rotated), or undefined when the cursor's
 * is the current file (or the log is gone). The old file is complete: the logger writes out
 * everything before it renames the file.
 */
async function advance(path: string, cursor: Cursor): Promise<Cursor | undefined> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const files = await stableListing(path);
    const at = files.findIndex((file) => file.ino === cursor.ino);
    if (at >= 0 && files[at]?.generation === 0) return undefined;
    // Our file rotated out of the log altogether: every file left is newer.
    const candidate = at >= 0 ? files[at + 1] : files[0];
    if (!candidate) return undefined;
    const next = await Cursor.open(candidate);
    if (next && next.ino === candidate.ino) return next;
    await next?.close();
  }
  return undefined;
}

/** How long the current file may be missing (a rotation in progress) before the log counts as deleted. */
const MISSING_GRACE_MS = 1_000;

async function* follow(
  path: string,
  first: Cursor,
  opts: ReadLogsOptions,
  take: (records: string[]) => LogLine[],
  joiner: LineJoiner,
  onSwitch: (cursor: Cursor) => void,
): AsyncGenerator<LogLine> {
  let cursor = first;
  const waker = new Waker(dirname(path), opts.signal);
  let exited = false;
  const onExit = () => {
    exited = true;
    waker.poke();
  };
  opts.exited?.then(onExit, onExit);
  let finishing = false;
  let missingSince: number | undefined;
  try {
    while (!opts.signal?.aborted) {
      yield* take(await cursor.readAvailable());
      // Records are stamped when read: none after `until` can come once the clock is past it.
      if (opts.until && Date.now() > opts.until.getTime()) break;
      const now = await stat(path).catch(() => undefined);
      if (!now) {
        // Between a rotation's rename and the new file, or removed with the container. Counted in
        // time, not in turns: a burst of rotations pokes the waker many times within a millisecond.
        if (!existsSync(dirname(path))) break;
        missingSince ??= Date.now();
        if (Date.now() - missingSince >= MISSING_GRACE_MS) break;
        await waker.next(50);
        continue;
      }
      missingSince = undefined;
      if (now.ino !== cursor.ino) {
        const next = await advance(path, cursor);
        if (next) {
          yield* take(await cursor.readAvailable());
          await cursor.close();
          cursor = next;
          onSwitch(next);
        }
        continue;
      }
      if (now.size < cursor.position) {
        cursor.restart(); // truncated (max-files 1, or by hand): read it from its start
        continue;
      }
      if (finishing) break;
      if (exited) {
        await flushLogger(path, opts.signal).catch(() => {});
        finishing = true;
        continue;
      }
      await waker.next(POLL_MS);
    }
    yield* joiner.rest();
  } finally {
    waker.close();
  }
}

function validate(path: string, opts: ReadLogsOptions): void {
  if (typeof path !== "string" || !isAbsolute(path))
    throw new InvalidArgumentError(`read logs: the path must be absolute, not ${JSON.stringify(path)}`);
  if (opts.tail !== undefined && (!Number.isSafeInteger(opts.tail) || opts.tail < 0))
    throw new InvalidArgumentError(
      `read logs: tail must be a non-negative integer, not ${String(opts.tail)}`,
    );
  for (const key of ["since", "until"] as const) {
    const value = opts[key];
    if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime())))
      throw new InvalidArgumentError(`read logs: ${key} must be a valid Date`);
  }
}

function selector(opts: ReadLogsOptions): (record: LogRecord) => boolean {
  const neither = opts.stdout === undefined && opts.stderr === undefined;
  const stdout = neither || opts.stdout === true;
  const stderr = neither || opts.stderr === true;
  const since = opts.since?.getTime();
  const until = opts.until?.getTime();
  return (record) => {
    if (record.stream === "stdout" ? !stdout : !stderr) return false;
    const time = record.time.getTime();
    if (since !== undefined && time < since) return false;
    return until === undefined || time <= until;
  };
}

/** Joins the parts of a split line (records without a trailing newline), per stream. */
class LineJoiner {
  private readonly pending = new Map<"stdout" | "stderr", { first: LogRecord; text: string }>();

  constructor(private readonly timestamps: boolean) {}

  add(record: LogRecord, out: LogLine[]): void {
    const open = this.pending.get(record.stream);
    const text = (open?.text ?? "") + record.log;
    const first = open?.first ?? record;
    if (text.endsWith("\n") || text.length >= MAX_JOINED) {
      this.pending.delete(record.stream);
      const ended = text.endsWith("\n");
      out.push(this.line(first, ended ? text.slice(0, -1) : text, !ended));
    } else {
      this.pending.set(record.stream, { first, text });
    }
  }

  /** Lines whose end never came (the container exited mid-line). */
  rest(): LogLine[] {
    const lines = [...this.pending.values()]
      .sort((a, b) => a.first.time.getTime() - b.first.time.getTime())
      .map(({ first, text }) => this.line(first, text, true));
    this.pending.clear();
    return lines;
  }

  private line(first: LogRecord, text: string, partial: boolean): LogLine {
    return {
      stream: first.stream,
      time: first.time,
      timestamp: first.timestamp,
      line: this.timestamps ? `${first.timestamp} ${text}` : text,
      ...(partial ? { partial: true as const } : {}),
    };
  }
}

/** An open log file, read up to its end again and again; a record cut at the end waits for the rest. */
class Cursor {
  position = 0;
  private fragment = "";
  private readonly buffer = Buffer.allocUnsafe(CHUNK);

  private constructor(
    private readonly handle: FileHandle,
    readonly ino: number,
  ) {}

  static async open(file: LogFile): Promise<Cursor | undefined> {
    try {
      const handle = await open(file.path, "r");
      const info = await handle.stat();
      return new Cursor(handle, info.ino);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined; // rotated away meanwhile
      throw err;
    }
  }

  restart(): void {
    this.position = 0;
    this.fragment = "";
  }

  /**
   * Reading back from the end: the offset of the record where the last `tail` selected lines
   * begin, moved back until no stream among them is in the middle of a line there (a line split
   * into records must be read from its first). Undefined when the file's start comes first.
   */
  async tailStart(tail: number, select: (record: LogRecord) => boolean): Promise<number | undefined> {
    if (tail === 0) return (await this.handle.stat()).size;
    let end = (await this.handle.stat()).size;
    let carry = Buffer.alloc(0);
    let counted = 0;
    let start: number | undefined;
    /** Streams with a record at or after `start`; `passed`: of records scanned before it since it moved. */
    const inRegion = new Set<LogRecord["stream"]>();
    const passed = new Set<LogRecord["stream"]>();
    /** Streams of the region whose record just before `start` has not been found yet. */
    let pending = new Set<LogRecord["stream"]>();
    const moveStart = (offset: number, stream: LogRecord["stream"]) => {
      start = offset;
      for (const other of passed) inRegion.add(other);
      inRegion.add(stream);
      passed.clear();
      pending = new Set(inRegion);
    };
    while (end > 0) {
      const from = Math.max(0, end - CHUNK);
      const { bytesRead } = await this.handle.read(this.buffer, 0, end - from, from);
      const chunk = Buffer.concat([this.buffer.subarray(0, bytesRead), carry]);
      // Whole records only: the bytes before the chunk's first newline may belong to an earlier one.
      const cut = from === 0 ? -1 : chunk.indexOf(0x0a);
      end = from;
      if (from > 0 && cut < 0) {
        carry = chunk; // inside one record (up to 96 KiB): read further back first
        continue;
      }
      carry = cut < 0 ? Buffer.alloc(0) : chunk.subarray(0, cut + 1);
      const body = cut < 0 ? chunk : chunk.subarray(cut + 1);
      const base = from + (cut + 1);
      // Records last first; a torn last record (no newline yet) is left to the forward read.
      let stop = body.lastIndexOf(0x0a);
      while (stop >= 0) {
        // (A negative offset would count from the end.)
        const begin = stop === 0 ? 0 : body.lastIndexOf(0x0a, stop - 1) + 1;
        const record = parseRecord(body.toString("utf8", begin, stop));
        const offset = base + begin;
        stop = begin - 1;
        if (!record || !select(record)) continue;
        const ends = record.log.endsWith("\n");
        if (start === undefined) {
          inRegion.add(record.stream);
          // The earliest line's last record: whether it is also its first, the records before say.
          if (ends && ++counted >= tail) moveStart(offset, record.stream);
          continue;
        }
        if (!pending.has(record.stream)) {
          passed.add(record.stream);
        } else if (ends) {
          pending.delete(record.stream);
          passed.add(record.stream);
          if (pending.size === 0) return start;
        } else {
          moveStart(offset, record.stream); // a line of the region begins further back
        }
      }
    }
    return undefined;
  }

  async readAvailable(): Promise<string[]> {
    const records: string[] = [];
    for (;;) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, CHUNK, this.position);
      if (bytesRead === 0) return records;
      this.position += bytesRead;
      // A record is whole once its newline is there; UTF-8 is decoded per whole line.
      const parts = (this.fragment + this.buffer.toString("latin1", 0, bytesRead)).split("\n");
      this.fragment = parts.pop() ?? "";
      for (const part of parts) if (part) records.push(Buffer.from(part, "latin1").toString("utf8"));
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}

/** Wakes the follower when the log's directory changes, or after a while anyway. */
class Waker {
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;
  private poked = false;

  constructor(
    dir: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    try {
      this.watcher = watch(dir, { persistent: false }, () => this.poke());
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined; // no inotify: polling alone
    }
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = () => this.poke();

  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Resolves on a change, after `ms`, or when the signal aborts. */
  next(ms: number): Promise<void> {
    if (this.poked || this.signal?.aborted) {
      this.poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.watcher ? ms : Math.min(ms, 100));
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        self.poked = false;
        resolve();
      }
      this.wake = done;
    });
  }

  close(): void {
    this.watcher?.close();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.wake?.();
  }
}
