import { InvalidArgumentError } from "../libcontainerd/types/errors.js";

/**
 * An image reference as Docker reads it: `busybox` is `docker.io/library/busybox:latest`,
 * `registry:5000/team/app@sha256:…` keeps its registry and digest. Rules from distribution's
 * `reference` package (normalize.go, regexp.go).
 */
export interface ImageReference {
  /** `docker.io`, `127.0.0.1:5000`, `ghcr.io` … */
  readonly domain: string;
  /** The repository path inside the registry: `library/busybox`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

export const DOCKER_HUB = "docker.io";
/** Where Docker Hub's API actually answers. */
export const DOCKER_HUB_REGISTRY = "registry-1.docker.io";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;

function invalid(ref: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

function isDomain(part: string): boolean {
  if (part === "localhost") return true;
  if (!part.includes(".") && !part.includes(":")) return false;
  const ipv6 = /^\[[0-9a-fA-F:]+\](?::\d+)?$/;
  if (ipv6.test(part)) return true;
  const [host = "", port, extra] = part.split(":");
  if (extra !== undefined || (port !== undefined && !/^\d+$/.test(port))) return false;
  return host.split(".").every((c) => DOMAIN_COMPONENT.test(c));
}

export function validateDigest(digest: string, what = "digest"): string {
  if (!DIGEST.test(digest)) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(digest)}`);
  if (digest.startsWith("sha256:") && !SHA256.test(digest))
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(digest)}: sha256 wants 64 hex digits`);
  return digest;
}

/** Parses and normalises a reference; a bare name gets the tag `latest`. InvalidArgumentError when malformed. */
export function parseReference(ref: string): ImageReference {
  if (ref === "") throw invalid(ref, "empty");
  if (ref.startsWith("sha256:") || /^[a-f0-9]{64}$/.test(ref))
    throw invalid(ref, "a bare digest names no repository; use NAME@sha256:…");
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest) || (digest.startsWith("sha256:") && !SHA256.test(digest)))
      throw invalid(ref, `bad digest ${JSON.stringify(digest)}`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(ref, `bad tag ${JSON.stringify(tag)}`);
  }
  let domain = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0 && isDomain(rest.slice(0, slash))) {
    domain = rest.slice(0, slash);
    path = rest.slice(slash + 1);
  }
  if (domain === "index.docker.io") domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (path === "") throw invalid(ref, "no repository name");
  for (const component of path.split("/")) {
    if (!COMPONENT.test(component)) {
      const hint = /[A-Z]/.test(component) ? " (repository names must be lowercase)" : "";
      throw invalid(ref, `bad repository component ${JSON.stringify(component)}${hint}`);
    }
  }
  if (domain.length + 1 + path.length > MAX_NAME) throw invalid(ref, `name longer than ${MAX_NAME}`);
  if (tag === undefined && digest === undefined) tag = "latest";
  return {
    domain,
    path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** `docker.io/library/busybox` */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised name, as containerd's image records store it. */
export function formatReference(ref: ImageReference): string {
  let out = repositoryName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** The short name Docker shows: `busybox`, `team/app`, `127.0.0.1:5000/app`. */
export function familiarRepository(ref: ImageReference): string {
  if (ref.domain !== DOCKER_HUB) return repositoryName(ref);
  return ref.path.startsWith("library/") && ref.path.split("/").length === 2 ? ref.path.slice(8) : ref.path;
}

/** Normalises a reference string: `busybox` → `docker.io/library/busybox:latest`. */
export function normalizeReference(ref: string): string {
  return formatReference(parseReference(ref));
}

/** The host that serves a registry domain's API. */
export function registryHost(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_REGISTRY : domain;
}
