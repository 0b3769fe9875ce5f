import { InvalidArgumentError } from "../errors.js";
import { describeJsonType, isPlainObject } from "./json-shape.js";
import {
  isPermissibleContainerdRuntimeName,
  looksLikeAbsolutePath,
  RESERVED_RUNTIME_NAMES,
} from "./names.js";
import { shimOptionsFor } from "./shim-options.js";
import type { RuntimeConfig } from "./types.js";

/** What this library reads from daemon.json; every other key belongs to someone else and is ignored. */
export interface DaemonRuntimeSettings {
  runtimes?: Record<string, RuntimeConfig>;
  defaultRuntime?: string;
}

const ENTRY_KEYS = ["path", "runtimeArgs", "runtimeType", "options"] as const;

/**
 * Lower-cases like `dockerd --add-runtime` and refuses names that cannot be runtimes: reserved
 * (stock) names, and names with `/` or absolute ones, which containerd would exec as a shim path.
 */
export function normalizeRuntimeName(name: string): string {
  const normalized = name.toLowerCase();
  if (normalized === "") throw new InvalidArgumentError("runtime name must not be empty");
  if (RESERVED_RUNTIME_NAMES.has(normalized)) {
    throw new InvalidArgumentError(`runtime name '${normalized}' is reserved`);
  }
  if (normalized.includes("/") || normalized.includes("\\") || looksLikeAbsolutePath(normalized)) {
    throw new InvalidArgumentError(
      `runtime name '${name}' is invalid: it must not contain '/' or '\\' or be an absolute path`,
    );
  }
  if (normalized.includes("\0")) throw new InvalidArgumentError(`runtime name '${name}' contains a NUL byte`);
  return normalized;
}

function requireString(runtime: string, key: string, value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw new InvalidArgumentError(
      `runtime '${runtime}': '${key}' must be a non-empty string, got ${value === "" ? "an empty string" : describeJsonType(value)}`,
    );
  }
  if (value.includes("\0"))
    throw new InvalidArgumentError(`runtime '${runtime}': '${key}' contains a NUL byte`);
  return value;
}

/**
 * Checks one entry of daemon.json's `runtimes` the way dockerd does: `path` (+ `runtimeArgs`) xor
 * `runtimeType` (+ `options`). `shim` is refused outright: dockerd only sets it in code, because an
 * arbitrary shim needs a typed options message that daemon.json cannot express.
 */
export function validateRuntimeEntry(name: string, entry: unknown): RuntimeConfig {
  if (!isPlainObject(entry)) {
    throw new InvalidArgumentError(
      `runtime '${name}': its configuration must be an object, got ${describeJsonType(entry)}`,
    );
  }
  for (const key of Object.keys(entry)) {
    if (key === "shim") {
      throw new InvalidArgumentError(
        `runtime '${name}': key 'shim' is not allowed in daemon.json; shim configuration is set in code only ` +
          `(use 'runtimeType' and 'options' to choose a containerd shim)`,
      );
    }
    if (!(ENTRY_KEYS as readonly string[]).includes(key)) {
      throw new InvalidArgumentError(
        `runtime '${name}': unknown key '${key}' (allowed: ${ENTRY_KEYS.join(", ")})`,
      );
    }
  }
  const has = (key: string) => Object.hasOwn(entry, key) && entry[key] !== undefined;
  if (has("path") && has("runtimeType")) {
    throw new InvalidArgumentError(`runtime '${name}': 'path' and 'runtimeType' cannot both be set`);
  }
  if (has("options") && !has("runtimeType")) {
    throw new InvalidArgumentError(`runtime '${name}': 'options' is only allowed with 'runtimeType'`);
  }
  if (has("runtimeArgs") && !has("path")) {
    throw new InvalidArgumentError(`runtime '${name}': 'runtimeArgs' is only allowed with 'path'`);
  }
  if (has("path")) {
    const path = requireString(name, "path", entry.path);
    if (path.includes("/") && !looksLikeAbsolutePath(path)) {
      throw new InvalidArgumentError(
        `runtime '${name}': 'path' must be absolute or a command name found on PATH, got relative path '${path}'`,
      );
    }
    if (!has("runtimeArgs")) return { path };
    const args = entry.runtimeArgs;
    if (!Array.isArray(args) || !args.every((arg): arg is string => typeof arg === "string")) {
      throw new InvalidArgumentError(
        `runtime '${name}': 'runtimeArgs' must be an array of strings, got ${describeJsonType(args)}`,
      );
    }
    if (args.some((arg) => arg.includes("\0"))) {
      throw new InvalidArgumentError(`runtime '${name}': 'runtimeArgs' contains a NUL byte`);
    }
    return { path, runtimeArgs: [...args] };
  }
  if (has("runtimeType")) {
    const runtimeType = requireString(name, "runtimeType", entry.runtimeType);
    // A shim given by absolute path is fine from the operator's own configuration (containerd
    // 1.6 execs it); only names that are neither are refused.
    if (!isPermissibleContainerdRuntimeName(runtimeType) && !looksLikeAbsolutePath(runtimeType)) {
      throw new InvalidArgumentError(
        `runtime '${name}': 'runtimeType' '${runtimeType}' is neither a containerd shim name ` +
          `(like io.containerd.kata.v2) nor an absolute path to a shim`,
      );
    }
    if (!has("options")) return { runtimeType };
    if (!isPlainObject(entry.options)) {
      throw new InvalidArgumentError(
        `runtime '${name}': 'options' must be an object, got ${describeJsonType(entry.options)}`,
      );
    }
    const options = { ...entry.options };
    // Converting now reports a bad option where the document is read, not at first use.
    shimOptionsFor(name, runtimeType, options);
    return { runtimeType, options };
  }
  throw new InvalidArgumentError(`runtime '${name}': one of 'path' or 'runtimeType' is required`);
}

