// The generated containerd API, driven directly (no library code above the transport):
// proves codegen, the transport and the harness before anything is built on them.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { Version } from "../../src/gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import { mkfifo, openFifoReader } from "../../src/libcontainerd/remote/fifo.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { startContainerd, type TestContainerd } from "../harness/containerd.js";
import { readAll } from "../harness/remote.js";

let ctrd: TestContainerd;
beforeAll(async () => {
  ctrd = await startContainerd();
});
afterAll(async () => {
  await ctrd?.stop();
});

test("Version answers with containerd 1.6", async () => {
  const version = serviceClient(
    Version,
    createContainerdTransport({ address: ctrd.address, namespace: "default" }),
  );
  const reply = await version.version({});
  expect(reply.version).toMatch(/^1\.6\./);
  expect(reply.revision).not.toBe("");
});

test("echo hello: containers create → tasks create with FIFOs → wait → start → exit → delete", async () => {
  const transport = createContainerdTransport({ address: ctrd.address, namespace: "gen-api" });
  const containers = serviceClient(Containers, transport);
  const tasks = serviceClient(Tasks, transport);
  const id = "echo-hello";
  const spec = defaultLinuxSpec({
    args: ["/bin/echo", "hello"],
    rootfs: ctrd.rootfs,
    cgroupsPath: `${ctrd.cgroupParent}/${id}`,
  });
  await containers.create({
    container: {
      id,
      runtime: { name: "io.containerd.runc.v2" },
      spec: {
        typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
        value: Buffer.from(JSON.stringify(spec)),
      },
    },
  });
  const fifoDir = join(ctrd.stateDir, "gen-api", id);
  mkdirSync(fifoDir, { recursive: true, mode: 0o700 });
  const stdoutPath = join(fifoDir, "stdout");
  const stderrPath = join(fifoDir, "stderr");
  await mkfifo(stdoutPath);
  await mkfifo(stderrPath);
  const stdout = readAll(openFifoReader(stdoutPath));
  const stderr = readAll(openFifoReader(stderrPath));

  const created = await tasks.create({ containerId: id, stdout: stdoutPath, stderr: stderrPath });
  expect(created.pid).toBeGreaterThan(0);
  const waited = tasks.wait({ containerId: id });
  await tasks.start({ containerId: id });
  const exit = await waited;
  expect(exit.exitStatus).toBe(0);
  expect(await stdout).toBe("hello\n");
  expect(await stderr).toBe("");
  const deleted = await tasks.delete({ containerId: id });
  expect(deleted.exitStatus).toBe(0);
  await containers.delete({ id });
  expect((await containers.list({})).containers).toEqual([]);
});
