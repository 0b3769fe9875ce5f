import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { FALLBACK_APPLETS } from "../../src/cli/rootfs.js";
import { type Descriptor, MediaType, sha256 } from "../../src/images/media-types.js";
import { requireBinary } from "./binaries.js";
import type { TestRegistry } from "./registry.js";

const run = promisify(execFile);

export type LayerEntry =
  | string
  | Buffer
  | { symlink: string }
  | { dir: true; mode?: number }
  | { file: string | Buffer; mode?: number; uid?: number; gid?: number };

/** A layer: files to add (paths without a leading slash), and paths to delete (whiteouts). */
export interface LayerSpec {
  files?: Record<string, LayerEntry>;
  whiteouts?: string[];
  /** Leave the layer uncompressed (application/vnd.oci.image.layer.v1.tar). */
  uncompressed?: boolean;
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: {
    Cmd?: string[];
    Entrypoint?: string[];
    Env?: string[];
    WorkingDir?: string;
    User?: string;
    StopSignal?: string;
    Labels?: Record<string, string>;
    Volumes?: Record<string, Record<string, never>>;
  };
  os?: string;
  architecture?: string;
  variant?: string;
}

export interface BuiltBlob extends Descriptor {
  content: Buffer;
}

export interface BuiltImage {
  manifest: BuiltBlob;
  config: BuiltBlob;
  layers: BuiltBlob[];
  diffIds: string[];
}

/** A tar of the layer's entries (with whiteouts as `.wh.` files), as Buffer. */
export async function layerTar(spec: LayerSpec): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on("data", (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    tar.on("end", resolve);
    tar.on("error", reject);
  });
  const mtime = new Date(1_700_000_000_000);
  const add = (header: Parameters<typeof tar.entry>[0], body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      tar.entry({ mtime, ...header }, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  for (const [path, entry] of Object.entries(spec.files ?? {})) {
    if (typeof entry === "string" || Buffer.isBuffer(entry)) {
      await add({ name: path, mode: 0o644 }, Buffer.from(entry));
    } else if ("symlink" in entry) {
      await add({ name: path, type: "symlink", linkname: entry.symlink, mode: 0o777 });
    } else if ("dir" in entry) {
      await add({ name: path, type: "directory", mode: entry.mode ?? 0o755 });
    } else {
      await add(
        { name: path, mode: entry.mode ?? 0o644, uid: entry.uid ?? 0, gid: entry.gid ?? 0 },
        Buffer.from(entry.file),
      );
    }
  }
  for (const path of spec.whiteouts ?? []) {
    const slash = path.lastIndexOf("/");
    await add({ name: `${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`, mode: 0o644 });
  }
  tar.finalize();
  await ended;
  return Buffer.concat(chunks);
}

function blob(mediaType: string, content: Buffer): BuiltBlob {
  return { mediaType, digest: sha256(content), size: content.length, content };
}

/** An OCI image: gzip'd layers, a config, a manifest. */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const layers: BuiltBlob[] = [];
  const diffIds: string[] = [];
  for (const layer of spec.layers) {
    const tar = await layerTar(layer);
    diffIds.push(sha256(tar));
    layers.push(
      layer.uncompressed ? blob(MediaType.ociLayer, tar) : blob(MediaType.ociLayerGzip, gzipSync(tar)),
    );
  }
  const config = blob(
    MediaType.ociConfig,
    Buffer.from(
      JSON.stringify({
        created: "2026-11-30T00:00:00Z",
        architecture: spec.architecture ?? "amd64",
        os: spec.os ?? "linux",
        ...(spec.variant ? { variant: spec.variant } : {}),
        config: {
          Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
          ...spec.config,
        },
        rootfs: { type: "layers", diff_ids: diffIds },
      }),
    ),
  );
  const manifest = blob(
    MediaType.ociManifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
      }),
    ),
  );
  return { manifest, config, layers, diffIds };
}

/** The busybox base layer: /bin/busybox, its applets, the dirs runc mounts onto, passwd and group. */
export function busyboxLayer(extra: Record<string, LayerEntry> = {}): LayerSpec {
  const files: Record<string, LayerEntry> = {
    "bin/": { dir: true },
    "bin/busybox": { file: readFileSync(requireBinary("busybox")), mode: 0o755 },
  };
  for (const applet of FALLBACK_APPLETS)
    if (applet !== "busybox") files[`bin/${applet}`] = { symlink: "busybox" };
  for (const dir of ["etc", "proc", "sys", "dev", "tmp", "root", "home"])
    files[`${dir}/`] = { dir: true, mode: dir === "tmp" ? 0o1777 : 0o755 };
  files["etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
  files["etc/group"] = "root:x:0:\nnogroup:x:65534:\n";
  return { files: { ...files, ...extra } };
}

/** Writes images (and optionally a multi-platform index) as an OCI image layout directory. */
export function writeOciLayout(
  dir: string,
  entries: {
    tag: string;
    images: BuiltImage[];
    platforms?: { os: string; architecture: string; variant?: string }[];
  }[],
): void {
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const put = (b: BuiltBlob) => writeFileSync(join(dir, "blobs/sha256", b.digest.slice(7)), b.content);
  const manifests: Descriptor[] = [];
  for (const entry of entries) {
    for (const image of entry.images) {
      for (const b of [image.manifest, image.config, ...image.layers]) put(b);
    }
    let top: BuiltBlob;
    if (entry.platforms) {
      top = blob(
        MediaType.ociIndex,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.ociIndex,
            manifests: entry.images.map((image, i) => ({
              mediaType: image.manifest.mediaType,
              digest: image.manifest.digest,
              size: image.manifest.size,
              platform: entry.platforms?.[i],
            })),
          }),
        ),
      );
      put(top);
    } else {
      top = (entry.images[0] as BuiltImage).manifest;
    }
    manifests.push({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.size,
      annotations: { "org.opencontainers.image.ref.name": entry.tag },
    });
  }
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
}

/** `skopeo copy` of a layout's tag to the registry (the real client that pushes test images). */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  registry: TestRegistry,
  repository: string,
  opts: { all?: boolean } = {},
): Promise<string> {
  const dest = `${registry.host}/${repository}`;
  // --preserve-digests: skopeo would otherwise compress uncompressed layers on the way.
  const args = ["copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"];
  if (opts.all) args.push("--all");
  if (registry.username && (await needsCreds(registry)))
    args.push("--dest-creds", `${registry.username}:${registry.password}`);
  args.push(`oci:${layoutDir}:${tag}`, `docker://${dest}`);
  await run(requireBinary("skopeo"), args, { timeout: 60_000 });
  return dest;
}

async function needsCreds(registry: TestRegistry): Promise<boolean> {
  return readFileSync(join(registry.dir, "config.yml"), "utf8").includes("auth:");
}

/** Builds an image and pushes it to `registry` as `repository` (with its tag). */
export async function publishImage(
  registry: TestRegistry,
  workDir: string,
  repository: string,
  spec: ImageSpec,
): Promise<{ ref: string; image: BuiltImage }> {
  const image = await buildImage(spec);
  const layout = join(workDir, `layout-${repository.replace(/[/:]/g, "_")}`);
  const [name, tag = "latest"] = repository.split(":");
  writeOciLayout(layout, [{ tag, images: [image] }]);
  await pushLayout(layout, tag, registry, `${name}:${tag}`);
  return { ref: `${registry.host}/${name}:${tag}`, image };
}
