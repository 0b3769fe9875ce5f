import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { commandLineFor, escapeArg, joinCommandLine } from "../../src/libcontainerd/local/command-line.js";

/** CommandLineToArgvW's splitting (what Windows and the fake apply to HCS's CommandLine). */
function commandLineToArgv(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  // argv[0]: up to the closing quote, or to whitespace; no escapes.
  let first = "";
  if (line[0] === '"') {
    i = 1;
    while (i < line.length && line[i] !== '"') first += line[i++];
    i++;
  } else {
    while (i < line.length && line[i] !== " " && line[i] !== "\t") first += line[i++];
  }
  args.push(first);
  while (i < line.length) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) break;
    let arg = "";
    let quoted = false;
    while (i < line.length) {
      const ch = line[i]!;
      if (!quoted && (ch === " " || ch === "\t")) break;
      if (ch === "\\") {
        let n = 0;
        while (line[i] === "\\") {
          n++;
          i++;
        }
        if (line[i] === '"') {
          arg += "\\".repeat(Math.floor(n / 2));
          if (n % 2 === 1) {
            arg += '"';
            i++;
          }
        } else {
          arg += "\\".repeat(n);
        }
        continue;
      }
      if (ch === '"') {
        if (quoted && line[i + 1] === '"') {
          arg += '"';
          i += 2;
          continue;
        }
        quoted = !quoted;
        i++;
        continue;
      }
      arg += ch;
      i++;
    }
    args.push(arg);
  }
  return args;
}

describe("escapeArg (Go syscall.EscapeArg)", () => {
  it.each([
    ["", '""'],
    ["plain", "plain"],
    ["two words", '"two words"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["C:\\path\\", "C:\\path\\"],
    ["C:\\with space\\", '"C:\\with space\\\\"'],
    ['back\\"quote', 'back\\\\\\"quote'],
    ["tab\there", '"tab\there"'],
  ])("%j → %s", (arg, escaped) => {
    expect(escapeArg(arg)).toBe(escaped);
  });

  it("round-trips through CommandLineToArgvW for any arguments", () => {
    const program = fc.stringMatching(/^[A-Za-z0-9_.:\\/-]{1,12}$/);
    const arg = fc.string({ unit: fc.constantFrom("a", "b", " ", "\t", '"', "\\", "x", "é") });
    fc.assert(
      fc.property(program, fc.array(arg, { maxLength: 6 }), (prog, rest) => {
        const args = [prog, ...rest];
        expect(commandLineToArgv(joinCommandLine(args))).toEqual(args);
      }),
      { numRuns: 500 },
    );
  });
});

describe("commandLineFor", () => {
  it("prefers commandLine", () => {
    expect(commandLineFor({ commandLine: "cmd /c echo hi", args: ["ignored"] })).toBe("cmd /c echo hi");
  });
  it("joins args", () => {
    expect(commandLineFor({ args: ["sh", "-c", "exit 7"] })).toBe('sh -c "exit 7"');
  });
  it("refuses a process without either", () => {
    expect(() => commandLineFor({ args: [] })).toThrow(/neither commandLine nor args/);
  });
});
