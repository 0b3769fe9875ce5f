import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import {
  ensureWrapperScript,
  quoteShellArgument,
  wrapperScriptContent,
  wrapperScriptFileName,
} from "../../src/runtime/wrapper-script.js";

let dir: string;
/** A stand-in runtime that prints each argument it got, NUL-terminated, so any byte is visible. */
let argvPrinter: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lcd-wrapper-"));
  argvPrinter = join(dir, "print argv 'runtime'");
  writeFileSync(argvPrinter, `#!/bin/sh\nfor arg in "$@"; do printf '%s\\0' "$arg"; done\n`, { mode: 0o755 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a wrapper script with sh, as the shim would exec it, and returns the argv the runtime saw. */
function argvThrough(script: string, shimArgs: string[]): string[] {
  const path = join(dir, `script-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, script, { mode: 0o700 });
  const output = execFileSync("sh", [path, ...shimArgs], { encoding: "utf8" });
  rmSync(path);
  expect(output.endsWith("\0") || output === "").toBe(true);
  return output === "" ? [] : output.slice(0, -1).split("\0");
}

const hostileArguments = [
  "--log-level=debug",
  "with space",
  "  leading and trailing  ",
  "",
  "'",
  "''",
  `'\\''`,
  '"double"',
  "$(touch /tmp/lcd-pwned-by-wrapper)",
  "`touch /tmp/lcd-pwned-by-wrapper`",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion the script must not perform
  "$HOME ${PATH} $1 $@ $*",
  "multi\nline\n",
  "tab\there",
  "back\\slash\\",
  "* ? [a-z] ~",
  "; rm -rf / ; & | > < ( ) { } !",
  "-n",
  "--",
  "ünïcödé ✓ 🌍",
  "\r\n\u0001\u007f",
];

describe("wrapper script quoting", () => {
  test("hostile runtimeArgs reach the runtime verbatim, followed by the shim's arguments", () => {
    const shimArgs = ["--root", "/run/x y", "create", "--bundle", "/b $(id)", "ctr-1"];
    const script = wrapperScriptContent(argvPrinter, hostileArguments);
    expect(argvThrough(script, shimArgs)).toEqual([...hostileArguments, ...shimArgs]);
    expect(() => statSync("/tmp/lcd-pwned-by-wrapper")).toThrow();
  });

  test('the script is `exec <quoted path> <quoted args> "$@"`', () => {
    expect(wrapperScriptContent("/usr/bin/crun", ["--debug", "it's"])).toBe(
      `#!/bin/sh\nexec '/usr/bin/crun' '--debug' 'it'\\''s' "$@"\n`,
    );
    expect(quoteShellArgument("")).toBe("''");
  });

  test("property: any NUL-free arguments round-trip through sh", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: "grapheme", maxLength: 12 }).filter((arg) => !arg.includes("\0")),
          { maxLength: 6 },
        ),
        fc.array(
          fc.string({ unit: "binary-ascii", maxLength: 8 }).filter((arg) => !arg.includes("\0")),
          {
            maxLength: 3,
          },
        ),
        (runtimeArgs, shimArgs) => {
          expect(argvThrough(wrapperScriptContent(argvPrinter, runtimeArgs), shimArgs)).toEqual([
            ...runtimeArgs,
            ...shimArgs,
          ]);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("wrapper script files", () => {
  test("named by content: same content → same name, different content → different name", () => {
    const a = wrapperScriptContent("/usr/bin/crun", ["--debug"]);
    const b = wrapperScriptContent("/usr/bin/crun", ["--debug", "x"]);
    expect(wrapperScriptFileName("crun", a)).toBe(wrapperScriptFileName("crun", a));
    expect(wrapperScriptFileName("crun", a)).not.toBe(wrapperScriptFileName("crun", b));
    expect(wrapperScriptFileName("crun", a)).toMatch(/^crun\.[0-9a-f]{64}$/);
    expect(wrapperScriptFileName("weird name/../x", a)).toMatch(/^weird_name_\.\._x\.[0-9a-f]{64}$/);
  });

  test("written with mode 0700, atomically, and left alone when already present", async () => {
    const scripts = join(dir, "scripts");
    const content = wrapperScriptContent(argvPrinter, ["a b"]);
    const path = join(scripts, wrapperScriptFileName("x", content));
    await ensureWrapperScript(path, scripts, content);
    expect(readFileSync(path, "utf8")).toBe(content);
    expect(statSync(path).mode & 0o777).toBe(0o700);
    expect(statSync(scripts).mode & 0o777).toBe(0o700);
    const inode = statSync(path).ino;
    await Promise.all([1, 2, 3].map(() => ensureWrapperScript(path, scripts, content)));
    expect(statSync(path).ino).toBe(inode);
    expect(readdirSync(scripts)).toEqual([wrapperScriptFileName("x", content)]);
  });

  test("a reload with new args gets a new script and keeps the old one for running containers", async () => {
    const wrapperDir = join(dir, "reload");
    const lookPath = async (command: string) => command;
    const before = new RuntimeRegistry({
      stateDir: dir,
      wrapperDir,
      lookPath,
      runtimes: { logged: { path: argvPrinter, runtimeArgs: ["--one"] } },
    });
    const after = new RuntimeRegistry({
      stateDir: dir,
      wrapperDir,
      lookPath,
      runtimes: { logged: { path: argvPrinter, runtimeArgs: ["--two"] } },
    });
    await before.resolve("logged");
    await after.resolve("logged");
    const [oldScript = "", newScript = ""] = [before, after].map(
      (registry) => registry.list().find((r) => r.name === "logged")?.wrapperScript ?? "",
    );
    expect(oldScript).not.toBe(newScript);
    expect(readdirSync(wrapperDir).sort()).toEqual(
      [oldScript, newScript].map((p) => p.slice(wrapperDir.length + 1)).sort(),
    );
    expect(argvThrough(readFileSync(oldScript, "utf8"), ["run"])).toEqual(["--one", "run"]);
    expect(argvThrough(readFileSync(newScript, "utf8"), ["run"])).toEqual(["--two", "run"]);
  });
});
