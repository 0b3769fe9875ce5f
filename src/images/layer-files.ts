import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { NotImplementedError } from "../libcontainerd/types/errors.js";
import type { ContainerdServices } from "./containerd.js";
import { type Descriptor, MediaType } from "./media-types.js";

const MAX_FILE_BYTES = 4 * 1024 * 1024;

function isGzip(mediaType: string): boolean {
  return mediaType.endsWith("gzip") || mediaType === MediaType.dockerLayerGzip;
}

/** `./etc/passwd` and `etc/passwd` are the same path in a layer. */
function clean(path: string): string {
  return path.replace(/^\.?\/+/, "").replace(/\/+$/, "");
}

/**
 * Small files (e.g. /etc/passwd) as the image's layers leave them, read from the content store
 * without mounting anything: layers are read top-down, and a file is settled by the first layer
 * that holds it or whites it out (a `.wh.` file, or an opaque `.wh..wh..opq` directory). A file
 * no layer has, or one deleted, maps to null.
 */
export async function readFilesFromLayers(
  services: ContainerdServices,
  layers: readonly Descriptor[],
  paths: readonly string[],
  opts?: CallOptions,
): Promise<Map<string, Buffer | null>> {
  const wanted = new Set(paths.map(clean));
  const found = new Map<string, Buffer | null>();
  for (const layer of [...layers].reverse()) {
    if (found.size === wanted.size) break;
    if (layer.mediaType.endsWith("zstd"))
      throw new NotImplementedError(`reading files from zstd layer ${layer.digest} is not supported`);
    const settled = new Map<string, Buffer | null>();
    const parser = extract();
    parser.on("entry", (header, stream, next) => {
      const name = clean(header.name);
      const dir = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
      const base = name.slice(name.lastIndexOf("/") + 1);
      const settle = (path: string, value: Buffer | null) => {
        if (wanted.has(path) && !found.has(path) && !settled.has(path)) settled.set(path, value);
      };
      if (base === ".wh..wh..opq") {
        // Everything below `dir` from lower layers is hidden.
        for (const path of wanted) if (path.startsWith(`${dir}/`)) settle(path, null);
      } else if (base.startsWith(".wh.")) {
        settle(dir ? `${dir}/${base.slice(4)}` : base.slice(4), null);
      }
      if (wanted.has(name) && header.type === "file" && (header.size ?? 0) <= MAX_FILE_BYTES) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: unknown) => chunks.push(c as Buffer));
        stream.on("end", () => {
          settle(name, Buffer.concat(chunks));
          next();
        });
        return;
      }
      if (wanted.has(name)) settle(name, null);
      stream.on("end", () => next());
      stream.resume();
    });
    const source = Readable.from(services.readStream(layer.digest, opts));
    if (isGzip(layer.mediaType)) await pipeline(source, createGunzip(), parser);
    else await pipeline(source, parser);
    for (const [path, value] of settled) found.set(path, value);
  }
  return found;
}
