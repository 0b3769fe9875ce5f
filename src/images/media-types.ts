import { createHash } from "node:crypto";

/** Media types of Docker schema 2 and OCI image-spec 1.0 (containerd's images/mediatypes.go). */
export const MediaType = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  dockerSchema1Manifest: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociNonDistributableLayer: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociNonDistributableLayerGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
} as const;

const MANIFESTS = new Set<string>([MediaType.dockerManifest, MediaType.ociManifest]);
const INDEXES = new Set<string>([MediaType.dockerManifestList, MediaType.ociIndex]);
const CONFIGS = new Set<string>([MediaType.dockerConfig, MediaType.ociConfig]);
const LAYERS = new Set<string>([
  MediaType.dockerLayer,
  MediaType.dockerLayerGzip,
  MediaType.dockerForeignLayerGzip,
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.ociNonDistributableLayer,
  MediaType.ociNonDistributableLayerGzip,
]);

export const isManifest = (mediaType: string): boolean => MANIFESTS.has(mediaType);
export const isIndex = (mediaType: string): boolean => INDEXES.has(mediaType);
export const isConfig = (mediaType: string): boolean => CONFIGS.has(mediaType);
export const isLayer = (mediaType: string): boolean => LAYERS.has(mediaType);

/** What a registry is asked for when resolving a reference. */
export const MANIFEST_ACCEPT = [
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.ociIndex,
  "*/*",
].join(", ");

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  "os.version"?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** An image config's `config`: what a container of the image runs with (image-spec config.md). */
export interface ImageRunConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** Docker's extension: the image's HEALTHCHECK (durations in nanoseconds). */
  Healthcheck?: {
    Test?: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
  };
  /** Docker's extension: ONBUILD triggers, kept for a later build. */
  OnBuild?: string[] | null;
  /** Docker's extension: SHELL's shell, which a later build's shell-form RUN, CMD and ENTRYPOINT run in. */
  Shell?: string[];
}

/** One entry of an image config's history (image-spec config.md). */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The OCI image configuration (image-spec config.md), the fields we read. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  /** Docker's extension: the comment of a commit or an import. */
  comment?: string;
  config?: ImageRunConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** identity.ChainID: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: readonly string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    const parent = chain[chain.length - 1];
    chain.push(parent === undefined ? diffId : sha256(`${parent} ${diffId}`));
  }
  return chain;
}

/** containerd's gc reference labels for the children of a manifest or index (images.ChildGCLabels). */
export function childGcLabels(children: readonly Descriptor[]): Record<string, string> {
  const labels: Record<string, string> = {};
  const counts = new Map<string, number>();
  for (const child of children) {
    const key = isConfig(child.mediaType)
      ? "containerd.io/gc.ref.content.config"
      : isManifest(child.mediaType)
        ? "containerd.io/gc.ref.content.m."
        : isLayer(child.mediaType)
          ? "containerd.io/gc.ref.content.l."
          : "containerd.io/gc.ref.content.";
    const index = counts.get(key) ?? 0;
    counts.set(key, index + 1);
    labels[index > 0 || key.endsWith(".") ? `${key}${index}` : key] = child.digest;
  }
  return labels;
}

export const LABEL_UNCOMPRESSED = "containerd.io/uncompressed";
export const LABEL_DISTRIBUTION_SOURCE = "containerd.io/distribution.source";
export const snapshotGcLabel = (snapshotter: string): string =>
  `containerd.io/gc.ref.snapshot.${snapshotter}`;
