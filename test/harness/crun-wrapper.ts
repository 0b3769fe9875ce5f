import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { quoteShellArgument } from "../../src/runtime/wrapper-script.js";
import { requireBinary } from "./binaries.js";

/**
 * crun 1.8 refuses cgroup "hybrid mode": cgroup v1 hierarchies plus a cgroup2 mount at
 * /sys/fs/cgroup/unified, which is how this host (and many systemd hosts) are set up. runc copes.
 * In a private mount namespace with that one mount removed, crun sees plain cgroup v1 and works;
 * nothing outside the namespace changes.
 *
 * `unshare` execs in place (no fork), and so does the inner `sh`, so the shim's child pid is crun's
 * and exit statuses and signals pass straight through.
 */
export function crunWrapperScript(crunPath: string, unsharePath: string): string {
  return `#!/bin/sh
exec ${quoteShellArgument(unsharePath)} --mount --propagation private /bin/sh -c '
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 125; fi
exec "$0" "$@"' ${quoteShellArgument(crunPath)} "$@"
`;
}

/** Writes the wrapper into `dir` (mode 0755) and returns its path, to be registered as a runtime `path`. */
export function writeCrunWrapper(dir: string): string {
  const path = join(dir, "crun-unified-hidden");
  writeFileSync(path, crunWrapperScript(requireBinary("crun"), requireBinary("unshare")), { mode: 0o755 });
  return path;
}
