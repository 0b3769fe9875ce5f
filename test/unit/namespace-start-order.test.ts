import { expect, test } from "vitest";
import type { HostConfig } from "../../src/engine/containers/config.js";
import { startOrder } from "../../src/engine/containers/shared-namespaces.js";

// At boot the engine restarts containers each after those whose namespaces it joins: a chain of joiners
// (A on B's network, B in C's PID namespace, C in D's IPC namespace) too, whatever order the store lists.
const record = (
  Id: string,
  modes: Partial<Pick<HostConfig, "NetworkMode" | "PidMode" | "IpcMode">> = {},
) => ({
  Id,
  HostConfig: { NetworkMode: "bridge", PidMode: "", IpcMode: "private", ...modes } as unknown as HostConfig,
});

test("a chain of joiners is started donor first, whatever order it was listed in", () => {
  const listed = [
    record("a", { NetworkMode: "container:b" }),
    record("b", { PidMode: "container:c" }),
    record("c", { IpcMode: "container:d" }),
    record("d", { IpcMode: "shareable" }),
    record("lone"),
  ];
  expect(startOrder(listed).map((r) => r.Id)).toEqual(["d", "c", "b", "a", "lone"]);
});

test("a donor that is not there, or a cycle, adds no constraint and loses no container", () => {
  const listed = [
    record("x", { NetworkMode: "container:y" }),
    record("y", { PidMode: "container:x" }),
    record("z", { NetworkMode: "container:gone" }),
  ];
  expect(
    startOrder(listed)
      .map((r) => r.Id)
      .sort(),
  ).toEqual(["x", "y", "z"]);
});
