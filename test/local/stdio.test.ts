/** The stdio handles HcsCreateProcess hands over (pipe fds on the fake): wrapped, or closed exactly once. */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { streamsFromHandles } from "../../src/libcontainerd/local/stdio.js";

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "stdio-"));
});

afterEach(() => {
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A pipe-type fd, as the fake's handles are (a FIFO opened read-write never blocks). */
function pipeFd(name: string): number {
  const fifo = path.join(dir, name);
  execFileSync("mkfifo", [fifo]);
  return fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
}

const isOpen = (fd: number) => {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

it("a handle that cannot be wrapped: every handle is closed once, none twice", () => {
  const stdin = pipeFd("in");
  const stdout = fs.openSync(path.join(dir, "file"), "w"); // a regular file: net.Socket refuses it
  const stderr = pipeFd("err");
  const closes: number[] = [];
  const closeSync = fs.closeSync;
  vi.spyOn(fs, "closeSync").mockImplementation((fd) => {
    closes.push(fd);
    closeSync(fd);
  });
  expect(() =>
    streamsFromHandles({
      processId: 1,
      stdInput: BigInt(stdin),
      stdOutput: BigInt(stdout),
      stdError: BigInt(stderr),
    }),
  ).toThrow();
  // stdin was its stream's to close; the two never wrapped are closed here. Afterwards nothing else
  // may close these numbers: another thread may have opened a pipe under one of them.
  expect(closes.sort()).toEqual([stdout, stderr].sort());
  expect([stdin, stdout, stderr].map(isOpen)).toEqual([false, false, false]);
});

it("wrapped handles belong to their streams", async () => {
  const stdin = pipeFd("in");
  const stdout = pipeFd("out");
  const streams = streamsFromHandles({
    processId: 1,
    stdInput: BigInt(stdin),
    stdOutput: BigInt(stdout),
    stdError: 0n,
  });
  expect(streams.stderr).toBeNull();
  streams.stdin!.destroy();
  streams.stdout!.destroy();
  await new Promise((r) => setImmediate(r));
  expect([stdin, stdout].map(isOpen)).toEqual([false, false]);
});
