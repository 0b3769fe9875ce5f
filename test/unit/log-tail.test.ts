// readLogs({ tail }) finds the last lines from the end of the log, and they are the lines a full read ends with.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { type LogLine, type ReadLogsOptions, readLogs } from "../../src/logs/reader.js";

const dir = mkdtempSync(join(tmpdir(), "lcd-log-tail-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function read(path: string, opts: ReadLogsOptions = {}): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const line of readLogs(path, opts)) lines.push(line);
  return lines;
}

/**
 * A deterministic mix: both streams, lines split into several records (the pieces of one stream's
 * line interleaved with the other stream's records, as the logger writes them), long records, and
 * lines that are no record.
 */
function records(count: number, seed: number): string[] {
  let state = seed;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  const queues: Record<"stdout" | "stderr", string[]> = { stdout: [], stderr: [] };
  for (let i = 0; i < count; i++) {
    const stream = random(3) === 0 ? "stderr" : "stdout";
    const pieces = random(5) === 0 ? 1 + random(4) : 1;
    for (let p = 0; p < pieces; p++) {
      const text = `${stream} ${i}.${p} ${"x".repeat(random(7) === 0 ? 40_000 : random(80))}`;
      queues[stream].push(p === pieces - 1 ? `${text}\n` : text);
    }
  }
  const out: string[] = [];
  let second = 0;
  while (queues.stdout.length > 0 || queues.stderr.length > 0) {
    const stream =
      queues.stderr.length === 0 || (queues.stdout.length > 0 && random(2) === 0) ? "stdout" : "stderr";
    const log = queues[stream].shift() ?? "";
    const time = new Date(Date.UTC(2026, 10, 30, 0, 0, second++)).toISOString();
    out.push(JSON.stringify({ log, stream, time }));
    if (random(50) === 0) out.push("not a record");
  }
  return out;
}

describe("readLogs tail", () => {
  test("the last N lines are those a full read ends with, whatever N and the stream asked for", async () => {
    const path = join(dir, "mixed-json.log");
    writeFileSync(path, `${records(3000, 7).join("\n")}\n`);
    const all = await read(path);
    const stdout = await read(path, { stdout: true });
    for (const tail of [0, 1, 2, 3, 10, 99, 1000, 2999, 5000]) {
      expect(await read(path, { tail }), `tail ${tail}`).toEqual(tail === 0 ? [] : all.slice(-tail));
      expect(await read(path, { tail, stdout: true }), `stdout tail ${tail}`).toEqual(
        tail === 0 ? [] : stdout.slice(-tail),
      );
    }
  });

  test("only the end of a huge log is read: a gigabyte of nothing before the last lines", async () => {
    // A sparse file: 1 GiB that holds no record (a read from its start would go through all of it),
    // then whole records.
    const path = join(dir, "huge-json.log");
    const fd = openSync(path, "w");
    const tailText = `\n${records(20, 3).join("\n")}\n`;
    writeSync(fd, tailText, 1024 ** 3);
    closeSync(fd);
    const last = await read(path, { tail: 2 });
    // The same records in a file of their own, read whole: the same two lines end it.
    const plain = join(dir, "plain-json.log");
    writeFileSync(plain, tailText.slice(1));
    expect(last).toEqual((await read(plain)).slice(-2));
    expect(last).toHaveLength(2);
  });
});