/**
 * Validates a whole `runtimes` map: names normalized, entries checked, and two spellings of one
 * name (`Kata` and `kata`) refused rather than one silently winning.
 */
export function validateRuntimes(runtimes: unknown, source = "'runtimes'"): Map<string, RuntimeConfig> {
  if (!isPlainObject(runtimes)) {
    throw new InvalidArgumentError(
      `${source} must be an object of runtime name → configuration, got ${describeJsonType(runtimes)}`,
    );
  }
  const validated = new Map<string, RuntimeConfig>();
  const spelledAs = new Map<string, string>();
  for (const [name, entry] of Object.entries(runtimes)) {
    const normalized = normalizeRuntimeName(name);
    const earlier = spelledAs.get(normalized);
    if (earlier !== undefined) {
      throw new InvalidArgumentError(
        `runtime '${normalized}' is defined twice in ${source} (as '${earlier}' and '${name}')`,
      );
    }
    spelledAs.set(normalized, name);
    validated.set(normalized, validateRuntimeEntry(normalized, entry));
  }
  return validated;
}

/** `--add-runtime name=path`, as dockerd parses it (split at the first `=`). */
export function parseAddRuntime(flag: string): { name: string; config: RuntimeConfig } {
  const equals = flag.indexOf("=");
  if (equals <= 0 || equals === flag.length - 1) {
    throw new InvalidArgumentError(`--add-runtime '${flag}' must have the form name=path`);
  }
  const name = normalizeRuntimeName(flag.slice(0, equals));
  return { name, config: validateRuntimeEntry(name, { path: flag.slice(equals + 1) }) };
}

/** Reads `runtimes` and `default-runtime` from a daemon.json document (text or already parsed). */
export function parseDaemonJson(document: unknown): DaemonRuntimeSettings {
  let parsed: unknown = document;
  if (typeof document === "string") {
    try {
      parsed = JSON.parse(document);
    } catch (err) {
      throw new InvalidArgumentError(`daemon.json is not valid JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (!isPlainObject(parsed)) {
    throw new InvalidArgumentError(`daemon.json must hold a JSON object, got ${describeJsonType(parsed)}`);
  }
  const settings: DaemonRuntimeSettings = {};
  if (Object.hasOwn(parsed, "runtimes") && parsed.runtimes !== undefined) {
    settings.runtimes = Object.fromEntries(validateRuntimes(parsed.runtimes, "daemon.json 'runtimes'"));
  }
  const defaultRuntime = parsed["default-runtime"];
  if (Object.hasOwn(parsed, "default-runtime") && defaultRuntime !== undefined) {
    if (typeof defaultRuntime !== "string" || defaultRuntime === "") {
      throw new InvalidArgumentError(
        `daemon.json 'default-runtime' must be a non-empty string, got ${describeJsonType(defaultRuntime)}`,
      );
    }
    settings.defaultRuntime = defaultRuntime;
  }
  return settings;
}
