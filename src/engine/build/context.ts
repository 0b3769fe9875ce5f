import { lstat, mkdtemp, readdir, readFile, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extractTar } from "../containers/filesystem.js";
import { badRequest } from "../errors.js";

/** A build context unpacked on the host, for as long as the build runs. */
export interface BuildContext {
  dir: string;
  dockerfile: string;
  /** Removes the unpacked context. */
  close(): Promise<void>;
}

/** The body as a plain tar: gzip'd contexts (`docker build` with compression) are decompressed. */
async function plainTar(input: Readable, signal: AbortSignal): Promise<Readable> {
  const out = new PassThrough();
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : first.value;
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  const target = gzip ? createGunzip() : out;
  if (gzip) pipeline(target, out, { signal }).catch((err: unknown) => out.destroy(err as Error));
  (async () => {
    if (head.length > 0 && !target.write(head)) await new Promise((resolve) => target.once("drain", resolve));
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      if (!target.write(next.value)) await new Promise((resolve) => target.once("drain", resolve));
    target.end();
  })().catch((err: unknown) => target.destroy(err as Error));
  return out;
}

/** One .dockerignore pattern (moby's patternmatcher): a Go filepath.Match with `**`, or an exclusion. */
interface IgnorePattern {
  regexp: RegExp;
  exclusion: boolean;
}

function patternRegExp(pattern: string): RegExp {
  let source = "";
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] ?? "";
    if (char === "*" && pattern[index + 1] === "*") {
      index++;
      if (pattern[index + 1] === "/") {
        index++;
        source += "(.*/)?";
      } else source += ".*";
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else if (char === "[") {
      const end = pattern.indexOf("]", index + 1);
      if (end < 0) throw badRequest(`syntax error in .dockerignore pattern: ${pattern}`);
      source += `[${pattern.slice(index + 1, end).replace(/^!/, "^")}]`;
      index = end;
    } else if (char === "\\") {
      source += (pattern[index + 1] ?? "").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      index++;
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** The patterns of a .dockerignore, as the CLI and dockerd read them (comments, `!`, leading `/`). */
export function parseDockerignore(text: string): IgnorePattern[] {
  const patterns: IgnorePattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const exclusion = line.startsWith("!");
    if (exclusion) line = line.slice(1).trim();
    const cleaned = posix.normalize(line).replace(/^\/+/, "").replace(/\/+$/, "");
    if (cleaned === "" || cleaned === ".") continue;
    patterns.push({ regexp: patternRegExp(cleaned), exclusion });
  }
  return patterns;
}

/** Whether `path` (relative, `/`-separated) is ignored: the last pattern matching it or a parent decides. */
export function isIgnored(patterns: readonly IgnorePattern[], path: string): boolean {
  const parents: string[] = [];
  const parts = path.split("/");
  for (let length = 1; length < parts.length; length++) parents.push(parts.slice(0, length).join("/"));
  let ignored = false;
  for (const pattern of patterns) {
    if (pattern.exclusion !== ignored) continue;
    const matches = pattern.regexp.test(path) || parents.some((parent) => pattern.regexp.test(parent));
    if (matches) ignored = !pattern.exclusion;
  }
  return ignored;
}

/** Removes what .dockerignore ignores from the unpacked context (a directory kept if an exclusion may keep a child). */
async function removeIgnored(dir: string, patterns: readonly IgnorePattern[]): Promise<void> {
  const hasExclusions = patterns.some((pattern) => pattern.exclusion);
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      const ignored = isIgnored(patterns, path);
      if (entry.isDirectory()) {
        if (ignored && !hasExclusions) await rm(join(dir, path), { recursive: true, force: true });
        else {
          await walk(path);
          if (ignored && (await readdir(join(dir, path))).length === 0)
            await rm(join(dir, path), { recursive: true });
        }
      } else if (ignored) await rm(join(dir, path), { force: true });
    }
  };
  await walk("");
}

/**
 * The body of POST /build (a tar, plain or gzip'd) unpacked into a temporary directory; the
 * Dockerfile read from `dockerfilePath`, then what .dockerignore names removed (the Dockerfile and
 * .dockerignore too when it names them, as dockerd's remotecontext does).
 */
export async function unpackContext(
  body: Readable,
  dockerfilePath: string,
  signal: AbortSignal,
): Promise<BuildContext> {
  const dir = await mkdtemp(join(tmpdir(), "ctrd-build-"));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    await extractTar(dir, "/", await plainTar(body, signal), { noOverwriteDirNonDir: false });
    signal.throwIfAborted();
    const relative = posix.normalize(dockerfilePath.replace(/^\/+/, ""));
    if (relative.startsWith("../"))
      throw badRequest(`the Dockerfile (${dockerfilePath}) must be within the build context`);
    const path = join(dir, relative);
    const real = await realpath(path).catch(() => "");
    const stat = real.startsWith(`${dir}/`) ? await lstat(real).catch(() => undefined) : undefined;
    if (!stat?.isFile()) throw badRequest(`Cannot locate specified Dockerfile: ${dockerfilePath}`);
    const dockerfile = await readFile(real, "utf8");
    const ignoreText = await readFile(join(dir, ".dockerignore"), "utf8").catch(() => "");
    const patterns = parseDockerignore(ignoreText);
    if (patterns.length > 0) await removeIgnored(dir, patterns);
    return { dir, dockerfile, close };
  } catch (err) {
    await close();
    throw err;
  }
}
