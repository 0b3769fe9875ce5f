import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cacheKey, contextSourceHash, sourcesHash } from "../../src/engine/build/cache.js";

const dir = mkdtempSync(join(tmpdir(), "lcd-build-cache-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;

describe("the build cache's keys", () => {
  it("hashes a COPY source by name, content and metadata, not by its modification time", async () => {
    writeFileSync(join(dir, "a.txt"), "same\n");
    writeFileSync(join(dir, "b.txt"), "same\n");
    const a = await contextSourceHash(join(dir, "a.txt"), "a.txt", signal);
    expect(a).toMatch(/^file:[a-f0-9]{64}$/);
    // Another name lands as another file: another step.
    expect(await contextSourceHash(join(dir, "b.txt"), "b.txt", signal)).not.toBe(a);
    utimesSync(join(dir, "a.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(await contextSourceHash(join(dir, "a.txt"), "a.txt", signal)).toBe(a);
    chmodSync(join(dir, "a.txt"), 0o755);
    expect(await contextSourceHash(join(dir, "a.txt"), "a.txt", signal)).not.toBe(a);
    writeFileSync(join(dir, "a.txt"), "other\n");
    chmodSync(join(dir, "a.txt"), 0o644);
    expect(await contextSourceHash(join(dir, "a.txt"), "a.txt", signal)).not.toBe(a);
  });

  it("hashes a directory by its entries' names and contents; several sources as multi:", async () => {
    mkdirSync(join(dir, "d/sub"), { recursive: true });
    writeFileSync(join(dir, "d/sub/x"), "x\n");
    const before = await contextSourceHash(join(dir, "d"), "d", signal);
    expect(before).toMatch(/^dir:/);
    writeFileSync(join(dir, "d/sub/y"), "");
    const added = await contextSourceHash(join(dir, "d"), "d", signal);
    expect(added).not.toBe(before);
    expect(sourcesHash([before])).toBe(before);
    expect(sourcesHash([before, added])).toMatch(/^multi:[a-f0-9]{64}$/);
    expect(sourcesHash([added, before])).not.toBe(sourcesHash([before, added]));
  });

  it("hashes a second path of a file as a hard link to the first (copied so): separate copies are another step", async () => {
    mkdirSync(join(dir, "linked"));
    writeFileSync(join(dir, "linked/x"), "same\n");
    linkSync(join(dir, "linked/x"), join(dir, "linked/y"));
    const linked = await contextSourceHash(join(dir, "linked"), "linked", signal);
    rmSync(join(dir, "linked/y"));
    writeFileSync(join(dir, "linked/y"), "same\n");
    expect(await contextSourceHash(join(dir, "linked"), "linked", signal)).not.toBe(linked);
  });

  it("compares the fields of a container config moby's cache compares, absent and empty alike", () => {
    const base = { Cmd: ["/bin/sh", "-c", "#(nop) ENV a=1"], Env: ["a=1"], Labels: { x: "1", y: "2" } };
    expect(cacheKey({ ...base, Labels: { y: "2", x: "1" }, Entrypoint: [], User: "" })).toBe(cacheKey(base));
    expect(cacheKey({ ...base, Hostname: "other" })).toBe(cacheKey(base));
    expect(cacheKey({ ...base, Env: ["a=2"] })).not.toBe(cacheKey(base));
    expect(cacheKey({ ...base, Shell: ["/bin/bash", "-c"] })).not.toBe(cacheKey(base));
    expect(cacheKey({ ...base, OnBuild: ["RUN x"] })).not.toBe(cacheKey(base));
    expect(cacheKey({ ...base, ExposedPorts: { "80/tcp": {} } })).not.toBe(cacheKey(base));
  });
});
