// The same runtime guarantees as runtimes.test.ts, through the library's RemoteClient:
// newContainer(id, spec, { runtime }) resolves with the registry and containerd runs the result.
import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { OptionsSchema } from "../../src/gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import type { RemoteClient } from "../../src/libcontainerd/remote/client.js";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import { requireBinary } from "../harness/binaries.js";
import { writeCrunWrapper } from "../harness/crun-wrapper.js";
import { readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("runtimes-client");

function clientWith(opts: { defaultRuntime?: string; addRuntimes?: string[] } = {}): {
  client: RemoteClient;
  crunWrapper: string;
} {
  requireBinary("crun");
  const crunWrapper = writeCrunWrapper(fx.ctrd.dir);
  const runtimes = new RuntimeRegistry({
    stateDir: fx.ctrd.stateDir,
    runtimes: { crun: { path: crunWrapper } },
    ...opts,
  });
  return { client: fx.newClient({ runtimes }), crunWrapper };
}

/** containerd's own record of a container's runtime. */
async function recordedRuntime(id: string) {
  const containers = serviceClient(
    Containers,
    createContainerdTransport({ address: fx.ctrd.address, namespace: fx.namespace }),
  );
  const { container } = await containers.get({ id });
  return container?.runtime;
}

async function echo(client: RemoteClient, runtime: string | undefined, text: string) {
  const id = uniqueId("echo");
  const container = await client.newContainer(
    id,
    fx.spec(["echo", text]),
    runtime === undefined ? {} : { runtime },
  );
  const recorded = await recordedRuntime(id);
  const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
  const stdout = readAll(task.stdout);
  const stderr = readAll(task.stderr);
  const exited = task.wait();
  await task.start();
  const status = await exited;
  await task.delete();
  await container.delete();
  return { status, stdout: await stdout, stderr: await stderr, recorded };
}

describe.each([
  ["runc", "io.containerd.runc.v2", "containerd.runc.v1.Options"],
  ["io.containerd.runc.v2", "io.containerd.runc.v2", "containerd.runc.v1.Options"],
  ["io.containerd.runtime.v1.linux", "io.containerd.runtime.v1.linux", "containerd.linux.runc.RuncOptions"],
  ["crun", "io.containerd.runc.v2", "containerd.runc.v1.Options"],
])("RemoteClient with runtime %s", (runtime, shim, typeUrl) => {
  test(`echo → right output and exit code; containerd records ${shim} + ${typeUrl}`, async () => {
    const { client } = clientWith();
    const result = await echo(client, runtime, `via ${runtime}`);
    expect([result.stdout, result.stderr, result.status.exitCode]).toEqual([`via ${runtime}\n`, "", 0]);
    expect(result.recorded?.name).toBe(shim);
    expect(result.recorded?.options?.typeUrl).toBe(typeUrl);
  });
});

test("defaultRuntime picks the runtime of a container created without one; per-container overrides", async () => {
  const { client, crunWrapper } = clientWith({ defaultRuntime: "crun" });
  const unnamed = await echo(client, undefined, "default");
  expect(unnamed.stdout).toBe("default\n");
  expect(fromBinary(OptionsSchema, unnamed.recorded?.options?.value ?? new Uint8Array()).binaryName).toBe(
    crunWrapper,
  );
  const named = await echo(client, "runc", "named");
  expect(named.stdout).toBe("named\n");
  expect(fromBinary(OptionsSchema, named.recorded?.options?.value ?? new Uint8Array()).binaryName).toBe(
    "runc",
  );
});

test("an unknown runtime, or a configured one whose binary is missing, fails newContainer with InvalidArgumentError", async () => {
  const { client } = clientWith({ addRuntimes: ["gone=/nonexistent/crun"] });
  await expect(
    client.newContainer(uniqueId("unknown"), fx.spec(["true"]), { runtime: "nope" }),
  ).rejects.toThrow(InvalidArgumentError);
  await expect(client.newContainer(uniqueId("gone"), fx.spec(["true"]), { runtime: "gone" })).rejects.toThrow(
    /runtime 'gone': its binary '\/nonexistent\/crun' was not found or is not executable/,
  );
  expect(await client.listContainers()).toEqual([]);
});
