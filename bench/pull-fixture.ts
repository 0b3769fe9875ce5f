// The pull benches' setup: one containerd, one local registry holding a ~100 MB, 5-layer image
// (busybox + 4 × 24 MiB of random bytes, so the bytes cross the wire and are gunzipped), and a way
// to empty the content store and snapshots between pulls. bench/images.ts and bench/pull-profile.ts.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { RemoteClient } from "../src/libcontainerd/remote/client.js";
import { startContainerd, type TestContainerd } from "../test/harness/containerd.js";
import { buildImage, busyboxLayer, writeOciLayout } from "../test/harness/images.js";
import { startRegistry, type TestRegistry } from "../test/harness/registry.js";
import { scratchDir } from "../test/harness/temp-dirs.js";
import { collectGarbage, storeContents } from "../test/images/gc.js";

export const LAYER_MB = 24;

export interface PullFixture {
  ctrd: TestContainerd;
  registry: TestRegistry;
  client: RemoteClient;
  namespace: string;
  ref: string;
  layers: number;
  bytes: number;
  /** Removes every image of the namespace, runs containerd's GC, checks nothing is left. */
  empty(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPullFixture(prefix: string, namespace: string): Promise<PullFixture> {
  const ctrd = await startContainerd({ prefix });
  const registry = await startRegistry();
  const work = scratchDir(`${prefix}work-`);
  const client = new RemoteClient({ address: ctrd.address, namespace, stateDir: ctrd.stateDir });
  const stop = async () => {
    await client.close();
    await registry.stop();
    await ctrd.stop();
    await work.cleanup();
  };
  try {
    const layers = [busyboxLayer()];
    for (let i = 0; i < 4; i++)
      layers.push({ files: { [`data${i}.bin`]: randomBytes(LAYER_MB * 1024 * 1024) } });
    const image = await buildImage({ layers, config: { Cmd: ["true"], Env: ["PATH=/bin"] } });
    const layout = join(work.dir, "layout");
    writeOciLayout(layout, [{ tag: "1", images: [image] }]);
    execFileSync("skopeo", [
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      "--preserve-digests",
      `oci:${layout}:1`,
      `docker://${registry.host}/bench/big:1`,
    ]);
    return {
      ctrd,
      registry,
      client,
      namespace,
      ref: `${registry.host}/bench/big:1`,
      layers: image.layers.length,
      bytes: image.layers.reduce((sum, l) => sum + l.size, 0),
      empty: async () => {
        for (const img of await client.images.list()) await client.images.remove(img.name, { sync: true });
        await collectGarbage(ctrd.address, namespace);
        const left = await storeContents(ctrd.address, namespace);
        if (left.blobs.length + left.snapshots.length > 0)
          throw new Error(`store not empty: ${JSON.stringify(left)}`);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
