import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { MediaType, sha256 } from "../../src/images/media-types.js";
import { buildImage, busyboxLayer, pushLayout, writeOciLayout } from "../harness/images.js";
import { useRemote } from "../harness/remote.js";
import { collectGarbage, storeContents } from "./gc.js";
import { publish, useRegistry } from "./helpers.js";

/** Registry v2 API writes, for images the registry should hold but a good client would refuse. */
async function putManifest(host: string, repository: string, tag: string, mediaType: string, body: Buffer) {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": mediaType },
    body,
  });
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
}

async function putBlob(host: string, repository: string, content: Buffer): Promise<string> {
  const digest = sha256(content);
  const start = await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = new URL(start.headers.get("location") ?? "", `http://${host}`);
  location.searchParams.set("digest", digest);
  const res = await fetch(location, {
    method: "PUT",
    body: content,
    headers: { "content-type": "application/octet-stream" },
  });
  if (res.status !== 201) throw new Error(`PUT blob: ${res.status}`);
  return digest;
}

describe("pull: bad input is a typed error, and nothing is left registered or leased", () => {
  const remote = useRemote("images-errors");
  const reg = useRegistry();
  let n = 0;
  /** A fresh namespace per case, so "nothing left" is exact. */
  const fresh = () => {
    n += 1;
    const namespace = `err${process.pid}n${n}`;
    return { namespace, client: remote.newClient({ namespace }) };
  };
  async function expectNothingLeft(namespace: string) {
    const left = await storeContents(remote.ctrd.address, namespace);
    expect(left.images).toEqual([]);
    expect(left.leases).toEqual([]);
    await collectGarbage(remote.ctrd.address, namespace);
    const after = await storeContents(remote.ctrd.address, namespace);
    expect(after.blobs).toEqual([]);
    expect(after.snapshots).toEqual([]);
  }

  it("a blob tampered with in the registry's storage: DataLossError", async () => {
    // Blobs are shared across a registry's repositories: this one's layer is its own.
    const { ref, image } = await publish(reg, "tampered:1", {
      layers: [busyboxLayer(), { files: { "unique.txt": `tampered ${process.pid}\n` } }],
      config: { Cmd: ["true"] },
    });
    const path = reg.registry.blobPath(image.layers[1]?.digest ?? "");
    const bytes = readFileSync(path);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const { namespace, client } = fresh();
    const err = await client.images.pull(ref).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "data_loss" });
    await expectNothingLeft(namespace);
  });

  it("an unknown reference: NotFoundError", async () => {
    const { namespace, client } = fresh();
    const err = await client.images.pull(`${reg.registry.host}/nosuch:1`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "not_found" });
    const malformed = await client.images.pull("UPPER/case").catch((e: unknown) => e);
    expect(malformed).toMatchObject({ code: "invalid_argument" });
    await expectNothingLeft(namespace);
  });

  it("no manifest for the platform asked for: NotFoundError naming what there is", async () => {
    const arm64 = await buildImage({
      layers: [busyboxLayer()],
      config: { Cmd: ["true"] },
      architecture: "arm64",
    });
    const layout = `${reg.workDir}/armonly`;
    writeOciLayout(layout, [
      { tag: "1", images: [arm64], platforms: [{ os: "linux", architecture: "arm64" }] },
    ]);
    await pushLayout(layout, "1", reg.registry, "armonly:1", { all: true });
    const { namespace, client } = fresh();
    const err = await client.images.pull(`${reg.registry.host}/armonly:1`).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "not_found", message: expect.stringContaining("linux/arm64") });
    await expectNothingLeft(namespace);
  });

  it("a malformed manifest, an oversized one, an unknown layer media type: typed errors", async () => {
    const { image } = await publish(reg, "base:1");
    const host = reg.registry.host;
    const configDigest = await putBlob(host, "bad", image.config.content);
    const layerDigest = await putBlob(host, "bad", image.layers[0]?.content ?? Buffer.alloc(0));
    const manifest = (layerType: string, extra = "") =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: image.config.size },
          layers: [{ mediaType: layerType, digest: layerDigest, size: image.layers[0]?.size }],
          annotations: { padding: extra },
        }),
      );
    await putManifest(host, "bad", "unknowntype", MediaType.ociManifest, manifest("application/x-made-up"));
    const { namespace, client } = fresh();
    expect(await client.images.pull(`${host}/bad:unknowntype`).catch((e: unknown) => e)).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("unknown media type"),
    });
    // A real registry refuses to store (or serve) a manifest over 4 MiB, so the oversized one
    // comes from a hostile server: what the client must defend against.
    const hostile = createServer((req, res) => {
      if (req.url?.includes("/manifests/")) {
        res.writeHead(200, { "content-type": MediaType.ociManifest });
        res.end(manifest(MediaType.ociLayerGzip, "x".repeat(5 * 1024 * 1024)));
      } else res.writeHead(200).end("{}");
    });
    await new Promise<void>((resolve) => hostile.listen(0, "127.0.0.1", resolve));
    const port = (hostile.address() as AddressInfo).port;
    const hugeErr = await client.images.pull(`127.0.0.1:${port}/bad:huge`).catch((e: unknown) => e);
    await new Promise((resolve) => hostile.close(resolve));
    expect(hugeErr).toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("4 MiB"),
    });
    await expectNothingLeft(namespace);
  });

  it("a config whose Env, Cmd, Entrypoint, User or WorkingDir has the wrong type: InvalidArgumentError", async () => {
    const { namespace, client } = fresh();
    const wrong: Record<string, unknown>[] = [
      { Env: "PATH=/bin" },
      { Env: ["PATH=/bin", 7] },
      { Cmd: "sh" },
      { Entrypoint: [["sh"]] },
      { User: 0 },
      { WorkingDir: ["/"] },
    ];
    for (const [i, config] of wrong.entries()) {
      const { ref } = await publish(reg, `badconfig:${i}`, {
        layers: [busyboxLayer()],
        config: config as { Cmd?: string[] },
      });
      const err = await client.images.pull(ref).catch((e: unknown) => e);
      expect(err, JSON.stringify(config)).toMatchObject({
        code: "invalid_argument",
        message: expect.stringContaining(`config.${Object.keys(config)[0]}`),
      });
    }
    await expectNothingLeft(namespace);
  });

  it("a registry killed mid-pull: UnavailableError; the retry resumes the interrupted layer", async () => {
    // Far more than can be in flight when the registry dies (the download reads up to 8 MiB ahead
    // of containerd, and the sockets buffer some more), so the kill always lands mid-layer.
    const big = Buffer.alloc(96 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const { ref, image } = await publish(reg, "killed:1", {
      layers: [busyboxLayer(), { files: { "big.bin": big }, uncompressed: true }],
      config: { Cmd: ["true"] },
    });
    const { namespace, client } = fresh();
    const bigLayer = image.layers[1]?.digest ?? "";
    let killed: Promise<void> | undefined;
    // Whatever happens below, the registry is back for the tests after this one.
    onTestFinished(async () => {
      if (killed) await reg.registry.restart().catch(() => {});
    });
    const err = await client.images
      .pull(ref, {
        concurrency: 1,
        onProgress: (e) => {
          if (e.digest === bigLayer && e.state === "downloading" && e.current > 4 * 1024 * 1024)
            killed ??= reg.registry.kill();
        },
      })
      .catch((e: unknown) => e);
    await killed;
    expect(killed).toBeDefined();
    expect(err).toMatchObject({ code: "unavailable" });
    const left = await storeContents(remote.ctrd.address, namespace);
    expect(left.images).toEqual([]);
    expect(left.leases).toEqual([]);
    expect(left.ingests).toEqual([`layer-${bigLayer}`]);
    // The partial download outlives the lease and a GC, for the retry to resume.
    await collectGarbage(remote.ctrd.address, namespace);
    await reg.registry.restart();
    killed = undefined;
    const fetched: number[] = [];
    await client.images.pull(ref, {
      onProgress: (e) => {
        if (e.digest === bigLayer && e.state === "downloading") fetched.push(e.current);
      },
    });
    // The big layer resumed where it stopped (a Range request), not from its first byte. (A layer
    // that was complete is fetched again: containerd's GC takes unreferenced blobs with the lease.)
    expect(fetched[0]).toBeGreaterThan(4 * 1024 * 1024);
    expect(reg.registry.rangeFetches()).toContain(bigLayer);
    await client.images.remove(ref, { sync: true });
    await expectNothingLeft(namespace);
  });

  it("an AbortSignal stops a pull mid-layer: CanceledError, nothing registered, no lease", async () => {
    const { ref, image } = await publish(reg, "aborted-mid:1", {
      layers: [
        busyboxLayer(),
        { files: { "big.bin": Buffer.alloc(24 * 1024 * 1024, `mid ${process.pid}`) }, uncompressed: true },
      ],
      config: { Cmd: ["true"] },
    });
    const { namespace, client } = fresh();
    const controller = new AbortController();
    const big = image.layers[1]?.digest;
    let abortedAt = 0;
    const err = await client.images
      .pull(ref, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.digest === big && e.state === "downloading" && e.current > 0 && !abortedAt) {
            abortedAt = e.current;
            controller.abort();
          }
        },
      })
      .catch((e: unknown) => e);
    expect(abortedAt).toBeGreaterThan(0);
    expect(err).toMatchObject({ code: "canceled" });
    await expectNothingLeft(namespace);
  });

  it("an AbortSignal stops a pull: CanceledError, nothing registered, no lease", async () => {
    const { ref, image } = await publish(reg, "aborted:1", {
      layers: [busyboxLayer({ "unique.txt": `aborted ${process.pid}\n` })],
      config: { Cmd: ["true"] },
    });
    const { namespace, client } = fresh();
    const controller = new AbortController();
    const err = await client.images
      .pull(ref, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.digest === image.layers[0]?.digest && e.state === "waiting") controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "canceled" });
    await expectNothingLeft(namespace);
  });
});
