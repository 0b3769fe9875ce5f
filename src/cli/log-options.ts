import { dirname, join } from "node:path";
import type { LogOptions } from "../libcontainerd/types/client.js";
import { parseSize } from "./container-spec.js";
import { usageError } from "./errors.js";
import type { GlobalSettings } from "./options.js";

/**
 * Where ctrd keeps a container's log: beside the managed containerd's data root (persistent, not
 * under /run), `<root>/../logs/<namespace>/<id>/<id>-json.log`, as Docker keeps
 * `<data-root>/containers/<id>/<id>-json.log`. Removed with the container.
 */
export function containerLogPath(settings: GlobalSettings, id: string): string {
  return join(dirname(settings.root), "logs", settings.namespace, id, `${id}-json.log`);
}

/** `--log-opt max-size=10m --log-opt max-file=3`, as Docker's json-file driver takes them. */
export function parseLogOpts(entries: readonly string[]): Pick<LogOptions, "maxSize" | "maxFiles"> {
  const options: Pick<LogOptions, "maxSize" | "maxFiles"> = {};
  for (const entry of entries) {
    const at = entry.indexOf("=");
    const key = at > 0 ? entry.slice(0, at) : "";
    const value = at > 0 ? entry.slice(at + 1) : "";
    if (key === "max-size") options.maxSize = parseSize(value, "--log-opt max-size");
    else if (key === "max-file") {
      const files = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(files) || files < 1)
        throw usageError(`invalid --log-opt max-file=${value}: want a positive integer`);
      options.maxFiles = files;
    } else {
      throw usageError(
        `invalid --log-opt ${JSON.stringify(entry)}: json-file takes max-size=SIZE and max-file=N`,
      );
    }
  }
  if (options.maxFiles !== undefined && options.maxFiles > 1 && options.maxSize === undefined)
    throw usageError("--log-opt max-file needs max-size (without it the log never rotates)");
  return options;
}
