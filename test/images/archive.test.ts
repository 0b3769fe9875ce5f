import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { pack } from "tar-stream";
import { describe, expect, it } from "vitest";
import type { PushProgress } from "../../src/images/push.js";
import { requireBinary } from "../harness/binaries.js";
import { buildImage, busyboxLayer, writeOciLayout } from "../harness/images.js";
import { useRemote } from "../harness/remote.js";
import { collectGarbage, storeContents } from "./gc.js";
import { helloImage, publish, runImage, useRegistry } from "./helpers.js";

const exec = promisify(execFile);
const skopeo = (args: string[]) => exec(requireBinary("skopeo"), args, { timeout: 60_000 });

describe("push, save, import", () => {
  const remote = useRemote("images-archive");
  const reg = useRegistry();
  let n = 0;
  const fresh = () => {
    n += 1;
    const namespace = `arc${process.pid}n${n}`;
    return { namespace, client: remote.newClient({ namespace }) };
  };

  it("pushes under a new name: blobs mounted from their source repository, then HEAD skips them", async () => {
    const { ref } = await publish(reg, "source:1");
    await remote.client.images.pull(ref);
    const target = `${reg.registry.host}/pushed/copy:2`;
    await remote.client.images.tag(ref, target);
    const first: PushProgress[] = [];
    await remote.client.images.push(target, { onProgress: (e) => first.push(e) });
    expect(first.filter((e) => e.state === "mounted").length).toBe(3);
    const again: PushProgress[] = [];
    await remote.client.images.push(target, { onProgress: (e) => again.push(e) });
    expect(again.filter((e) => e.state === "exists").length).toBe(3);
    // What a real client reads back, and what runs after a pull into another namespace.
    const inspected = JSON.parse(
      (await skopeo(["inspect", "--tls-verify=false", `docker://${target}`])).stdout,
    );
    expect(inspected.Layers.length).toBe(2);
    const { client } = fresh();
    await client.images.pull(target);
    expect((await runImage(remote, client, target)).stdout).toContain("hello from the image");
  });

  it("pushes an image imported from a layout (uploads, no mount source)", async () => {
    const image = await buildImage({
      layers: [busyboxLayer({ "only-here.txt": `pushed ${process.pid}\n` })],
      config: { Cmd: ["cat", "/only-here.txt"], Env: ["PATH=/bin"] },
    });
    const layout = join(reg.workDir, "to-push");
    writeOciLayout(layout, [{ tag: "1", images: [image] }]);
    const tarFile = join(reg.workDir, "to-push.tar");
    await skopeo([
      "copy",
      "--quiet",
      `oci:${layout}:1`,
      `oci-archive:${tarFile}:${reg.registry.host}/uploaded:1`,
    ]);
    const [record] = await remote.client.images.import(createReadStream(tarFile));
    expect(record?.name).toBe(`${reg.registry.host}/uploaded:1`);
    const events: PushProgress[] = [];
    await remote.client.images.push(`${reg.registry.host}/uploaded:1`, { onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.state === "pushed").length).toBeGreaterThanOrEqual(2);
    const { client } = fresh();
    await client.images.pull(`${reg.registry.host}/uploaded:1`);
    expect((await runImage(remote, client, `${reg.registry.host}/uploaded:1`)).stdout).toBe(
      `pushed ${process.pid}\n`,
    );
  });

  it("saves an OCI layout tar that skopeo reads and import takes back", async () => {
    const { ref } = await publish(reg, "saved:1");
    await remote.client.images.pull(ref);
    const file = join(reg.workDir, "saved.tar");
    await remote.client.images.save([ref], createWriteStream(file));
    await skopeo([
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `oci-archive:${file}`,
      `docker://${reg.registry.host}/resaved:1`,
    ]);
    const { namespace, client } = fresh();
    const imported = await client.images.import(createReadStream(file));
    expect(imported.map((i) => i.name)).toEqual([ref]);
    expect((await runImage(remote, client, ref)).stdout).toContain("hello from the image");
    await client.images.remove(ref, { sync: true });
    await collectGarbage(remote.ctrd.address, namespace);
    expect((await storeContents(remote.ctrd.address, namespace)).blobs).toEqual([]);
  });

  it("a save aborted midway rejects with CanceledError", async () => {
    const { ref } = await publish(reg, "save-aborted:1", {
      layers: [busyboxLayer(), { files: { "big.bin": randomBytes(8 * 1024 * 1024) }, uncompressed: true }],
      config: { Cmd: ["true"] },
    });
    await remote.client.images.pull(ref);
    for (const afterWrites of [1, 3, 6]) {
      const controller = new AbortController();
      let writes = 0;
      const out = new Writable({
        write(_chunk, _encoding, callback) {
          if (++writes === afterWrites) controller.abort();
          setImmediate(callback);
        },
      });
      const err = await remote.client.images
        .save([ref], out, { signal: controller.signal })
        .catch((e: unknown) => e);
      expect(err, `aborted at write ${afterWrites}`).toMatchObject({
        name: "CanceledError",
        code: "canceled",
      });
    }
  });

  it("imports a docker save tar (as skopeo writes docker-archive)", async () => {
    const image = await buildImage(helloImage);
    const layout = join(reg.workDir, "for-docker");
    writeOciLayout(layout, [{ tag: "1", images: [image] }]);
    const file = join(reg.workDir, "docker.tar");
    await skopeo(["copy", "--quiet", `oci:${layout}:1`, `docker-archive:${file}:dockerstyle/app:7`]);
    const { client } = fresh();
    const imported = await client.images.import(createReadStream(file));
    expect(imported.map((i) => i.name)).toEqual(["docker.io/dockerstyle/app:7"]);
    expect((await runImage(remote, client, "dockerstyle/app:7")).stdout).toContain("hello from the image");
  });

  it("an archive whose second image lacks a layer registers neither", async () => {
    const good = await buildImage({ layers: [busyboxLayer()], config: { Cmd: ["true"] } });
    const bad = await buildImage({ layers: [{ files: { "lost.txt": `lost ${process.pid}\n` } }] });
    const tar = pack();
    tar.entry({ name: "oci-layout" }, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const manifests = [];
    for (const [image, name] of [
      [good, "docker.io/partial/good:1"],
      [bad, "docker.io/partial/bad:1"],
    ] as const) {
      for (const blob of [image.manifest, image.config, ...image.layers])
        if (blob !== bad.layers[0]) tar.entry({ name: `blobs/sha256/${blob.digest.slice(7)}` }, blob.content);
      const { mediaType, digest, size } = image.manifest;
      manifests.push({ mediaType, digest, size, annotations: { "io.containerd.image.name": name } });
    }
    tar.entry({ name: "index.json" }, JSON.stringify({ schemaVersion: 2, manifests }));
    tar.finalize();
    const { namespace, client } = fresh();
    const err = await client.images.import(Readable.from(tar)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining(bad.layers[0]?.digest ?? "?"),
    });
    await collectGarbage(remote.ctrd.address, namespace);
    expect(await storeContents(remote.ctrd.address, namespace)).toMatchObject({
      images: [],
      leases: [],
      blobs: [],
      snapshots: [],
    });
  });

  it("imports an archive given as one buffer (a layer over containerd's 16 MiB message limit)", async () => {
    const image = await buildImage({
      layers: [busyboxLayer(), { files: { "big.bin": randomBytes(17 * 1024 * 1024) }, uncompressed: true }],
      config: { Cmd: ["true"] },
    });
    const name = "docker.io/onebuffer/big:1";
    const tar = pack();
    tar.entry({ name: "oci-layout" }, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    for (const blob of [image.config, ...image.layers, image.manifest])
      tar.entry({ name: `blobs/sha256/${blob.digest.slice(7)}` }, blob.content);
    const { mediaType, digest, size } = image.manifest;
    const manifests = [{ mediaType, digest, size, annotations: { "io.containerd.image.name": name } }];
    tar.entry({ name: "index.json" }, JSON.stringify({ schemaVersion: 2, manifests }));
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of tar) chunks.push(chunk as Buffer);
    const { client } = fresh();
    const imported = await client.images.import(Readable.from(Buffer.concat(chunks)));
    expect(imported.map((i) => i.name)).toEqual([name]);
  });

  it("refuses archive entries with ../ or absolute paths, and registers nothing", async () => {
    for (const name of ["../escape", "/etc/absolute", "blobs/../../up"]) {
      const tar = pack();
      tar.entry({ name: "oci-layout" }, "{}");
      tar.entry({ name }, "x");
      tar.finalize();
      const { namespace, client } = fresh();
      const err = await client.images.import(Readable.from(tar)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "invalid_argument" });
      const left = await storeContents(remote.ctrd.address, namespace);
      expect({ images: left.images, leases: left.leases }).toEqual({ images: [], leases: [] });
    }
    const notATar = join(reg.workDir, "garbage.tar");
    writeFileSync(notATar, "this is not a tar archive at all");
    const { client } = fresh();
    expect(await client.images.import(createReadStream(notATar)).catch((e: unknown) => e)).toMatchObject({
      code: "invalid_argument",
    });
  });
});
