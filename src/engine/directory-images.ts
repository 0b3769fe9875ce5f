import { createHash } from "node:crypto";
import { NotFoundError } from "../libcontainerd/types/errors.js";
import type { ImageSource, ImageSummary, PreparedRootfs, ResolvedImage } from "./image-source.js";

/** `busybox` → `busybox:latest`; a digest or tag is kept. */
export function withDefaultTag(ref: string): string {
  const lastSlash = ref.lastIndexOf("/");
  return ref.includes("@") || ref.slice(lastSlash + 1).includes(":") ? ref : `${ref}:latest`;
}

/**
 * Images that are plain root filesystem directories, named by the caller (for an engine without an
 * image store, and for tests of the engine apart from images). Containers share the directory.
 */
export class DirectoryImages implements ImageSource {
  private readonly images = new Map<string, { dir: string; id: string }>();

  constructor(images: Record<string, string>) {
    for (const [name, dir] of Object.entries(images)) {
      this.images.set(withDefaultTag(name), {
        dir,
        id: `sha256:${createHash("sha256").update(dir).digest("hex")}`,
      });
    }
  }

  async list(): Promise<ImageSummary[]> {
    return [...this.images].map(([ref, image]) => ({
      id: image.id,
      repoTags: [ref],
      repoDigests: [],
      created: 0,
      size: 0,
      labels: {},
    }));
  }

  async resolve(ref: string): Promise<ResolvedImage> {
    const name = withDefaultTag(ref);
    const image =
      this.images.get(name) ??
      [...this.images.values()].find((candidate) => candidate.id === ref || candidate.id === `sha256:${ref}`);
    if (!image) throw new NotFoundError(`No such image: ${ref}`);
    return {
      id: image.id,
      ref: name,
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] },
    };
  }

  async prepareRootfs(image: ResolvedImage): Promise<PreparedRootfs> {
    const found = [...this.images.values()].find((candidate) => candidate.id === image.id);
    if (!found) throw new NotFoundError(`No such image: ${image.ref}`);
    return { kind: "directory", path: found.dir };
  }

  async releaseRootfs(): Promise<void> {}
}
