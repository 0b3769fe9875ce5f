import { join } from "node:path";

/**
 * Where the managed containerd keeps its files. `stateDir` is shared with the client (FIFOs live in
 * `<stateDir>/<namespace>/`, as in moby's `<exec-root>/containerd`); containerd's own state is a
 * subdirectory of it, and its data lives in `root`.
 */
export interface ManagedContainerdLayout {
  root: string;
  stateDir: string;
  /** containerd's `state` (shim bundles, runtime state). */
  daemonStateDir: string;
  socket: string;
  ttrpcSocket: string;
  configFile: string;
  pidFile: string;
  /** runc's state for the v1 runtime (`io.containerd.runtime.v1.linux`). */
  runcV1Root: string;
}

export function managedContainerdLayout(root: string, stateDir: string): ManagedContainerdLayout {
  const socket = join(stateDir, "containerd.sock");
  return {
    root,
    stateDir,
    daemonStateDir: join(stateDir, "daemon"),
    socket,
    ttrpcSocket: `${socket}.ttrpc`,
    configFile: join(stateDir, "containerd.toml"),
    pidFile: join(stateDir, "containerd.pid"),
    runcV1Root: join(stateDir, "runc-v1"),
  };
}
