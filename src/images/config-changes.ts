import { posix } from "node:path";
import { InvalidArgumentError } from "../libcontainerd/types/errors.js";
import { goDurationNs } from "../state/human-duration.js";
import type { ImageRunConfig } from "./media-types.js";

/**
 * The Dockerfile instructions `docker commit --change` and `docker import --change` may give
 * (moby's builder/dockerfile validCommitCommands); any other is refused.
 */
export const CHANGE_INSTRUCTIONS: ReadonlySet<string> = new Set([
  "cmd",
  "entrypoint",
  "healthcheck",
  "env",
  "expose",
  "label",
  "onbuild",
  "stopsignal",
  "user",
  "volume",
  "workdir",
]);

const ONBUILD_REFUSED = new Set(["onbuild", "from", "maintainer"]);

/** Signals a STOPSIGNAL may name (moby's signal.SignalMap, Linux). */
const SIGNALS = new Set([
  "ABRT",
  "ALRM",
  "BUS",
  "CHLD",
  "CLD",
  "CONT",
  "FPE",
  "HUP",
  "ILL",
  "INT",
  "IO",
  "IOT",
  "KILL",
  "PIPE",
  "POLL",
  "PROF",
  "PWR",
  "QUIT",
  "SEGV",
  "STKFLT",
  "STOP",
  "SYS",
  "TERM",
  "TRAP",
  "TSTP",
  "TTIN",
  "TTOU",
  "URG",
  "USR1",
  "USR2",
  "VTALRM",
  "WINCH",
  "XCPU",
  "XFSZ",
]);

function invalid(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message);
}

function envMap(config: ImageRunConfig, args?: ReadonlyMap<string, string>): Map<string, string> {
  const map = new Map<string, string>(args);
  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf("=");
    if (eq > 0) map.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return map;
}

/**
 * A Dockerfile word as the builder's shell lexer reads it: quotes removed ('…' literal, "…" with
 * `\` escapes), `$VAR` and `${VAR}` expanded from the config's Env, and (when `split`) separate
 * words at unquoted white space.
 */
export function words(text: string, env: ReadonlyMap<string, string>, split: boolean): string[] {
  const out: string[] = [];
  let current = "";
  let started = false;
  const expand = (from: number): number => {
    if (text[from + 1] === "{") {
      const end = text.indexOf("}", from + 2);
      if (end < 0) throw invalid(`missing '}' in ${JSON.stringify(text)}`);
      const body = text.slice(from + 2, end);
      const modifier = /^(\w+)(:[-+])(.*)$/.exec(body);
      if (modifier) {
        const value = env.get(modifier[1] ?? "") ?? "";
        current += modifier[2] === ":-" ? value || (modifier[3] ?? "") : value ? (modifier[3] ?? "") : "";
      } else current += env.get(body) ?? "";
      return end;
    }
    const name = /^\w+/.exec(text.slice(from + 1))?.[0];
    if (!name) {
      current += "$";
      return from;
    }
    current += env.get(name) ?? "";
    return from + name.length;
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i] ?? "";
    if (split && /\s/.test(char)) {
      if (started) out.push(current);
      current = "";
      started = false;
      continue;
    }
    started = true;
    if (char === "\\") {
      i++;
      current += text[i] ?? "";
    } else if (char === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw invalid(`unexpected end of statement while looking for matching single-quote`);
      current += text.slice(i + 1, end);
      i = end;
    } else if (char === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && ['"', "\\", "$"].includes(text[i + 1] ?? "")) current += text[++i];
        else if (text[i] === "$") i = expand(i);
        else current += text[i];
      }
      if (i >= text.length)
        throw invalid(`unexpected end of statement while looking for matching double-quote`);
    } else if (char === "$") i = expand(i);
    else current += char;
  }
  if (started) out.push(current);
  return out;
}

/** `["a", "b"]` as the exec form, or undefined for the shell form. */
export function jsonForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    if (Array.isArray(parsed) && parsed.every((item) => typeof item === "string")) return parsed;
  } catch {}
  return undefined;
}

