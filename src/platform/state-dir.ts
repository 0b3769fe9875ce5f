/**
 * Every name inside a client's state dir, in one place. The dir is shared: the managed containerd
 * keeps its socket, config, pid file and state there, runc keeps its state there, ctrd its
 * networks and rootfs, and each namespace gets `<stateDir>/<namespace>/` for its containers' FIFOs.
 * A namespace may therefore never be named like anything else here (`isReservedStateName`).
 */
import { join } from "node:path";

export const STATE_DIR_NAMES = {
  /** containerd's own `state` (shim bundles, runtime state). */
  daemonState: "daemon",
  socket: "containerd.sock",
  ttrpcSocket: "containerd.sock.ttrpc",
  config: "containerd.toml",
  pidFile: "containerd.pid",
  /** Marks a managed containerd stopped on purpose (see ManagedContainerdLayout.stoppedMarker). */
  stoppedMarker: "containerd.stopped",
  /** runc's state for the v1 runtime (`io.containerd.runtime.v1.linux`). */
  runcV1Root: "runc-v1",
  /** runc's `--root` for the runtimes the registry configures. */
  runcRoot: "runtime-runc",
  /** Wrapper scripts for runtimes with `runtimeArgs`. */
  runtimeWrappers: "runtimes",
  /** ctrd's networks (CNI state, attachments). */
  network: "network",
  /** ctrd's own files (the busybox rootfs it builds). */
  ctrd: ".ctrd",
} as const;

const reserved = new Set<string>(Object.values(STATE_DIR_NAMES));

/** Whether `name` is used by the library or ctrd at the top of a state dir (so no namespace may take it). */
export function isReservedStateName(name: string): boolean {
  return reserved.has(name);
}

export interface StateDirLayout {
  stateDir: string;
  daemonState: string;
  socket: string;
  ttrpcSocket: string;
  config: string;
  pidFile: string;
  stoppedMarker: string;
  runcV1Root: string;
  runcRoot: string;
  runtimeWrappers: string;
  network: string;
  ctrd: string;
}

export function stateDirLayout(stateDir: string): StateDirLayout {
  const at = (name: string) => join(stateDir, name);
  return {
    stateDir,
    daemonState: at(STATE_DIR_NAMES.daemonState),
    socket: at(STATE_DIR_NAMES.socket),
    ttrpcSocket: at(STATE_DIR_NAMES.ttrpcSocket),
    config: at(STATE_DIR_NAMES.config),
    pidFile: at(STATE_DIR_NAMES.pidFile),
    stoppedMarker: at(STATE_DIR_NAMES.stoppedMarker),
    runcV1Root: at(STATE_DIR_NAMES.runcV1Root),
    runcRoot: at(STATE_DIR_NAMES.runcRoot),
    runtimeWrappers: at(STATE_DIR_NAMES.runtimeWrappers),
    network: at(STATE_DIR_NAMES.network),
    ctrd: at(STATE_DIR_NAMES.ctrd),
  };
}

/** `<stateDir>/<namespace>/<containerId>`: a container's FIFOs. */
export function fifoDirOf(stateDir: string, namespace: string, containerId: string): string {
  return join(stateDir, namespace, containerId);
}
