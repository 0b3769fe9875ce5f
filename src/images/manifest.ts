import { InvalidArgumentError, NotFoundError, NotImplementedError } from "../libcontainerd/types/errors.js";
import {
  type Descriptor,
  type ImageConfig,
  type Index,
  isConfig,
  isIndex,
  isLayer,
  isManifest,
  type Manifest,
  MediaType,
  type Platform,
} from "./media-types.js";
import { formatPlatform, platformMatches } from "./platform.js";

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function parseJson(content: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(content.toString("utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON`, { cause: err });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new InvalidArgumentError(`${what} is not a JSON object`);
  return doc as Record<string, unknown>;
}

function descriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    typeof d !== "object" ||
    d === null ||
    typeof d.mediaType !== "string" ||
    typeof d.digest !== "string" ||
    !DIGEST.test(d.digest) ||
    typeof d.size !== "number" ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  ) {
    throw new InvalidArgumentError(`${what} is not a valid descriptor (mediaType, sha256 digest, size)`);
  }
  return d as Descriptor;
}

function refuseUnknown(mediaType: string, what: string): never {
  if (mediaType === MediaType.dockerSchema1Manifest)
    throw new NotImplementedError(`${what}: Docker schema 1 manifests are not supported`);
  throw new InvalidArgumentError(`${what}: unknown media type ${JSON.stringify(mediaType)}`);
}

/** Parses and checks a manifest: config and layers described, every media type one we can unpack. */
export function parseManifest(content: Buffer, what: string): Manifest {
  const doc = parseJson(content, what);
  if (doc.schemaVersion !== 2) throw new InvalidArgumentError(`${what}: schemaVersion must be 2`);
  const config = descriptor(doc.config, `${what}: config`);
  if (!isConfig(config.mediaType)) refuseUnknown(config.mediaType, `${what}: config`);
  if (!Array.isArray(doc.layers)) throw new InvalidArgumentError(`${what}: layers must be an array`);
  const layers = doc.layers.map((l, i) => descriptor(l, `${what}: layer ${i}`));
  for (const [i, layer] of layers.entries()) {
    if (!isLayer(layer.mediaType)) refuseUnknown(layer.mediaType, `${what}: layer ${i}`);
  }
  return { ...(doc as unknown as Manifest), config, layers };
}

export function parseIndex(content: Buffer, what: string): Index {
  const doc = parseJson(content, what);
  if (doc.schemaVersion !== 2) throw new InvalidArgumentError(`${what}: schemaVersion must be 2`);
  if (!Array.isArray(doc.manifests)) throw new InvalidArgumentError(`${what}: manifests must be an array`);
  const manifests = doc.manifests.map((m, i) => descriptor(m, `${what}: manifest ${i}`));
  return { ...(doc as unknown as Index), manifests };
}

export function parseConfig(content: Buffer, what: string, layers: number): ImageConfig {
  const doc = parseJson(content, what) as unknown as ImageConfig;
  const diffIds = doc.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== "string" || !DIGEST.test(d)))
    throw new InvalidArgumentError(`${what}: rootfs.diff_ids must be a list of sha256 digests`);
  if (diffIds.length !== layers)
    throw new InvalidArgumentError(`${what}: ${diffIds.length} diff IDs for ${layers} layers`);
  checkProcessFields(doc.config, what);
  return doc;
}

const isStringList = (value: unknown): boolean =>
  Array.isArray(value) && value.every((item) => typeof item === "string");

/**
 * The fields a container's process is made from have the types the image spec gives them (dockerd
 * refuses such a config at pull, failing to unmarshal it): a string Cmd would otherwise run as its
 * letters, a string Env fail later as a TypeError.
 */
function checkProcessFields(config: unknown, what: string): void {
  if (config === undefined || config === null) return;
  if (typeof config !== "object" || Array.isArray(config))
    throw new InvalidArgumentError(`${what}: config must be an object`);
  const fields = config as Record<string, unknown>;
  for (const name of ["Env", "Entrypoint", "Cmd"]) {
    const value = fields[name];
    if (value !== undefined && value !== null && !isStringList(value))
      throw new InvalidArgumentError(`${what}: config.${name} must be a list of strings`);
  }
  for (const name of ["User", "WorkingDir"]) {
    const value = fields[name];
    if (value !== undefined && value !== null && typeof value !== "string")
      throw new InvalidArgumentError(`${what}: config.${name} must be a string`);
  }
}

/** The index entry for a platform (the first that matches, as containerd's LimitManifests(1)). */
export function selectManifest(index: Index, platform: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => isManifest(m.mediaType) || isIndex(m.mediaType));
  const match = candidates.find((m) => platformMatches(platform, m.platform));
  if (match) return match;
  const offered = candidates.map((m) => (m.platform ? formatPlatform(m.platform) : "unknown")).join(", ");
  throw new NotFoundError(
    `${what}: no manifest for platform ${formatPlatform(platform)} (the image has: ${offered || "none"})`,
  );
}

export function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.dockerSchema1Manifest;
}

export { isIndex, isManifest };
