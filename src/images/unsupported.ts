import { NotImplementedError } from "../libcontainerd/types/errors.js";
import type { RemoteImageService } from "./service.js";

/** What `client.images` offers: the containerd image service's public surface. */
export type ImageService = Omit<RemoteImageService, never>;

/**
 * `client.images` on a backend without images (the local HCS backend): every method rejects with
 * NotImplementedError, so callers find out at the first call, with the reason.
 */
export function unsupportedImageService(backend: string): ImageService {
  const fail = (method: string) => () =>
    Promise.reject(
      new NotImplementedError(
        `images.${method}: the ${backend} backend has no image support (containerd only)`,
      ),
    );
  return new Proxy({} as ImageService, {
    get: (_target, property) => (property === "then" ? undefined : fail(String(property))),
  });
}
