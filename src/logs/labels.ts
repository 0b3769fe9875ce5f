import type { LogOptions } from "../libcontainerd/types/client.js";

/** Where a container's log is, recorded on it when a task is created with a log. */
export const LOG_LABELS = {
  path: "io.ctrd.log.path",
  maxSize: "io.ctrd.log.maxSize",
  maxFiles: "io.ctrd.log.maxFiles",
  /** `none` when the container was run to keep no log (`--log-driver none`): a start keeps none either. */
  driver: "io.ctrd.log.driver",
} as const;

export function logLabels(log: LogOptions): Record<string, string | undefined> {
  return {
    [LOG_LABELS.path]: log.path,
    [LOG_LABELS.maxSize]: log.maxSize ? String(log.maxSize) : undefined,
    [LOG_LABELS.maxFiles]: log.maxFiles ? String(log.maxFiles) : undefined,
  };
}

/** The log a container was last started with, to start it again with the same one. */
export function logOptionsFromLabels(labels: Record<string, string>): LogOptions | undefined {
  const path = labels[LOG_LABELS.path];
  if (!path) return undefined;
  const log: LogOptions = { path };
  const maxSize = Number(labels[LOG_LABELS.maxSize]);
  const maxFiles = Number(labels[LOG_LABELS.maxFiles]);
  if (Number.isSafeInteger(maxSize) && maxSize > 0) log.maxSize = maxSize;
  if (Number.isSafeInteger(maxFiles) && maxFiles > 0) log.maxFiles = maxFiles;
  return log;
}
