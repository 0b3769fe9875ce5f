import type { Mount } from "../gen/github.com/containerd/containerd/api/types/mount_pb.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import type { HealthConfig } from "./containers/health.js";

/** The parts of an image's config (OCI image-spec `config`) that shape a container. */
export interface ImageConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthConfig;
  /** VOLUME paths: each an anonymous volume of a container. */
  Volumes?: Record<string, Record<string, never>>;
}

export interface ResolvedImage {
  /** `sha256:…` of the image config, as Docker shows image ids. */
  id: string;
  /** The reference the caller used, normalised (`busybox:latest`). */
  ref: string;
  config: ImageConfig;
}

/** One image as GET /images/json lists it. */
export interface ImageSummary {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Unix seconds. */
  created: number;
  size: number;
  labels: Record<string, string>;
  /** The target digests of the image's records (what a build step's image names as its parent). */
  targets?: string[];
  /** The target digest of the image a build step made this one on (the parent label), if any. */
  parent?: string;
}

/** Where a container's root filesystem comes from: a directory, or a snapshot the driver mounts. */
export type PreparedRootfs =
  | { kind: "directory"; path: string }
  | { kind: "snapshot"; snapshotter: string; key: string };

/**
 * The one step between the Engine API and images: an image reference → its config and a root
 * filesystem for a new container. Everything else in the engine is independent of how images work.
 */
export interface ImageSource {
  list(opts?: CallOptions): Promise<ImageSummary[]>;
  /** NotFoundError when there is no such image here. */
  resolve(ref: string, opts?: CallOptions): Promise<ResolvedImage>;
  prepareRootfs(image: ResolvedImage, containerId: string, opts?: CallOptions): Promise<PreparedRootfs>;
  /** `uid:gid` for a user the image names (from its /etc/passwd and /etc/group). */
  user(
    image: ResolvedImage,
    user: string,
    opts?: CallOptions,
  ): Promise<{ uid: number; gid: number; additionalGids?: number[] }>;
  /** The mounts of the rootfs prepareRootfs made for a container (to read or write it while it is stopped). */
  rootfsMounts(containerId: string, opts?: CallOptions): Promise<Mount[]>;
  /** Gives back what prepareRootfs made, when the container is removed (or its creation failed). */
  releaseRootfs(rootfs: PreparedRootfs, opts?: CallOptions): Promise<void>;
}
