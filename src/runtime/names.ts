/** containerd's shim for runc (and any runc-compatible binary via `BinaryName`). */
export const RUNC_V2_SHIM = "io.containerd.runc.v2";
/** The legacy shim API; containerd 1.6 still ships it (deprecated since 1.4). */
export const RUNC_V1_SHIM = "io.containerd.runtime.v1.linux";
export const RUNHCS_V1_SHIM = "io.containerd.runhcs.v1";
export const RUNC_RUNTIME = "runc";

export const LINUX_STOCK_RUNTIMES: readonly string[] = [RUNC_RUNTIME, RUNC_V2_SHIM, RUNC_V1_SHIM];
export const WINDOWS_STOCK_RUNTIMES: readonly string[] = [RUNHCS_V1_SHIM];

/**
 * Names a user may never define, on any platform: redefining a stock runtime would silently
 * change what existing containers run with.
 */
export const RESERVED_RUNTIME_NAMES: ReadonlySet<string> = new Set([
  ...LINUX_STOCK_RUNTIMES,
  ...WINDOWS_STOCK_RUNTIMES,
]);

/** An absolute path on either platform: containerd treats such a runtime name as a shim binary to exec. */
export function looksLikeAbsolutePath(name: string): boolean {
  return name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name);
}

/**
 * Whether containerd would accept `name` as a shim name without it being a path, like
 * `io.containerd.kata.v2` (moby's isPermissibleC8dRuntimeName). containerd derives the shim binary
 * from the dotted name; a name with `/` or an absolute one would be exec'd as a path, which from a
 * per-container request is a code-execution vector, so those are refused.
 */
export function isPermissibleContainerdRuntimeName(name: string): boolean {
  if (looksLikeAbsolutePath(name) || name.includes("/") || name.includes("\\") || name.includes("\0")) {
    return false;
  }
  const parts = name.split(".");
  return parts.length >= 2 && parts[0] !== "";
}
