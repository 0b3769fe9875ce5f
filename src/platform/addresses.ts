import { win32 } from "node:path";
import type { OperatingSystem } from "./detect.js";

/** Where a system containerd listens by default (containerd's `defaults.DefaultAddress`). */
export const DEFAULT_LINUX_CONTAINERD_ADDRESS = "/run/containerd/containerd.sock";
export const DEFAULT_WINDOWS_CONTAINERD_ADDRESS = "\\\\.\\pipe\\containerd-containerd";

/** The managed containerd's default directories (overridden by the client's `root` and `stateDir`). */
export const DEFAULT_MANAGED_ROOT = "/var/lib/libcontainerd/containerd";
export const DEFAULT_MANAGED_STATE_DIR = "/run/libcontainerd/containerd";

export function defaultContainerdAddress(os: OperatingSystem): string {
  return os === "windows" ? DEFAULT_WINDOWS_CONTAINERD_ADDRESS : DEFAULT_LINUX_CONTAINERD_ADDRESS;
}

/** The client's default state dir (FIFOs; the managed containerd's socket and state on Linux). */
export function defaultStateDir(
  os: OperatingSystem,
  env: Readonly<Record<string, string | undefined>> = {},
): string {
  if (os !== "windows") return DEFAULT_MANAGED_STATE_DIR;
  return win32.join(env.ProgramData ?? "C:\\ProgramData", "libcontainerd", "containerd");
}
