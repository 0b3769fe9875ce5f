import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { FailedPreconditionError } from "../types/errors.js";

/** Where distribution packages and release tarballs put containerd, searched after PATH. */
export const CONTAINERD_FALLBACK_DIRS = ["/usr/bin", "/usr/local/bin"] as const;

export interface FindBinaryOptions {
  /** The name to look for; `containerd` unless a test says otherwise. */
  name?: string;
  /** Defaults to `process.env.PATH`. */
  path?: string;
  /** Searched after PATH; defaults to CONTAINERD_FALLBACK_DIRS. */
  extraDirs?: readonly string[];
}

function isExecutableFile(candidate: string): boolean {
  try {
    accessSync(candidate, constants.X_OK);
    return statSync(candidate).isFile();
  } catch {
    return false;
  }
}

/** The containerd binary to run: the first executable on PATH, then in the fallback dirs. */
export function findContainerdBinary(opts: FindBinaryOptions = {}): string {
  const name = opts.name ?? "containerd";
  const dirs = [
    ...(opts.path ?? process.env.PATH ?? "").split(delimiter),
    ...(opts.extraDirs ?? CONTAINERD_FALLBACK_DIRS),
  ].filter((dir) => dir !== "");
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new FailedPreconditionError(
    `cannot start a managed containerd: no executable "${name}" in ${dirs.length > 0 ? dirs.join(", ") : "(no directories)"}; ` +
      "install containerd, pass containerdBinary, or give a containerdAddress to use a running one",
  );
}

/** Checks an explicitly configured binary so a typo fails at start, not at the first restart. */
export function checkContainerdBinary(path: string): string {
  if (!isExecutableFile(path)) {
    throw new FailedPreconditionError(`cannot start a managed containerd: ${path} is not an executable file`);
  }
  return path;
}
