/** Checks and defaults of what callers pass in, the same for every backend. */
import { posix, win32 } from "node:path";
import { checkLinuxResources } from "../../oci/resources.js";
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import type { LogOptions, StdioOptions } from "../types/client.js";
import { InvalidArgumentError } from "../types/errors.js";

/** Stdio with every stream named. `terminal` stays undefined here when the caller left it to the spec. */
export interface Stdio {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  terminal: boolean;
  /** stdout and stderr to a log file instead of streams (the driver checks it). */
  log?: LogOptions;
}

/** A Windows container spec (HCS, or runhcs through containerd); LCOW specs carry `linux`. */
export function isWindowsSpec(spec: OciSpec | undefined): boolean {
  return spec !== undefined && spec.windows !== undefined && spec.linux === undefined;
}

/** What every backend needs of a spec; backend-specific rules (the rootfs) are the driver's. */
export function checkSpec(spec: unknown): asserts spec is OciSpec {
  if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw bad("spec must be an object");
  const s = spec as OciSpec;
  if (typeof s.ociVersion !== "string") throw bad("spec.ociVersion must be a string");
  checkProcess(s.process, "spec.process");
  // As Docker does: a relative working directory fails only inside the runtime, after FIFOs and bundle exist.
  const cwd = s.process?.cwd;
  if (s.windows === undefined && cwd !== undefined && !posix.isAbsolute(cwd))
    throw bad(`the working directory ${JSON.stringify(cwd)} is invalid: it must be an absolute path`);
  checkLinuxResources(s.linux?.resources, "spec.linux.resources");
}

export function checkProcess(process: unknown, name: string): asserts process is OciProcess {
  if (!process || typeof process !== "object") throw bad(`${name} must be an object`);
  const p = process as OciProcess;
  const hasArgs = Array.isArray(p.args) && p.args.length > 0;
  if (!hasArgs && !p.commandLine) throw bad(`${name}.args must be a non-empty array`);
  if (p.args !== undefined && (!Array.isArray(p.args) || p.args.some((a) => typeof a !== "string")))
    throw bad(`${name}.args must be an array of strings`);
  if (p.env !== undefined && (!Array.isArray(p.env) || p.env.some((e) => typeof e !== "string")))
    throw bad(`${name}.env must be an array of strings`);
  if (p.cwd !== undefined && typeof p.cwd !== "string") throw bad(`${name}.cwd must be a string`);
}

/** The caller's stdio, every stream named; `terminal` from the spec's process unless the caller set it. */
export function resolveStdio(stdio: StdioOptions | undefined, process: OciProcess | undefined): Stdio {
  if (stdio !== undefined && (stdio === null || typeof stdio !== "object"))
    throw bad("stdio must be an object");
  for (const key of ["stdin", "stdout", "stderr", "terminal"] as const) {
    const value = stdio?.[key];
    if (value !== undefined && typeof value !== "boolean") throw bad(`stdio.${key} must be a boolean`);
  }
  return {
    stdin: stdio?.stdin ?? false,
    stdout: stdio?.stdout ?? false,
    stderr: stdio?.stderr ?? false,
    terminal: stdio?.terminal ?? process?.terminal ?? false,
    ...(stdio?.log !== undefined ? { log: stdio.log } : {}),
  };
}

/**
 * As `docker exec` does: a process without an environment, working directory or user gets the
 * container's; the working directory must be absolute.
 */
export function execProcess(
  process: OciProcess,
  init: OciProcess | undefined,
  windows: boolean,
  terminal: boolean,
): OciProcess {
  const cwd = process.cwd || init?.cwd || (windows ? "C:\\" : "/");
  if (!(windows ? win32.isAbsolute(cwd) : posix.isAbsolute(cwd)))
    throw bad(`process.cwd must be an absolute path, not ${JSON.stringify(cwd)}`);
  const env = process.env ?? init?.env;
  const user = process.user ?? init?.user;
  return { ...process, cwd, terminal, ...(env ? { env } : {}), ...(user ? { user } : {}) };
}

export function checkAbsoluteDir(dir: unknown, name: string): string {
  if (typeof dir !== "string" || !(posix.isAbsolute(dir) || win32.isAbsolute(dir)))
    throw bad(`${name} must be an absolute path, not ${JSON.stringify(dir)}`);
  return dir;
}

export function checkTerminalSize(width: unknown, height: unknown): void {
  for (const [name, value] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff)
      throw bad(`terminal ${name} must be an integer from 0 to 65535, not ${String(value)}`);
  }
}

function bad(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message);
}
