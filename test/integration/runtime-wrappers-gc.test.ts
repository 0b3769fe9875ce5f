import { existsSync } from "node:fs";
import { expect, test } from "vitest";
import { RemoteClient } from "../../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import { requireBinary } from "../harness/binaries.js";
import { nextCgroup, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("wrappers-gc");

function clientWith(runtimeArgs: string[]): { client: RemoteClient; script: () => Promise<string> } {
  const runtimes = new RuntimeRegistry({
    stateDir: fx.ctrd.stateDir,
    runtimes: { custom: { path: requireBinary("runc"), runtimeArgs } },
  });
  const client = new RemoteClient({
    address: fx.ctrd.address,
    namespace: "gc-other",
    stateDir: fx.ctrd.stateDir,
    runtimes,
  });
  return {
    client,
    script: async () => {
      const custom = runtimes.list().find((runtime) => runtime.name === "custom");
      return custom?.wrapperScript ?? "";
    },
  };
}

test("a runtime's old wrapper script stays while a container (in any namespace) uses it, and goes after", async () => {
  const before = clientWith(["--log-format", "text"]);
  const id = uniqueId("gc");
  const container = await before.client.newContainer(
    id,
    defaultLinuxSpec({ args: ["true"], rootfs: fx.ctrd.rootfs, cgroupsPath: nextCgroup(fx.ctrd) }),
    { runtime: "custom" },
  );
  const old = await before.script();
  expect(existsSync(old)).toBe(true);

  // The configuration changes: a new script; the old one is the container's.
  const after = clientWith(["--log-format", "json"]);
  await after.client.newContainer(
    `${id}-new`,
    defaultLinuxSpec({ args: ["true"], rootfs: fx.ctrd.rootfs, cgroupsPath: nextCgroup(fx.ctrd) }),
    { runtime: "custom" },
  );
  const current = await after.script();
  expect(current).not.toBe(old);
  expect(await after.client.removeUnusedRuntimeWrappers()).toEqual([]);
  expect(existsSync(old)).toBe(true);

  await container.delete();
  expect(await after.client.removeUnusedRuntimeWrappers()).toEqual([old]);
  expect(existsSync(old)).toBe(false);
  expect(existsSync(current)).toBe(true);

  await (await after.client.loadContainer(`${id}-new`)).delete();
  await before.client.close();
  await after.client.close();
});
