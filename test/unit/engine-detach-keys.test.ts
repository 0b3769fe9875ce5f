import { describe, expect, it } from "vitest";
import { DetachKeys, parseDetachKeys } from "../../src/engine/containers/routes.js";

describe("the engine's detach keys", () => {
  it("parses docker's notation", () => {
    expect(parseDetachKeys("")).toEqual([0x10, 0x11]);
    expect(parseDetachKeys("ctrl-p,ctrl-q")).toEqual([0x10, 0x11]);
    expect(parseDetachKeys("ctrl-@,ctrl-[,ctrl-_")).toEqual([0, 27, 31]);
    expect(parseDetachKeys("a,ctrl-a")).toEqual([0x61, 1]);
    expect(() => parseDetachKeys("ctrl-1")).toThrow(/Invalid detach keys/);
    expect(() => parseDetachKeys("shift-x")).toThrow(/Invalid detach keys/);
  });

  it("passes input through, holds a partial match, and detaches on the whole sequence", () => {
    const keys = new DetachKeys([0x10, 0x11]);
    expect(keys.scan(Buffer.from("ab"))).toEqual({ pass: Buffer.from("ab"), detached: false });
    expect(keys.scan(Buffer.from([0x63, 0x10]))).toEqual({ pass: Buffer.from("c"), detached: false });
    // The held ctrl-p is not the start of the sequence after all: it goes through with what follows.
    expect(keys.scan(Buffer.from("d"))).toEqual({ pass: Buffer.from([0x10, 0x64]), detached: false });
    expect(keys.scan(Buffer.from([0x65, 0x10, 0x11, 0x66]))).toEqual({
      pass: Buffer.from("e"),
      detached: true,
    });
    const split = new DetachKeys([0x10, 0x11]);
    expect(split.scan(Buffer.from([0x10])).detached).toBe(false);
    expect(split.scan(Buffer.from([0x11])).detached).toBe(true);
  });
});
