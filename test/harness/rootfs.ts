import { buildBusyboxRootfs as buildRootfs, FALLBACK_APPLETS } from "../../src/cli/rootfs.js";
import { requireBinary } from "./binaries.js";

/** A minimal root filesystem: busybox-static and its applets, plus the directories runc mounts onto. */
export function buildBusyboxRootfs(dir: string): string {
  return buildRootfs(dir, requireBinary("busybox"), FALLBACK_APPLETS);
}
