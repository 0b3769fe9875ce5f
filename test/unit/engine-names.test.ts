import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { unusedDockerName } from "../../src/engine/containers/names.js";
import { type ContainerRecord, ContainerStore } from "../../src/engine/containers/store.js";

/** A random source that repeats `draws` in order (the same candidate first, as a collision would). */
function scripted(...draws: number[][]): (size: number) => Uint8Array {
  let next = 0;
  return (size) => Uint8Array.from((draws[next++] ?? draws[draws.length - 1] ?? []).slice(0, size));
}

describe("the engine's generated container names", () => {
  it("look like docker's: adjective_noun plus four hex digits, with the leading slash", () => {
    expect(unusedDockerName(() => false)).toMatch(/^\/[a-z]+_[a-z]+_[0-9a-f]{4}$/);
  });

  it("draw again when the candidate is taken, so concurrent creates never conflict on a name nobody gave", () => {
    const dir = mkdtempSync(join(tmpdir(), "lcd-names-"));
    try {
      const store = new ContainerStore(dir, pino({ level: "silent" }));
      const random = scripted([7, 1, 0x53, 0x9d], [7, 1, 0x53, 0x9d], [2, 3, 0, 1]);
      const first = unusedDockerName((name) => store.nameTaken(name), random);
      store.add({ Id: "a".repeat(64), Name: first } as ContainerRecord);
      const second = unusedDockerName((name) => store.nameTaken(name), random);
      expect(first).toBe("/nimble_curie_539d");
      expect(second).toBe("/eager_euler_0001");
      expect(store.nameTaken(first)).toBe(true);
      expect(store.nameTaken(second)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
