import { describe, expect, it } from "vitest";
import { validateNamespace } from "../../src/libcontainerd/core/identifiers.js";
import { managedContainerdLayout } from "../../src/libcontainerd/supervisor/layout.js";
import { fifoDirOf, STATE_DIR_NAMES, stateDirLayout } from "../../src/platform/state-dir.js";
import { runcRoot } from "../../src/runtime/registry.js";

describe("the state dir's names", () => {
  const layout = stateDirLayout("/state");

  it("every path the library uses is <stateDir>/<one of its names>", () => {
    const managed = managedContainerdLayout("/root", "/state");
    const used = [
      managed.daemonStateDir,
      managed.socket,
      managed.ttrpcSocket,
      managed.configFile,
      managed.pidFile,
      managed.stoppedMarker,
      managed.runcV1Root,
      runcRoot("/state"),
      layout.runtimeWrappers,
      layout.network,
      layout.ctrd,
    ];
    const names = Object.values(STATE_DIR_NAMES);
    for (const path of used) expect(names.map((name) => `/state/${name}`)).toContain(path);
  });

  it("no namespace may take one of them, so a namespace's FIFO dir never lands in another's files", () => {
    for (const name of Object.values(STATE_DIR_NAMES)) {
      expect(() => validateNamespace(name), name).toThrow(/reserved|invalid/);
    }
    expect(validateNamespace("default")).toBe("default");
    expect(fifoDirOf("/state", "default", "web")).toBe("/state/default/web");
  });
});
