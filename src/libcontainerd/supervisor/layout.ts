import { stateDirLayout } from "../../platform/state-dir.js";

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
  const layout = stateDirLayout(stateDir);
  return {
    root,
    stateDir,
    daemonStateDir: layout.daemonState,
    socket: layout.socket,
    ttrpcSocket: layout.ttrpcSocket,
    configFile: layout.config,
    pidFile: layout.pidFile,
    runcV1Root: layout.runcV1Root,
  };
}
