export type { ImportOptions } from "./archive-import.js";
export type { SaveOptions } from "./archive-save.js";
export type { CommitOptions, NewImage } from "./commit.js";
export type { ImageProcess, ImageProcessOverrides } from "./image-spec.js";
export type { Descriptor, ImageConfig, ImageRunConfig, Platform } from "./media-types.js";
export { formatPlatform, hostPlatform, parsePlatform } from "./platform.js";
export type { PullOptions, PullProgress } from "./pull.js";
export type { PushOptions, PushProgress } from "./push.js";
export {
  familiarRepository,
  formatReference,
  type ImageReference,
  normalizeReference,
  parseReference,
} from "./reference.js";
export type { RegistryOptions } from "./registry/client.js";
export type { Credentials, CredentialsProvider } from "./registry/credentials.js";
export { defaultDockerConfigPath, dockerConfigCredentials } from "./registry/credentials.js";
export type { RootfsImportOptions } from "./rootfs-import.js";
export {
  type ImageServiceOptions,
  type PlatformOptions,
  RemoteImageService,
  type RemoveImageOptions,
} from "./service.js";
export type { ImageRecord } from "./store.js";
export { type ImageService, unsupportedImageService } from "./unsupported.js";
