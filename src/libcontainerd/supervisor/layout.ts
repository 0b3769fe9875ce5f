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
  /**
   * Written when a supervisor stops containerd on purpose (`ctrd daemon stop`, `shutdown()`), removed
   * when one starts it: the other supervisors on these dirs then let it stay stopped.
   */
  stoppedMarker: string;
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
    stoppedMarker: layout.stoppedMarker,
    runcV1Root: layout.runcV1Root,
  };
}