/** CMD, ENTRYPOINT: the exec form as given, the shell form run by /bin/sh -c. */
function commandForm(args: string): string[] {
  return jsonForm(args) ?? ["/bin/sh", "-c", args];
}

/** `KEY=value …` pairs, or the legacy `KEY value with spaces` (ENV and LABEL). */
function nameValues(name: string, args: string, env: Map<string, string>): [string, string][] {
  if (args === "") throw invalid(`${name} requires at least one argument`);
  const first = /^\S+/.exec(args)?.[0] ?? "";
  if (!first.includes("=")) {
    const rest = args.slice(first.length).trim();
    if (rest === "") throw invalid(`${name} must have two arguments`);
    return [[words(first, env, false)[0] ?? "", words(rest, env, false)[0] ?? ""]];
  }
  return words(args, env, true).map((word) => {
    const eq = word.indexOf("=");
    if (eq <= 0) throw invalid(`${name} names can not be blank`);
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

/** A HEALTHCHECK flag's Go duration, in nanoseconds. */
function durationNs(flag: string, text: string): number {
  const ns = text === "0" ? 0 : goDurationNs(text);
  if (ns === undefined) throw invalid(`Error parsing --${flag}: time: invalid duration "${text}"`);
  return ns;
}

function healthcheck(args: string): NonNullable<ImageRunConfig["Healthcheck"]> {
  let rest = args;
  const flags = new Map<string, string>();
  for (let flag = /^--([\w-]+)=(\S*)\s*/.exec(rest); flag; flag = /^--([\w-]+)=(\S*)\s*/.exec(rest)) {
    flags.set(flag[1] ?? "", flag[2] ?? "");
    rest = rest.slice(flag[0].length);
  }
  const [kind = "", ...more] = rest.split(/\s+/);
  if (kind.toUpperCase() === "NONE") {
    if (more.join("") !== "" || flags.size > 0) throw invalid("HEALTHCHECK NONE takes no arguments");
    return { Test: ["NONE"] };
  }
  if (kind.toUpperCase() !== "CMD") throw invalid(`Unknown type "${kind}" in HEALTHCHECK (try CMD)`);
  const command = rest.slice(kind.length).trim();
  if (command === "") throw invalid("Missing command after HEALTHCHECK CMD");
  const exec = jsonForm(command);
  const check: NonNullable<ImageRunConfig["Healthcheck"]> = {
    Test: exec ? ["CMD", ...exec] : ["CMD-SHELL", command],
  };
  for (const [flag, value] of flags) {
    if (flag === "retries") {
      const retries = Number(value);
      if (!Number.isInteger(retries) || retries < 0) throw invalid(`--retries cannot be negative (${value})`);
      check.Retries = retries;
      continue;
    }
    const field = {
      interval: "Interval",
      timeout: "Timeout",
      "start-period": "StartPeriod",
      "start-interval": "StartInterval",
    }[flag];
    if (!field) throw invalid(`Unknown flag: ${flag}`);
    check[field as "Interval"] = durationNs(flag, value);
  }
  return check;
}

/** A change split into its instruction (lower case) and arguments, continuation lines joined. */
function instructions(changes: readonly string[]): { name: string; original: string; args: string }[] {
  const text = changes.join("\n").replace(/\\\r?\n/g, "");
  const out: { name: string; original: string; args: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const original = /^\S+/.exec(trimmed)?.[0] ?? "";
    out.push({ name: original.toLowerCase(), original, args: trimmed.slice(original.length).trim() });
  }
  return out;
}

/**
 * A new image config: `config` with the Dockerfile instructions of `changes` applied, as dockerd's
 * BuildFromConfig does for commit and import. InvalidArgumentError (a 400) for an instruction
 * that is not allowed or is malformed, with dockerd's wording. A build's ARGs (`buildArgs`) are substituted
 * as the Env is, the Env winning, but are not kept.
 */
export function applyConfigChanges(
  config: ImageRunConfig,
  changes: readonly string[],
  buildArgs?: ReadonlyMap<string, string>,
): ImageRunConfig {
  const parsed = instructions(changes);
  for (const { name } of parsed)
    if (!CHANGE_INSTRUCTIONS.has(name)) throw invalid(`${name} is not a valid change command`);
  const next: ImageRunConfig = structuredClone(config);
  let cmdSet = false;
  for (const { name, args } of parsed) {
    const env = envMap(next, buildArgs);
    switch (name) {
      case "cmd":
        next.Cmd = commandForm(args);
        cmdSet = true;
        break;
      case "entrypoint":
        next.Entrypoint = args === "" ? null : commandForm(args);
        // As the builder: an ENTRYPOINT resets a CMD that was not given alongside it.
        if (!cmdSet) next.Cmd = null;
        break;
      case "env": {
        const list = [...(next.Env ?? [])];
        for (const [key, value] of nameValues("ENV", args, env)) {
          const entry = `${key}=${value}`;
          const at = list.findIndex((item) => item.split("=", 1)[0] === key);
          if (at >= 0) list[at] = entry;
          else list.push(entry);
          env.set(key, value);
        }
        next.Env = list;
        break;
      }
      case "label":
        next.Labels = { ...next.Labels, ...Object.fromEntries(nameValues("LABEL", args, env)) };
        break;
      case "expose": {
        const ports = words(args, env, true);
        if (ports.length === 0) throw invalid("EXPOSE requires at least one argument");
        const exposed: Record<string, object> = { ...next.ExposedPorts };
        for (const port of ports) {
          const match = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(port);
          const first = Number(match?.[1]);
          const last = match?.[2] === undefined ? first : Number(match[2]);
          if (!match || first < 1 || last > 65535 || last < first)
            throw invalid(`Invalid containerPort: ${port}`);
          for (let number = first; number <= last; number++)
            exposed[`${number}/${(match[3] ?? "tcp").toLowerCase()}`] = {};
        }
        next.ExposedPorts = exposed;
        break;
      }
      case "user": {
        const user = words(args, env, true);
        if (user.length !== 1) throw invalid("USER requires exactly one argument");
        next.User = user[0] ?? "";
        break;
      }
      case "workdir": {
        const dir = words(args, env, true);
        if (dir.length !== 1) throw invalid("WORKDIR requires exactly one argument");
        next.WorkingDir = posix.resolve(next.WorkingDir || "/", dir[0] ?? "");
        break;
      }
      case "volume": {
        const paths = jsonForm(args) ?? words(args, env, true);
        if (paths.length === 0) throw invalid("VOLUME requires at least one argument");
        const volumes: Record<string, object> = { ...next.Volumes };
        for (const path of paths) {
          if (path.trim() === "") throw invalid("VOLUME specified can not be an empty string");
          volumes[path] = {};
        }
        next.Volumes = volumes;
        break;
      }
      case "stopsignal": {
        const signal = words(args, env, true);
        if (signal.length !== 1) throw invalid("STOPSIGNAL requires exactly one argument");
        const value = signal[0] ?? "";
        const known = /^\d+$/.test(value)
          ? Number(value) > 0 && Number(value) <= 64
          : SIGNALS.has(value.toUpperCase().replace(/^SIG/, "")) || /^SIGRTM(IN|AX)([+-]\d+)?$/i.test(value);
        if (!known) throw invalid(`Invalid signal: ${value}`);
        next.StopSignal = value;
        break;
      }
      case "healthcheck":
        next.Healthcheck = healthcheck(args);
        break;
      case "onbuild": {
        const trigger = /^\S+/.exec(args)?.[0]?.toLowerCase() ?? "";
        if (trigger === "") throw invalid("ONBUILD requires at least one argument");
        if (ONBUILD_REFUSED.has(trigger))
          throw invalid(`${trigger.toUpperCase()} isn't allowed as an ONBUILD trigger`);
        next.OnBuild = [...(next.OnBuild ?? []), args];
        break;
      }
    }
  }
  return next;
}
