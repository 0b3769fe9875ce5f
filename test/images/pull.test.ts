import { execFile } from "node:child_process";
import type { IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { buildImage, busyboxLayer, pushLayout, writeOciLayout } from "../harness/images.js";
import { startRegistryFront } from "../harness/registry-front.js";
import { useRemote } from "../harness/remote.js";
import { collectGarbage, storeContents } from "./gc.js";
import { publish, runImage, useRegistry } from "./helpers.js";

const exec = promisify(execFile);

/**
 * A front to the registry, as a CDN or proxy would stand before one: blob GETs are answered with a
 * redirect to the registry itself, or passed on without a Content-Length (chunked); everything else is
 * passed on as is. Counts the blob GETs it saw.
 */
async function startFront(upstream: string, mode: "redirect" | "chunked") {
  let blobGets = 0;
  const isBlobGet = (req: IncomingMessage) => req.method === "GET" && /\/blobs\/sha256:/.test(req.url ?? "");
  const host = await startRegistryFront(upstream, {
    answer(req, res) {
      if (!isBlobGet(req)) return false;
      blobGets++;
      if (mode !== "redirect") return false;
      res.writeHead(307, { location: `http://${upstream}${req.url}` });
      res.end();
      return true;
    },
    relay(req, answer, res) {
      const headers = { ...answer.headers };
      if (isBlobGet(req)) delete headers["content-length"];
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    },
  });
  return { host, blobGets: () => blobGets };
}

describe("pull and run an image from a registry", () => {
  const remote = useRemote("images");
  const reg = useRegistry();

  it("pulls, unpacks and runs the image's own Cmd (whiteout, symlink, env, cwd)", async () => {
    const { ref } = await publish(reg, "hello:1");
    const events: string[] = [];
    const image = await remote.client.images.pull(ref, {
      onProgress: (e) => events.push(`${e.kind}:${e.state}`),
    });
    expect(image.name).toBe(ref);
    expect(events).toContain("layer:unpacked");
    const { stdout, exitCode } = await runImage(remote, remote.client, ref);
    expect(exitCode).toBe(0);
    expect(stdout).toBe("hello from the image\nindex.html\nlink\ngreeting=hi cwd=/www id=0:0\n");
    const names = (await remote.client.images.list()).map((i) => i.name);
    expect(names).toContain(ref);
  });

  it("pulls by digest, and a second pull fetches no blob", async () => {
    const { ref, image } = await publish(reg, "bydigest:1");
    await remote.client.images.pull(ref);
    const before = reg.registry.blobFetches();
    expect(before.get(image.layers[1]?.digest ?? "")).toBe(1);
    await remote.client.images.pull(ref);
    const byDigest = `${reg.registry.host}/bydigest@${image.manifest.digest}`;
    const record = await remote.client.images.pull(byDigest);
    expect(record.name).toBe(byDigest);
    expect(record.target.digest).toBe(image.manifest.digest);
    expect(reg.registry.blobFetches()).toEqual(before);
    expect((await runImage(remote, remote.client, byDigest)).stdout).toContain("hello from the image");
  });

  it("pulls layers served through a redirect, or chunked without a Content-Length", async () => {
    for (const mode of ["redirect", "chunked"] as const) {
      // Layers of their own: nothing of them is in the store yet.
      await publish(reg, `front-${mode}:1`, {
        layers: [busyboxLayer({ "front.txt": `through a front (${mode}) ${process.pid}\n` })],
        config: { Cmd: ["cat", "/front.txt"], Env: ["PATH=/bin"] },
      });
      const front = await startFront(reg.registry.host, mode);
      const ref = `${front.host}/front-${mode}:1`;
      await remote.client.images.pull(ref);
      expect(front.blobGets()).toBeGreaterThan(0);
      expect((await runImage(remote, remote.client, ref)).stdout).toBe(
        `through a front (${mode}) ${process.pid}\n`,
      );
    }
  });

  it("two concurrent pulls of one image fetch each layer once", async () => {
    const { ref, image } = await publish(reg, "concurrent:1");
    const [a, b] = await Promise.all([remote.client.images.pull(ref), remote.newClient().images.pull(ref)]);
    expect(a.target).toEqual(b.target);
    const fetches = reg.registry.blobFetches();
    for (const layer of image.layers) expect(fetches.get(layer.digest)).toBe(1);
  });

  it("runs as the image's non-root USER name, groups from its /etc/group", async () => {
    const { ref } = await publish(reg, "nonroot:1", {
      layers: [
        busyboxLayer({
          "etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
          "etc/group": "root:x:0:\napp:x:1001:\nextra:x:2000:app\n",
        }),
      ],
      config: { Cmd: ["sh", "-c", "id -u; id -g; id -G"], Env: ["PATH=/bin"], User: "app" },
    });
    await remote.client.images.pull(ref);
    const { stdout } = await runImage(remote, remote.client, ref);
    expect(stdout).toBe("1000\n1001\n1001 2000\n");
    const asRoot = await runImage(remote, remote.client, ref, { user: "root", args: ["id", "-u"] });
    expect(asRoot.stdout).toBe("0\n");
  });

  it("resolves a multi-platform index to the host's platform, or the one asked for", async () => {
    const amd64 = await buildImage({
      layers: [busyboxLayer({ "arch.txt": "amd64\n" })],
      config: { Cmd: ["cat", "/arch.txt"], Env: ["PATH=/bin"] },
    });
    const arm64 = await buildImage({
      layers: [busyboxLayer({ "arch.txt": "arm64\n" })],
      config: { Cmd: ["cat", "/arch.txt"] },
      architecture: "arm64",
      variant: "v8",
    });
    const layout = `${reg.workDir}/multi`;
    writeOciLayout(layout, [
      {
        tag: "1",
        images: [arm64, amd64],
        platforms: [
          { os: "linux", architecture: "arm64", variant: "v8" },
          { os: "linux", architecture: "amd64" },
        ],
      },
    ]);
    await pushLayout(layout, "1", reg.registry, "multi:1", { all: true });
    const ref = `${reg.registry.host}/multi:1`;
    await remote.client.images.pull(ref);
    expect((await runImage(remote, remote.client, ref)).stdout).toBe("amd64\n");
    const config = await remote.client.images
      .config(ref, { platform: "linux/arm64" })
      .catch((e: unknown) => e);
    // Only the host's platform was fetched: the arm64 manifest is not in the store.
    expect(config).toMatchObject({ code: "not_found" });
    await remote.client.images.pull(ref, { platform: "linux/arm64" });
    expect((await remote.client.images.config(ref, { platform: "linux/arm64" })).architecture).toBe("arm64");
  });

  it("rmi, then containerd's GC, leaves no blob, snapshot or lease", async () => {
    const ns = `gc${process.pid}`;
    const client = remote.newClient({ namespace: ns });
    const { ref } = await publish(reg, "gc:1");
    await client.images.pull(ref);
    await runImage(remote, client, ref);
    const held = await storeContents(remote.ctrd.address, ns);
    expect(held.blobs.length).toBe(4);
    expect(held.snapshots.length).toBe(2);
    await client.images.remove(ref, { sync: true });
    await collectGarbage(remote.ctrd.address, ns);
    expect(await storeContents(remote.ctrd.address, ns)).toEqual({
      blobs: [],
      ingests: [],
      snapshots: [],
      leases: [],
      images: [],
    });
  });

  it("interoperates with ctr in the same namespace, both ways", async () => {
    const { ref } = await publish(reg, "interop:1");
    await remote.client.images.pull(ref);
    const ctr = (args: string[]) =>
      exec("ctr", ["--address", remote.ctrd.address, "--namespace", remote.namespace, ...args], {
        timeout: 60_000,
      });
    expect((await ctr(["images", "ls", "-q"])).stdout.split("\n")).toContain(ref);
    const id = `ctr-run-${process.pid}`;
    const ran = await ctr(["run", "--rm", "--cgroup", `${remote.ctrd.cgroupParent}/${id}`, ref, id]);
    expect(ran.stdout).toContain("hello from the image");

    const { ref: other } = await publish(reg, "fromctr:1");
    await ctr(["images", "pull", "--plain-http", other]);
    const { stdout } = await runImage(remote, remote.client, other);
    expect(stdout).toContain("hello from the image");
  });
});
