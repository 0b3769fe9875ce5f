import { describe, expect, it } from "vitest";
import { isIgnored, parseDockerignore } from "../../src/engine/build/context.js";
import { parseDockerfile } from "../../src/engine/build/dockerfile.js";

describe("parseDockerfile", () => {
  it("joins continuations (skipping comment lines inside), reads flags and the JSON form", () => {
    const parsed = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "FROM busybox AS base",
        "",
        "RUN echo one \\",
        "# a comment inside the continuation",
        "",
        "    && echo two",
        'CMD ["sh", "-c", "echo"]',
        "COPY --from=base --chown=1:2 /a /b",
        "cmd not json",
      ].join("\n"),
    );
    expect(parsed.map((instruction) => instruction.name)).toEqual(["from", "run", "cmd", "copy", "cmd"]);
    expect(parsed[1]?.args).toBe("echo one     && echo two");
    expect(parsed[1]?.line).toBe(4);
    expect(parsed[2]?.original).toBe('CMD ["sh", "-c", "echo"]');
    expect(parsed[2]?.json).toEqual(["sh", "-c", "echo"]);
    expect(parsed[3]?.flags).toEqual(
      new Map([
        ["from", "base"],
        ["chown", "1:2"],
      ]),
    );
    expect(parsed[3]?.args).toBe("/a /b");
    expect(parsed[4]?.json).toBeUndefined();
  });

  it("takes a backtick escape directive, and refuses an unknown instruction with its line", () => {
    const parsed = parseDockerfile(
      ["# escape=`", "FROM busybox", "RUN dir c:\\ `", "  && echo x"].join("\n"),
    );
    expect(parsed[1]?.args).toBe("dir c:\\   && echo x");
    expect(() => parseDockerfile("FROM busybox\nFETCH x")).toThrow(
      "dockerfile parse error line 2: unknown instruction: FETCH",
    );
  });
});

describe(".dockerignore", () => {
  it("matches as moby's patternmatcher: parents, `**`, and exclusions by the last matching pattern", () => {
    const patterns = parseDockerignore("# comment\n/secret\n**/*.log\nbuild/\n!build/keep.txt\n");
    expect(isIgnored(patterns, "secret")).toBe(true);
    expect(isIgnored(patterns, "secret/inner.txt")).toBe(true);
    expect(isIgnored(patterns, "a/b/c.log")).toBe(true);
    expect(isIgnored(patterns, "top.log")).toBe(true);
    expect(isIgnored(patterns, "build/out.o")).toBe(true);
    expect(isIgnored(patterns, "build/keep.txt")).toBe(false);
    expect(isIgnored(patterns, "src/main.c")).toBe(false);
  });
});
