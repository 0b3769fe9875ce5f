import { jsonForm } from "../../images/config-changes.js";
import { badRequest } from "../errors.js";

/** One Dockerfile instruction, as moby's parser reads it (builder/dockerfile/parser). */
export interface Instruction {
  /** Lower case: `from`, `run`, … */
  name: string;
  /** The instruction as written, continuation lines joined (what `Step N/M : …` shows). */
  original: string;
  /** `--name=value` flags before the arguments (COPY --from, --chown; FROM --platform). */
  flags: Map<string, string>;
  /** The arguments after the flags, as written. */
  args: string;
  /** The exec (JSON) form's words, when the arguments are a JSON array of strings. */
  json?: string[];
  line: number;
}

/** Instructions whose leading `--flag=value` words are flags (the others take `--` as an argument). */
const FLAGGED = new Set(["from", "copy", "add", "run"]);

/** Instructions that take the exec form. */
const JSON_FORM = new Set(["run", "cmd", "entrypoint", "shell", "volume", "copy", "add"]);

export const KNOWN_INSTRUCTIONS = new Set([
  "from",
  "run",
  "cmd",
  "entrypoint",
  "env",
  "arg",
  "workdir",
  "copy",
  "add",
  "expose",
  "label",
  "user",
  "volume",
  "stopsignal",
  "healthcheck",
  "shell",
  "onbuild",
  "maintainer",
]);

/** The parser directives (`# escape=`, `# syntax=`) at the top of a Dockerfile. */
function directives(lines: readonly string[]): { escapeChar: string; consumed: number } {
  let escapeChar = "\\";
  let consumed = 0;
  const seen = new Set<string>();
  for (const line of lines) {
    const match = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line);
    if (!match) break;
    const name = (match[1] ?? "").toLowerCase();
    if (seen.has(name)) throw badRequest(`only one ${name} parser directive can be used`);
    seen.add(name);
    if (name === "escape") {
      if (match[2] !== "\\" && match[2] !== "`")
        throw badRequest(`invalid ESCAPE '${match[2]}'. Must be \` or \\`);
      escapeChar = match[2];
    }
    consumed++;
  }
  return { escapeChar, consumed };
}

/**
 * A Dockerfile's instructions: parser directives read, comment lines dropped (also inside a
 * continuation), lines ending in the escape character joined with the next, flags split off, the
 * JSON form recognised. A 400 for an unknown instruction or an empty continuation at the end.
 */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const { escapeChar, consumed } = directives(lines);
  const continuation = new RegExp(`\\${escapeChar}[ \\t]*$`);
  const out: Instruction[] = [];
  let pending = "";
  let startLine = 0;
  for (let index = consumed; index < lines.length; index++) {
    const line = lines[index] ?? "";
    const trimmed = line.trimStart();
    if (trimmed.startsWith("#")) continue;
    // An empty line, also inside a continuation (where moby skips it with a deprecation warning).
    if (trimmed === "") continue;
    if (pending === "") startLine = index + 1;
    // A continuation line keeps its leading white space (moby's processLine without stripLeftWhitespace).
    const text = pending === "" ? trimmed : line;
    if (continuation.test(text)) {
      pending += text.replace(continuation, "");
      continue;
    }
    pending += text;
    const instruction = parseLine(pending.trim(), startLine);
    if (instruction) out.push(instruction);
    pending = "";
  }
  if (pending.trim() !== "") {
    const instruction = parseLine(pending.trim(), startLine);
    if (instruction) out.push(instruction);
  }
  return out;
}

function parseLine(text: string, line: number): Instruction | undefined {
  if (text === "") return undefined;
  const word = /^\S+/.exec(text)?.[0] ?? "";
  const name = word.toLowerCase();
  if (!KNOWN_INSTRUCTIONS.has(name))
    throw badRequest(`dockerfile parse error line ${line}: unknown instruction: ${word.toUpperCase()}`);
  let args = text.slice(word.length).trim();
  const flags = new Map<string, string>();
  if (FLAGGED.has(name)) {
    for (let flag = /^--([\w-]+)(?:=(\S*))?(?:\s+|$)/.exec(args); flag; ) {
      flags.set((flag[1] ?? "").toLowerCase(), flag[2] ?? "");
      args = args.slice(flag[0].length);
      flag = /^--([\w-]+)(?:=(\S*))?(?:\s+|$)/.exec(args);
    }
  }
  const json = JSON_FORM.has(name) ? jsonForm(args) : undefined;
  return { name, original: text, flags, args, ...(json ? { json } : {}), line };
}
