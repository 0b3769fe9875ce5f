import { afterAll, beforeAll } from "vitest";
import type { ImageProcessOverrides } from "../../src/images/image-spec.js";
import type { RemoteClient } from "../../src/libcontainerd/remote/client.js";
import { busyboxLayer, type ImageSpec, publishImage } from "../harness/images.js";
import { type RegistryOptions, startRegistry, type TestRegistry } from "../harness/registry.js";
import { type RemoteFixture, readAll, uniqueId } from "../harness/remote.js";
import { scratchDir } from "../harness/temp-dirs.js";

/** A registry for the test file, torn down after it, and a work dir for image layouts. */
export function useRegistry(opts: RegistryOptions = {}): { registry: TestRegistry; workDir: string } {
  const fixture = {} as { registry: TestRegistry; workDir: string };
  const work = scratchDir("lcd-img-");
  fixture.workDir = work.dir;
  beforeAll(async () => {
    fixture.registry = await startRegistry(opts);
  });
  afterAll(async () => {
    await fixture.registry?.stop();
    await work.cleanup();
  });
  return fixture;
}

/** An image whose Cmd prints what its layers hold: a file, a symlink, a deleted file, its env and cwd. */
export const helloImage: ImageSpec = {
  layers: [
    busyboxLayer({ "www/": { dir: true }, "www/old.txt": "to be deleted\n" }),
    {
      files: { "www/index.html": "hello from the image\n", "www/link": { symlink: "index.html" } },
      whiteouts: ["www/old.txt"],
    },
  ],
  config: {
    Cmd: ["sh", "-c", 'cat /www/link; ls /www; echo "greeting=$GREETING cwd=$(pwd) id=$(id -u):$(id -g)"'],
    Env: ["PATH=/bin", "GREETING=hi"],
    WorkingDir: "/www",
  },
};

export async function publish(
  fixture: { registry: TestRegistry; workDir: string },
  repository: string,
  spec: ImageSpec = helloImage,
) {
  return publishImage(fixture.registry, fixture.workDir, repository, spec);
}

/** Runs an image the client has pulled: a fresh snapshot, the image's process, its stdout. */
export async function runImage(
  remote: RemoteFixture,
  client: RemoteClient,
  ref: string,
  overrides: ImageProcessOverrides = {},
): Promise<{ stdout: string; exitCode: number; id: string }> {
  const id = uniqueId("img");
  const process = await client.images.process(ref, overrides);
  const snapshot = await client.images.prepareSnapshot(ref, id);
  const container = await client.newContainer(
    id,
    remote.spec(process.args, { rootfs: "rootfs", env: process.env, cwd: process.cwd, user: process.user }),
    { image: ref, snapshot: { snapshotter: snapshot.snapshotter, key: snapshot.key } },
  );
  try {
    const task = await container.newTask({ stdio: { stdout: true, stderr: true } });
    const output = readAll(task.stdout);
    const exited = task.wait();
    await task.start();
    const status = await exited;
    const stdout = await output;
    await task.delete();
    return { stdout, exitCode: status.exitCode, id };
  } finally {
    await container.delete();
  }
}
