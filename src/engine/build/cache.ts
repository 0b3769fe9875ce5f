import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { ImageService } from "../../images/index.js";
import type { ImageRecord } from "../../images/store.js";
import { isErrorCode } from "../../libcontainerd/types/errors.js";

/** A step's image found in the store: its record and id (config digest). */
export interface CachedStep {
  record: ImageRecord;
  id: string;
}

const sortedKeys = (value: unknown): string[] | null =>
  typeof value === "object" && value !== null ? Object.keys(value).sort() : null;

const sortedEntries = (value: unknown): [string, unknown][] | null =>
  typeof value === "object" && value !== null
    ? Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    : null;

const orNull = (value: unknown): unknown => (value === undefined || value === "" ? null : value);

/**
 * The fields of a container config that moby's image cache compares (image/cache/compare.go: Cmd,
 * Env, Entrypoint, Shell, OnBuild, the ports', volumes' and labels' sets, User, WorkingDir,
 * StopSignal, Healthcheck …; not Hostname, Image and the like), as one string: two configs are the
 * same step when their strings are. Empty and absent are alike, as in Go's zero values.
 */
export function cacheKey(config: unknown): string {
  const field = (name: string): unknown =>
    typeof config === "object" && config !== null ? Reflect.get(config, name) : undefined;
  const list = (name: string): unknown => {
    const value = field(name);
    return Array.isArray(value) && value.length > 0 ? value : null;
  };
  return JSON.stringify([
    list("Cmd"),
    list("Env"),
    list("Entrypoint"),
    list("Shell"),
    list("OnBuild"),
    sortedKeys(field("ExposedPorts")),
    sortedKeys(field("Volumes")),
    sortedEntries(field("Labels")),
    orNull(field("User")),
    orNull(field("WorkingDir")),
    orNull(field("StopSignal")),
    orNull(field("StopTimeout")),
    orNull(field("ArgsEscaped")),
    field("Healthcheck") === undefined ? null : JSON.stringify(sortedEntries(field("Healthcheck"))),
  ]);
}

/**
 * The classic builder's layer cache (moby's imageProber over image/cache's local cache): a step's
 * image is a child of the image it ran on (the parent label) whose container config is the step's;
 * the newest such when several are. A miss busts the cache for the rest of the stage (the steps
 * after one that ran anew cannot have been made before); `reset` at each stage.
 */
export class StepCache {
  private busted = false;

  constructor(
    private readonly images: ImageService,
    private readonly disabled: boolean,
  ) {}

  reset(): void {
    this.busted = false;
  }

  /** The image of the step `containerConfig` on the image of target digest `parent`, if made before. */
  async probe(
    parent: string,
    containerConfig: unknown,
    signal: AbortSignal,
  ): Promise<CachedStep | undefined> {
    if (this.disabled || this.busted) return undefined;
    const wanted = cacheKey(containerConfig);
    const matches = (await this.images.buildChildren(parent, { signal }))
      .filter(({ containerConfig: made }) => made !== undefined && cacheKey(made) === wanted)
      .map(({ record }) => record)
      .sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
    // The newest that is still whole (one removed meanwhile, or missing content, is no hit).
    for (const record of matches) {
      const resolved = await this.images.resolve(record.name, { signal }).catch((err: unknown) => {
        if (isErrorCode(err, "not_found")) return undefined;
        throw err;
      });
      if (resolved) return { record, id: resolved.manifest.config.digest };
    }
    this.busted = true;
    return undefined;
  }
}

/**
 * What a COPY's or ADD's cache key holds of a source in the context (moby hashes the sources'
 * contents and metadata into the step's `COPY file:<hash> in <dest>`): `file:` or `dir:` and a
 * sha256 of the source's name (a file lands under it) and each entry's relative path, type, mode,
 * owner, size, link target and content; not the modification time (as tarsum v1), so a context
 * sent again unchanged hits the cache.
 */
export async function contextSourceHash(path: string, name: string, signal: AbortSignal): Promise<string> {
  const hash = createHash("sha256").update(`${name}\0`);
  // A second path of an inode in the tree is copied as a hard link to the first (packTree, moby's
  // tarsum's typeflag and linkname): its entry names the first, so linked and separate copies differ.
  const linked = new Map<string, string>();
  const visit = async (absolute: string, relative: string): Promise<boolean> => {
    signal.throwIfAborted();
    const stat = await lstat(absolute);
    const inode = `${stat.dev}:${stat.ino}`;
    const first = !stat.isDirectory() && stat.nlink > 1 ? linked.get(inode) : undefined;
    if (first !== undefined) {
      hash.update(`${relative}\0hardlink\0${first}\n`);
      return false;
    }
    if (!stat.isDirectory() && stat.nlink > 1) linked.set(inode, relative);
    const kind = stat.isDirectory()
      ? "dir"
      : stat.isSymbolicLink()
        ? "symlink"
        : stat.isFile()
          ? "file"
          : "other";
    const link = stat.isSymbolicLink() ? await readlink(absolute) : "";
    hash.update(`${relative}\0${kind}\0${stat.mode}\0${stat.uid}\0${stat.gid}\0${stat.size}\0${link}\0`);
    if (stat.isFile()) {
      const content = createHash("sha256");
      for await (const chunk of createReadStream(absolute, { signal })) content.update(chunk as Buffer);
      hash.update(content.digest("hex"));
    }
    if (stat.isDirectory())
      for (const name of (await readdir(absolute)).sort())
        await visit(join(absolute, name), relative === "" ? name : `${relative}/${name}`);
    hash.update("\n");
    return stat.isDirectory();
  };
  const isDir = await visit(path, "");
  return `${isDir ? "dir" : "file"}:${hash.digest("hex")}`;
}

/** Several sources' hashes as one (moby's `multi:`), a single source's as it is. */
export function sourcesHash(hashes: readonly string[]): string {
  if (hashes.length === 1) return hashes[0] ?? "";
  return `multi:${createHash("sha256").update(hashes.join(",")).digest("hex")}`;
}
