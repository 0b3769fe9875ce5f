import { isErrorCode } from "../libcontainerd/types/errors.js";
import { notFound } from "./errors.js";
import type { ImageSource } from "./image-source.js";
import type { Router } from "./router.js";

/** Image endpoints over an ImageSource: list and inspect. */
export function imageRoutes(router: Router, images: ImageSource): void {
  router.add("GET", "/images/json", async (exchange) => {
    const list = await images.list({ signal: exchange.signal });
    exchange.send(
      200,
      list.map((image) => ({
        Id: image.id,
        ParentId: "",
        RepoTags: image.repoTags,
        RepoDigests: image.repoDigests,
        Created: image.created,
        Size: image.size,
        VirtualSize: image.size,
        SharedSize: -1,
        Labels: image.labels,
        Containers: -1,
      })),
    );
  });

  router.add("GET", "/images/{name*}/json", async (exchange) => {
    const name = exchange.params.name ?? "";
    const image = await images.resolve(name, { signal: exchange.signal }).catch((err: unknown) => {
      if (isErrorCode(err, "not_found")) throw notFound(`No such image: ${name}`);
      throw err;
    });
    const summary = (await images.list({ signal: exchange.signal })).find((entry) => entry.id === image.id);
    exchange.send(200, {
      Id: image.id,
      RepoTags: summary?.repoTags ?? [image.ref],
      RepoDigests: summary?.repoDigests ?? [],
      Parent: "",
      Comment: "",
      Created: new Date((summary?.created ?? 0) * 1000).toISOString(),
      Container: "",
      DockerVersion: "",
      Author: "",
      Config: { ...image.config, Labels: image.config.Labels ?? null },
      Architecture: "amd64",
      Os: "linux",
      Size: summary?.size ?? 0,
      VirtualSize: summary?.size ?? 0,
      GraphDriver: { Data: null, Name: "overlayfs" },
      RootFS: { Type: "layers", Layers: [] },
      Metadata: { LastTagTime: "0001-01-01T00:00:00Z" },
    });
  });
}
