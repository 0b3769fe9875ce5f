/**
 * ctrd-logger on its own, driven as containerd's shim drives it: the container's stdout and stderr
 * on fds 3 and 4, the ready pipe on fd 5, the URI's query as argument pairs.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex, type Writable } from "node:stream";
import { afterEach, describe, expect, test } from "vitest";
import { parseRecord } from "../../src/logs/json-file.js";
import { loggerBinary } from "../../src/logs/logger-binary.js";
import { type LogLine, readLogs } from "../../src/logs/reader.js";

const dirs: string[] = [];
const mounts: string[] = [];
afterEach(() => {
  for (const dir of mounts.splice(0)) execFileSync("umount", ["-l", dir]);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "ctrd-logger-"));
  dirs.push(dir);
  return dir;
}

interface Logger {
  child: ChildProcess;
  stdout: Writable;
  stderr: Writable;
  exited: Promise<number | null>;
}

async function startLogger(args: string[]): Promise<Logger> {
  const child = spawn(loggerBinary(), args, {
    stdio: ["ignore", "ignore", "inherit", "pipe", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const pipe = (fd: number): Duplex => {
    const stream: unknown = (child.stdio as readonly unknown[])[fd];
    if (!(stream instanceof Duplex)) throw new Error(`no pipe on fd ${fd}`);
    return stream;
  };
  const ready = pipe(5);
  await new Promise<void>((resolve) => {
    ready.once("data", () => resolve());
    ready.once("end", () => resolve());
  });
  return { child, stdout: pipe(3), stderr: pipe(4), exited };
}

async function finish(logger: Logger): Promise<number | null> {
  logger.stdout.end();
  logger.stderr.end();
  return logger.exited;
}

async function collect(path: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const line of readLogs(path)) lines.push(line);
  return lines;
}

const write = (stream: Writable, data: string | Buffer) =>
  new Promise<void>((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));

describe("ctrd-logger", () => {
  test("writes Docker json-file records: streams, RFC 3339 nano times, escapes, invalid UTF-8 as U+FFFD", async () => {
    const path = join(scratch(), "c-json.log");
    const logger = await startLogger(["path", path]);
    await write(logger.stdout, 'quote " backslash \\ tab \t ctl \u0001 é ☃\n');
    await write(logger.stdout, Buffer.from([0x62, 0x61, 0x64, 0xff, 0xc3, 0x0a]));
    expect(await finish(logger)).toBe(0);
    const records = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(records).toHaveLength(2);
    const first = parseRecord(records[0] ?? "");
    expect(first?.log).toBe('quote " backslash \\ tab \t ctl \u0001 é ☃\n');
    expect(first?.stream).toBe("stdout");
    expect(first?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(parseRecord(records[1] ?? "")?.log).toBe("bad\ufffd\ufffd\n");
  });

  test("keeps arguments in any order (containerd passes a map) and refuses unknown ones", async () => {
    const path = join(scratch(), "x.log");
    const logger = await startLogger(["max-files", "2", "path", path, "max-size", "1000"]);
    await write(logger.stderr, "to stderr\n");
    expect(await finish(logger)).toBe(0);
    expect((await collect(path)).map((l) => [l.stream, l.line])).toEqual([["stderr", "to stderr"]]);
    const bad = spawn(loggerBinary(), ["path", path, "colour", "red"], { stdio: "ignore" });
    expect(await new Promise((resolve) => bad.on("exit", resolve))).toBe(2);
  });

  test("a line longer than 16 KiB is split into partial records, and the reader joins it", async () => {
    const path = join(scratch(), "long.log");
    const logger = await startLogger(["path", path]);
    const long = "é".repeat(30_000); // 60,000 bytes: splits must not cut a character
    await write(logger.stdout, `${long}\nshort\n`);
    expect(await finish(logger)).toBe(0);
    const records = readFileSync(path, "utf8").trimEnd().split("\n").map(parseRecord);
    expect(records.length).toBeGreaterThan(4);
    expect(records.every((r) => r !== undefined)).toBe(true);
    expect((await collect(path)).map((l) => l.line)).toEqual([long, "short"]);
  });

  test("an unfinished line is written on exit, and at a flush request (SIGUSR1), which it counts", async () => {
    const path = join(scratch(), "partial.log");
    const logger = await startLogger(["path", path]);
    await write(logger.stdout, "no newline yet");
    const state = () => readFileSync(`${path}.logger`, "utf8");
    expect(state()).toBe(`${logger.child.pid} 0\n`);
    logger.child.kill("SIGUSR1");
    for (let i = 0; i < 500 && state() === `${logger.child.pid} 0\n`; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(state()).toBe(`${logger.child.pid} 1\n`);
    expect((await collect(path)).map((l) => l.line)).toEqual(["no newline yet"]);
    await write(logger.stdout, ", and the end\n");
    expect(await finish(logger)).toBe(0);
    // Parts of one line: the reader joins them.
    expect((await collect(path)).map((l) => l.line)).toEqual(["no newline yet, and the end"]);
    expect(readdirSync(join(path, "..")).sort()).toEqual(["partial.log"]); // its state file goes with it
  });

  test("a follower told the container exited has the logger flush (a partial line too), then ends", async () => {
    const path = join(scratch(), "exited.log");
    const logger = await startLogger(["path", path]);
    await write(logger.stdout, "line\npartial");
    let exit = () => {};
    const exited = new Promise<void>((resolve) => {
      exit = resolve;
    });
    const follower = (async () => {
      const lines: LogLine[] = [];
      for await (const line of readLogs(path, { follow: true, exited })) lines.push(line);
      return lines;
    })();
    exit();
    // Without the flush the partial line would wait a second in the logger, and the follower end first.
    expect((await follower).map((l) => l.line)).toEqual(["line", "partial"]);
    expect(await finish(logger)).toBe(0);
  });

  test("a follower ends when its signal aborts", async () => {
    const path = join(scratch(), "abort.log");
    const logger = await startLogger(["path", path]);
    await write(logger.stdout, "one\n");
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const line of readLogs(path, { follow: true, signal: controller.signal })) {
      seen.push(line.line);
      if (line.line === "two") controller.abort();
      else await write(logger.stdout, "two\n");
    }
    expect(seen).toEqual(["one", "two"]);
    expect(await finish(logger)).toBe(0);
  });

  test("SIGTERM after the shim closed the pipes: everything still in them is written", async () => {
    const path = join(scratch(), "term.log");
    const logger = await startLogger(["path", path]);
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join("");
    await write(logger.stdout, lines);
    logger.stdout.end();
    logger.stderr.end();
    logger.child.kill("SIGTERM");
    expect(await logger.exited).toBe(0);
    const got = await collect(path);
    expect(got).toHaveLength(2000);
    expect(got[1999]?.line).toBe("line 1999");
  });

  test("rotation keeps at most max-files files, each within max-size, of whole records", async () => {
    const dir = scratch();
    const path = join(dir, "rot.log");
    const logger = await startLogger(["path", path, "max-size", "2000", "max-files", "3"]);
    for (let i = 0; i < 500; i++) await write(logger.stdout, `line ${i}\n`);
    expect(await finish(logger)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["rot.log", "rot.log.1", "rot.log.2"]);
    for (const name of readdirSync(dir)) {
      const text = readFileSync(join(dir, name), "utf8");
      expect(text.length).toBeLessThanOrEqual(2000);
      for (const record of text.trimEnd().split("\n")) expect(parseRecord(record)).toBeDefined();
    }
    const got = (await collect(path)).map((l) => l.line);
    expect(got.at(-1)).toBe("line 499");
    // The kept lines are the newest ones, in order, with none missing in between.
    const first = Number(got[0]?.split(" ")[1]);
    expect(got).toEqual(Array.from({ length: 500 - first }, (_, i) => `line ${first + i}`));
  });

  test("max-files 1 truncates instead of rotating", async () => {
    const dir = scratch();
    const path = join(dir, "one.log");
    const logger = await startLogger(["path", path, "max-size", "500", "max-files", "1"]);
    for (let i = 0; i < 100; i++) await write(logger.stdout, `line ${i}\n`);
    expect(await finish(logger)).toBe(0);
    expect(readdirSync(dir)).toEqual(["one.log"]);
    expect((await collect(path)).at(-1)?.line).toBe("line 99");
  });

  test("a full disk: writes are dropped, the container is never blocked, files hold whole records", async () => {
    const dir = scratch();
    const small = join(dir, "small");
    mkdirSync(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small]);
    mounts.push(small);
    const path = join(small, "full.log");
    const logger = await startLogger(["path", path, "max-size", "40000", "max-files", "3"]);
    // 5 MB through a 64 KiB disk: without dropping, the pipe would fill and this would never finish.
    const chunk = Array.from({ length: 100 }, (_, i) => `${"x".repeat(40)} ${i}\n`).join("");
    for (let i = 0; i < 1000; i++) await write(logger.stdout, chunk);
    expect(await finish(logger)).toBe(0);
    const names = readdirSync(small).filter((name) => name.startsWith("full.log"));
    expect(names.length).toBeLessThanOrEqual(3);
    for (const name of names) {
      const text = readFileSync(join(small, name), "utf8");
      if (text) for (const record of text.trimEnd().split("\n")) expect(parseRecord(record)).toBeDefined();
    }
  });
});
