import { accessSync, constants } from "node:fs";
import { isAbsolute } from "node:path";
import type { LogOptions } from "../libcontainerd/types/client.js";
import { FailedPreconditionError, InvalidArgumentError } from "../libcontainerd/types/errors.js";
import { packagePath } from "../platform/package-dir.js";

/** Where scripts/setup.sh builds it; `CTRD_LOGGER` names another build. */
export function loggerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.CTRD_LOGGER ?? packagePath("native/ctrd-logger/build/ctrd-logger");
  try {
    accessSync(path, constants.X_OK);
  } catch (err) {
    throw new FailedPreconditionError(
      `the log driver ${path} is missing or not executable: build it with scripts/setup.sh (make -C native/ctrd-logger)`,
      { cause: err },
    );
  }
  return path;
}

/** Checks what the logger would otherwise refuse inside the shim, where nobody sees it. */
export function validateLogOptions(log: LogOptions, what: string): void {
  const bad = (why: string) => new InvalidArgumentError(`${what}: log ${why}`);
  if (typeof log !== "object" || log === null) throw bad("options must be an object");
  if (typeof log.path !== "string" || !isAbsolute(log.path)) throw bad("path must be an absolute path");
  if (log.path.includes("\0")) throw bad("path must not contain NUL");
  if (Buffer.byteLength(log.path) > 4000) throw bad("path is too long");
  if (log.maxSize !== undefined && (!Number.isSafeInteger(log.maxSize) || log.maxSize < 0))
    throw bad(`maxSize must be a non-negative integer (bytes), not ${String(log.maxSize)}`);
  if (log.maxFiles !== undefined && (!Number.isSafeInteger(log.maxFiles) || log.maxFiles < 1))
    throw bad(`maxFiles must be a positive integer, not ${String(log.maxFiles)}`);
}

/**
 * The shim's stdio URI: `binary://<logger>?path=…&max-size=…&max-files=…`. containerd passes the
 * query to the binary as key/value argument pairs (in no particular order).
 */
export function loggerUri(log: LogOptions, binary = loggerBinary()): string {
  const query = [`path=${encodeURIComponent(log.path)}`];
  if (log.maxSize) query.push(`max-size=${log.maxSize}`);
  if (log.maxFiles) query.push(`max-files=${log.maxFiles}`);
  const path = binary.split("/").map(encodeURIComponent).join("/");
  return `binary://${path}?${query.join("&")}`;
}
