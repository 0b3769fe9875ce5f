import type { Writable } from "node:stream";
import type { HistoryEntry } from "../images/media-types.js";
import type { PullProgress } from "../images/pull.js";
import type { PushProgress } from "../images/push.js";
import { parseReference } from "../images/reference.js";
import type { Credentials } from "../images/registry/credentials.js";
import { isDangling, LABEL_BUILD_PARENT } from "../images/store.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { type ContainerdImages, familiarName } from "./containerd-images.js";
import { isObject } from "./containers/config.js";
import type { ContainerStore } from "./containers/store.js";
import { badRequest, conflict, EngineError, notFound, toHttpError } from "./errors.js";
import type { EventBus } from "./events.js";
import { type Exchange, labelsMatch, queryBool, queryFilters } from "./http.js";
import type { ImageSummary } from "./image-source.js";
import { importImage } from "./new-images.js";
import { pruneFilter } from "./prune.js";
import type { Router } from "./router.js";

/** One api/types.ImageSummary (GET /images/json, /system/df), with how many containers use the image. */
export function imageView(
  image: ImageSummary,
  store: ContainerStore,
  sharedSize: number,
  all: readonly ImageSummary[] = [],
): Record<string, unknown> {
  return {
    Id: image.id,
    ParentId: parentOf(image, all)?.id ?? "",
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Created: image.created,
    Size: image.size,
    VirtualSize: image.size,
    SharedSize: sharedSize,
    Labels: image.labels,
    Containers: store.all().filter((record) => record.Image === image.id).length,
  };
}

/** X-Registry-Auth: base64url JSON of api/types.AuthConfig (username/password, or an identity token). */
export function registryAuth(header: string | string[] | undefined): Credentials | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    throw badRequest("invalid X-Registry-Auth header: want base64url-encoded JSON");
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const username = Reflect.get(parsed, "username");
  const password = Reflect.get(parsed, "password");
  if (typeof username === "string" && username !== "" && typeof password === "string")
    return { username, password };
  return undefined;
}

const LAYER_STATUS: Partial<Record<PullProgress["state"], string>> = {
  waiting: "Waiting",
  downloading: "Downloading",
  exists: "Already exists",
  downloaded: "Download complete",
  extracting: "Extracting",
  unpacked: "Pull complete",
};

/** A progress bar as jsonmessage draws it (`[==>   ] 1.2MB/3.4MB`). */
function progressBar(current: number, total: number): string {
  if (total <= 0) return "";
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar = `${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}`.padEnd(width, " ");
  const size = (bytes: number): string =>
    bytes >= 1e9
      ? `${(bytes / 1e9).toFixed(2)}GB`
      : bytes >= 1e6
        ? `${(bytes / 1e6).toFixed(2)}MB`
        : `${(bytes / 1e3).toFixed(2)}kB`;
  return `[${bar}] ${size(current)}/${size(total)}`;
}

/** `fromImage` + `tag` as the CLI splits them: the tag may also be a digest. */
export function pullReference(fromImage: string, tag: string): string {
  if (tag === "") return fromImage;
  return tag.startsWith("sha256:") ? `${fromImage}@${tag}` : `${fromImage}:${tag}`;
}

/** Image endpoints over containerd's images: pull (with Docker's progress stream), list, inspect, tag, remove. */
export function imageRoutes(
  router: Router,
  images: ContainerdImages,
  store: ContainerStore,
  events: EventBus,
): void {
  router.add("GET", "/images/json", async (exchange) => {
    const all = await images.list({ signal: exchange.signal });
    // As dockerd's: an untagged image with children (a build step's) is listed with all=1 only.
    const shown = queryBool(exchange.query, "all")
      ? all
      : all.filter((image) => !(isUntagged(image) && hasChildren(image, all)));
    const list = filterImages(shown, queryFilters(exchange.query));
    exchange.send(
      200,
      list.map((image) => imageView(image, store, -1, all)),
    );
  });

  router.add("POST", "/images/create", (exchange) => pull(exchange, images, events));

  /** The image a path names (404 as dockerd words it), its manifest and config, and its list entry. */
  const lookup = async (exchange: Exchange) => {
    const name = exchange.params.name ?? "";
    const image = await images
      .resolve(name, { signal: exchange.signal })
      .catch(notFoundAs(`No such image: ${name}`));
    const resolved = await images.service.resolve(image.ref, { signal: exchange.signal });
    const all = await images.list({ signal: exchange.signal });
    const summary = all.find((entry) => entry.id === image.id);
    const parent = summary ? parentOf(summary, all) : undefined;
    return { image, resolved, summary, parent, all };
  };

  router.add("GET", "/images/{name*}/json", async (exchange) => {
    const { image, resolved, summary, parent } = await lookup(exchange);
    const config = resolved.config;
    exchange.send(200, {
      Id: image.id,
      RepoTags: summary?.repoTags ?? [familiarName(image.ref)],
      RepoDigests: summary?.repoDigests ?? [],
      Parent: parent?.id ?? "",
      Comment: config.comment ?? "",
      Created: config.created ?? "1970-01-01T00:00:00Z",
      Container: "",
      ContainerConfig: {},
      DockerVersion: "",
      Author: config.author ?? "",
      Config: { ...config.config, Labels: config.config?.Labels ?? null },
      Architecture: config.architecture ?? "",
      Os: config.os ?? "",
      ...(config.variant ? { Variant: config.variant } : {}),
      Size: summary?.size ?? 0,
      VirtualSize: summary?.size ?? 0,
      GraphDriver: { Data: null, Name: images.service.snapshotter },
      RootFS: { Type: "layers", Layers: config.rootfs.diff_ids },
      Metadata: { LastTagTime: "0001-01-01T00:00:00Z" },
    });
  });

  // docker history: the config's history, newest first, each entry that made a layer with its size.
  router.add("GET", "/images/{name*}/history", async (exchange) => {
    const { image, resolved, summary, parent, all } = await lookup(exchange);
    const layers = resolved.manifest.layers;
    const seconds = (time: string | undefined): number => {
      const parsed = time ? Date.parse(time) : Number.NaN;
      return Number.isFinite(parsed) ? Math.floor(parsed / 1000) : 0;
    };
    const declared = (resolved.config.history ?? []).filter(isHistoryEntry);
    // Layers the history does not account for (an image made without history, or one committed on
    // such an image) are shown first, each as an entry of its own, so each row has its own layer's size.
    const unaccounted = layers.length - declared.filter((entry) => !entry.empty_layer).length;
    const entries: HistoryEntry[] = [
      ...layers
        .slice(0, Math.max(0, unaccounted))
        .map(() => ({ created: resolved.config.created, created_by: "", empty_layer: false })),
      ...declared,
    ];
    let layer = 0;
    const rows = entries.map((entry) => {
      const size = entry.empty_layer ? 0 : (layers[layer++]?.size ?? 0);
      return {
        Id: "<missing>",
        Created: seconds(entry.created),
        CreatedBy: entry.created_by ?? "",
        Tags: null as string[] | null,
        Size: size,
        Comment: entry.comment ?? "",
      };
    });
    rows.reverse();
    const top = rows[0];
    if (top) {
      top.Id = image.id;
      top.Tags = summary?.repoTags ?? [familiarName(image.ref)];
    }
    // As dockerd's for a classic build: the row of each step's image (a parent, and its parents) has
    // its id and tags, found by how many history entries that image has.
    for (let ancestor = parent; ancestor; ancestor = parentOf(ancestor, all)) {
      const { ref } = await images.resolve(ancestor.id, { signal: exchange.signal });
      const own = await images.service.resolve(ref, { signal: exchange.signal });
      const row =
        rows[
          rows.length - (Math.max(0, unaccounted) + (own.config.history ?? []).filter(isHistoryEntry).length)
        ];
      if (row?.Id !== "<missing>") break;
      row.Id = ancestor.id;
      row.Tags = ancestor.repoTags.length > 0 ? ancestor.repoTags : null;
    }
    exchange.send(200, rows);
  });

  router.add("POST", "/images/{name*}/tag", async (exchange) => {
    const name = exchange.params.name ?? "";
    const repo = exchange.query.get("repo") ?? "";
    const tag = exchange.query.get("tag") || "latest";
    if (repo === "") throw badRequest("repository name must have at least one component");
    const opts = { signal: exchange.signal };
    const target = `${repo}:${tag}`;
    // The image resolved and tagged with the names to ourselves: an rmi of its last name meanwhile
    // would have left the new name on an image whose content containerd's GC may take.
    const image = await images.service.namesLocked(async () => {
      const image = await images.resolve(name, opts).catch(notFoundAs(`No such image: ${name}`));
      await images.service.tag(image.ref, target, opts).catch((err: unknown) => {
        if (isErrorCode(err, "invalid_argument")) throw badRequest((err as Error).message);
        throw err;
      });
      return image;
    }, opts);
    events.publish("image", "tag", image.id, { name: familiarName(target) });
    exchange.send(201, null);
  });

  router.add("DELETE", "/images/{name*}", async (exchange) => {
    const name = exchange.params.name ?? "";
    const force = queryBool(exchange.query, "force");
    // With the names to ourselves: whether this removes the image's last name (its answer `Deleted`)
    // holds until it is removed, a tag of it meanwhile waits.
    const prune = !queryBool(exchange.query, "noprune");
    const answer = await images.service.namesLocked(() => removeImage(name, force, prune, exchange.signal), {
      signal: exchange.signal,
    });
    exchange.send(200, answer);
  });

  /**
   * docker rmi of one name or id: its names removed, the image with the last (dockerd's ImageDelete),
   * and with `prune` the untagged parents only it kept.
   */
  const removeImage = async (
    name: string,
    force: boolean,
    prune: boolean,
    signal: AbortSignal,
  ): Promise<Record<string, string>[]> => {
    const { id, records } = await images
      .records(name, { signal })
      .catch(notFoundAs(`No such image: ${name}`));
    const byId = /^(sha256:)?[a-f0-9]{12,64}$/.test(name);
    const users = store.all().filter((record) => record.Image === id);
    const removes = byId
      ? records
      : records
          .filter((record) => familiarName(record.name) === familiarName(name) || record.name === name)
          .slice(0, 1);
    const removesLast = removes.length === records.length;
    const parentDigest = records.map((record) => record.labels[LABEL_BUILD_PARENT]).find(Boolean) ?? "";
    if (byId && records.length > 1 && !force)
      throw conflict(
        `conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`,
      );
    // As dockerd's (a hard conflict): an image others were built on stays; its last name only goes.
    const all = await images.list({ signal });
    const summary = all.find((image) => image.id === id);
    const hasDependents = summary !== undefined && hasChildren(summary, all);
    if (byId && hasDependents)
      throw conflict(
        `conflict: unable to delete ${id.slice(7, 19)} (cannot be forced) - image has dependent child images`,
      );
    if (removesLast && users.length > 0 && !force) {
      const user = users[0]?.Id.slice(0, 12) ?? "";
      throw conflict(
        byId
          ? `conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is being used by stopped container ${user}`
          : `conflict: unable to remove repository reference "${name}" (must force) - container ${user} is using its referenced image ${id.slice(7, 19)}`,
      );
    }
    const answer: Record<string, string>[] = [];
    const untagOnly = removesLast && hasDependents;
    const first = removes[0];
    if (untagOnly && first) await images.service.keepDangling(first.name, { signal });
    for (const record of removes) {
      await images.service.remove(record.name, { signal });
      if (isDangling(record.name)) continue;
      answer.push({ Untagged: familiarName(record.name) });
      events.publish("image", "untag", id, { name: familiarName(record.name) });
    }
    if (removesLast && !untagOnly) {
      answer.push({ Deleted: id });
      events.publish("image", "delete", id, { name: familiarName(name) });
      // As dockerd's (unless noprune): the untagged parents the image alone kept, a build's steps.
      if (prune) answer.push(...(await removeParents(images, store, events, parentDigest, signal)));
    }
    return answer;
  };

  // dockerd's ImagesPrune: dangling images by default (commits and imports without a name), with
  // dangling=false (`docker image prune -a`) every image no container uses; of either, those no other
  // image was built on (the heads), each with the untagged parents it alone kept. With -a, again
  // while a pass removed some: a tagged image whose children went is a head now.
  router.add("POST", "/images/prune", async (exchange) => {
    const { filters, matches } = pruneFilter(exchange.query, ["dangling"]);
    const danglingOnly = !(filters.get("dangling") ?? []).some((value) => value === "false" || value === "0");
    const deleted: Record<string, string>[] = [];
    let reclaimed = 0;
    const used = new Set(store.all().map((record) => record.Image));
    const opts = { signal: exchange.signal };
    const seen = new Set<string>();
    for (let again = true; again; ) {
      again = false;
      const all = await images.list(opts);
      const candidates = all.filter(
        (image) => !seen.has(image.id) && (!danglingOnly || isUntagged(image)) && !hasChildren(image, all),
      );
      for (const image of candidates) {
        seen.add(image.id);
        if (used.has(image.id)) continue;
        if (!matches(image.labels, image.created * 1000)) continue;
        const size = await pruneImage(image);
        if (size === undefined) continue;
        reclaimed += size;
        again = !danglingOnly;
      }
    }
    events.publish("image", "prune", "", { reclaimed: String(reclaimed) });
    exchange.send(200, { ImagesDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: reclaimed });

    /** Removes an image's every name, then its untagged parents: the size reclaimed (none: not removed). */
    async function pruneImage(image: ImageSummary): Promise<number | undefined> {
      // Its names now, removed before another is given to it: one removed meanwhile (an rmi) is gone,
      // a dangling one tagged meanwhile is dangling no more.
      return images.service.namesLocked(async () => {
        const found = await images.records(image.id, opts).catch((err: unknown) => {
          if (isErrorCode(err, "not_found")) return undefined;
          throw err;
        });
        if (!found || (danglingOnly && found.records.some((record) => !isDangling(record.name))))
          return undefined;
        // One a build running now needs (or just made on one), decided with the names to ourselves.
        if (images.buildHolds.keeps(image)) return undefined;
        for (const record of found.records) {
          await images.service.remove(record.name, opts);
          if (isDangling(record.name)) continue;
          deleted.push({ Untagged: familiarName(record.name) });
          events.publish("image", "untag", image.id, { name: familiarName(record.name) });
        }
        deleted.push({ Deleted: image.id });
        events.publish("image", "delete", image.id, { name: image.id });
        deleted.push(...(await removeParents(images, store, events, image.parent ?? "", exchange.signal)));
        return image.size;
      }, opts);
    }
  });

  // docker login: the credentials are tried on the registry (its /v2/, with Basic or a token for them);
  // the CLI keeps them and sends them with each pull and push (X-Registry-Auth).
  router.add("POST", "/auth", async (exchange) => {
    const body = await exchange.json();
    const text = (name: string): string =>
      isObject(body) && typeof body[name] === "string" ? (body[name] as string) : "";
    const username = text("username");
    const password = text("password");
    if (username === "" || password === "") throw badRequest("a username and a password are required");
    const host = loginHost(text("serveraddress"));
    // Loaded here: the registry client is not on the path of a serve that never logs in.
    const { RegistryClient } = await import("../images/registry/client.js");
    const client = new RegistryClient(parseReference(`${host}/library/login`), {
      credentials: { username, password },
    });
    try {
      const res = await client.send(new URL("/v2/", client.baseUrl), {
        what: `log in to ${host}`,
        signal: exchange.signal,
      });
      res.resume();
      if (res.statusCode !== 200)
        throw new EngineError(
          res.statusCode === 401 ? 401 : 502,
          `log in to ${host}: ${host} answered ${res.statusCode}`,
        );
    } finally {
      client.close();
    }
    exchange.send(200, { Status: "Login Succeeded", IdentityToken: "" });
  });

  router.add("POST", "/images/{name*}/push", (exchange) => push(exchange, images, events));
  router.add("POST", "/images/load", (exchange) => load(exchange, images, events));
  router.add("GET", "/images/get", (exchange) => save(exchange, images, exchange.query.getAll("names")));
  router.add("GET", "/images/{name*}/get", (exchange) =>
    save(exchange, images, [exchange.params.name ?? ""]),
  );
  router.add("GET", "/images/search", () => {
    throw new EngineError(
      501,
      "image search is not supported by this engine: it has no registry index to ask",
    );
  });
}

const isUntagged = (image: ImageSummary): boolean =>
  image.repoTags.length === 0 && image.repoDigests.length === 0;

/** The image a build step made `image` on (its parent label names one of that image's targets). */
function parentOf(image: ImageSummary, all: readonly ImageSummary[]): ImageSummary | undefined {
  const parent = image.parent;
  return parent ? all.find((other) => other.targets?.includes(parent)) : undefined;
}

/** Whether a build step made an image on `image`. */
function hasChildren(image: ImageSummary, all: readonly ImageSummary[]): boolean {
  return all.some((other) => other.parent !== undefined && (image.targets ?? []).includes(other.parent));
}

/**
 * dockerd's prune of a removed image's parents (imageDeleteHelper with prune): from the parent up,
 * each untagged image that no container uses and no other image was built on is removed, quietly
 * stopping at the first that is kept. The `Deleted` entries of those removed.
 */
async function removeParents(
  images: ContainerdImages,
  store: ContainerStore,
  events: EventBus,
  firstParent: string,
  signal: AbortSignal,
): Promise<Record<string, string>[]> {
  const deleted: Record<string, string>[] = [];
  for (let parent = firstParent; parent !== ""; ) {
    const all = await images.list({ signal });
    const image = all.find((other) => other.targets?.includes(parent));
    if (!image || !isUntagged(image) || hasChildren(image, all) || images.buildHolds.keeps(image)) break;
    if (store.all().some((record) => record.Image === image.id)) break;
    const { records } = await images.records(image.id, { signal });
    for (const record of records) await images.service.remove(record.name, { signal });
    deleted.push({ Deleted: image.id });
    events.publish("image", "delete", image.id, { name: image.id });
    parent = image.parent ?? "";
  }
  return deleted;
}

function isHistoryEntry(value: unknown): value is HistoryEntry {
  return typeof value === "object" && value !== null;
}

/** The registry a login's serveraddress names: `host:port`, a URL, or Docker Hub's index URL (or nothing). */
export function loginHost(serverAddress: string): string {
  const host = serverAddress.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  return host === "" || host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
}

function notFoundAs(message: string): (err: unknown) => never {
  return (err) => {
    if (isErrorCode(err, "not_found") || isErrorCode(err, "invalid_argument")) throw notFound(message);
    throw err;
  };
}

/** POST /images/create?fromImage=…&tag=…: a pull, reported as Docker's JSON progress messages. */
async function pull(exchange: Exchange, images: ContainerdImages, events: EventBus): Promise<void> {
  const fromImage = exchange.query.get("fromImage") ?? "";
  if (exchange.query.get("fromSrc")) return importImage(exchange, images, events);
  if (fromImage === "") throw badRequest("fromImage is required");
  const ref = pullReference(fromImage, exchange.query.get("tag") ?? "");
  const credentials = registryAuth(exchange.headers["x-registry-auth"]);
  const platform = exchange.query.get("platform") || undefined;
  let out: Writable | undefined;
  const write = (message: Record<string, unknown>): void => {
    out ??= exchange.stream("application/json");
    if (!out.writableEnded) out.write(`${JSON.stringify(message)}\n`);
  };
  let downloaded = false;
  let announced = false;
  const tagText = ref.includes("@")
    ? ref.slice(ref.indexOf("@") + 1)
    : (ref.match(/:([^:/]+)$/)?.[1] ?? "latest");
  const onProgress = (event: PullProgress): void => {
    if (!announced) {
      announced = true;
      write({ status: `Pulling from ${familiarName(ref).replace(/[:@][^:/]+$/, "")}`, id: tagText });
    }
    if (event.kind !== "layer") return;
    const status = LAYER_STATUS[event.state];
    if (!status) return;
    if (event.state === "downloading" || event.state === "downloaded") downloaded = true;
    const id = event.digest.replace(/^sha256:/, "").slice(0, 12);
    const detail =
      event.state === "downloading" || event.state === "extracting"
        ? { current: event.current, total: event.total }
        : {};
    write({
      status,
      progressDetail: detail,
      ...(event.state === "downloading" || event.state === "extracting"
        ? { progress: progressBar(event.current, event.total) }
        : {}),
      id,
    });
  };
  try {
    const record = await images.service.pull(ref, {
      signal: exchange.signal,
      onProgress,
      ...(credentials ? { credentials } : {}),
      ...(platform ? { platform } : {}),
    });
    write({ status: `Digest: ${record.target.digest}` });
    write({
      status: `Status: ${downloaded ? "Downloaded newer image" : "Image is up to date"} for ${familiarName(record.name)}`,
    });
    events.publish("image", "pull", familiarName(record.name), { name: familiarName(record.name) });
    out?.end();
  } catch (err) {
    const { status, message } = toHttpError(err);
    if (!out) {
      if (isErrorCode(err, "not_found"))
        throw notFound(
          `pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': ${message}`,
        );
      throw new EngineError(status, message, { cause: err });
    }
    write({ errorDetail: { message }, error: message });
    out.end();
  }
}

/** POST /images/{name}/push?tag=…: blobs first, reported as Docker's push progress messages. */
async function push(exchange: Exchange, images: ContainerdImages, events: EventBus): Promise<void> {
  const name = exchange.params.name ?? "";
  const tag = exchange.query.get("tag") ?? "";
  const ref = pullReference(name, tag);
  const record = await images.service
    .get(ref, { signal: exchange.signal })
    .catch(notFoundAs(`An image does not exist locally with the tag: ${name}`));
  const credentials = registryAuth(exchange.headers["x-registry-auth"]);
  const out = exchange.stream("application/json");
  const write = (message: Record<string, unknown>): void => {
    if (!out.writableEnded) out.write(`${JSON.stringify(message)}\n`);
  };
  write({ status: `The push refers to repository [${familiarName(ref).replace(/[:@][^:/]+$/, "")}]` });
  // As dockerd's push: a line a layer (not the config or the manifests), mounts naming their source.
  const onProgress = (event: PushProgress): void => {
    if (event.kind !== "layer") return;
    const status =
      event.state === "exists"
        ? "Layer already exists"
        : event.state === "mounted"
          ? `Mounted from ${event.mountedFrom ?? "elsewhere"}`
          : "Pushed";
    write({ status, progressDetail: {}, id: event.digest.replace(/^sha256:/, "").slice(0, 12) });
  };
  try {
    await images.service.push(record.name, {
      signal: exchange.signal,
      onProgress,
      ...(credentials ? { credentials } : {}),
    });
    const shownTag = tag || (record.name.match(/:([^:/]+)$/)?.[1] ?? "latest");
    write({ status: `${shownTag}: digest: ${record.target.digest} size: ${record.target.size}` });
    write({
      progressDetail: {},
      aux: { Tag: shownTag, Digest: record.target.digest, Size: record.target.size },
    });
    events.publish("image", "push", familiarName(record.name), { name: familiarName(record.name) });
  } catch (err) {
    const { message } = toHttpError(err);
    write({ errorDetail: { message }, error: message });
  }
  out.end();
}

/** POST /images/load: a `docker save` (or OCI layout) tar in the body; `Loaded image: …` a line. */
async function load(exchange: Exchange, images: ContainerdImages, events: EventBus): Promise<void> {
  const loaded = await images.service
    .import(exchange.body(), { signal: exchange.signal })
    .catch((err: unknown) => {
      if (isErrorCode(err, "invalid_argument")) throw badRequest((err as Error).message);
      throw err;
    });
  const out = exchange.stream("application/json");
  for (const record of loaded) {
    events.publish("image", "load", familiarName(record.name), { name: familiarName(record.name) });
    // `quiet` only silences progress (which an import has none of); dockerd always names what it loaded.
    out.write(`${JSON.stringify({ stream: `Loaded image: ${familiarName(record.name)}\n` })}\n`);
  }
  out.end();
}

/** GET /images/get?names=…: the images as one tar that `docker load` (and this engine) reads back. */
async function save(exchange: Exchange, images: ContainerdImages, names: string[]): Promise<void> {
  if (names.length === 0 || names.some((name) => name === "")) throw badRequest("no image names given");
  const refs: string[] = [];
  for (const name of names) {
    const { records, named } = await images
      .records(name, { signal: exchange.signal })
      .catch(notFoundAs(`No such image: ${name}`));
    // A name saves that name, as dockerd's `docker save` does; an id saves every name of the image.
    for (const record of named ? [named] : records) if (!refs.includes(record.name)) refs.push(record.name);
  }
  const out = exchange.stream("application/x-tar");
  try {
    await images.service.save(refs, out, { signal: exchange.signal });
  } finally {
    out.end();
  }
}

/** The filters GET /images/json takes (daemon/images/images.go acceptedImageFilterTags). */
const IMAGE_FILTERS = new Set(["dangling", "label", "before", "since", "reference"]);

/** Go's path.Match, which reference.FamiliarMatch uses: `*` and `?` stop at `/`, `[…]` is a class. */
function pathMatch(pattern: string, name: string): boolean {
  let source = "";
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] ?? "";
    if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else if (char === "[") {
      const end = pattern.indexOf("]", index + 2);
      if (end < 0) throw badRequest(`invalid reference filter: ${pattern}`);
      const body = pattern.slice(index + 1, end).replace(/^\^/, "!");
      source += `[${body.startsWith("!") ? `^/${body.slice(1)}` : body}]`.replace(/\\/g, "\\\\");
      index = end;
    } else if (char === "\\") {
      source += (pattern[index + 1] ?? "").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      index++;
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  let regexp: RegExp;
  try {
    regexp = new RegExp(`^${source}$`);
  } catch {
    throw badRequest(`invalid reference filter: ${pattern}`);
  }
  return regexp.test(name);
}

/** `busybox:latest` matches `busybox`, `busybox:*`, `busy*` (reference.FamiliarMatch: the string, then the name alone). */
function referenceMatches(pattern: string, familiar: string): boolean {
  const name = familiar.replace(/@.*$/, "").replace(/:[^:/]+$/, "");
  return pathMatch(pattern, familiar) || pathMatch(pattern, name);
}

/** GET /images/json's filters, as dockerd applies them: a reference filter also narrows the names shown. */
function filterImages(list: ImageSummary[], filters: Map<string, string[]>): ImageSummary[] {
  for (const name of filters.keys())
    if (!IMAGE_FILTERS.has(name)) throw badRequest(`invalid filter '${name}'`);
  const dangling = filters.get("dangling") ?? [];
  for (const value of dangling)
    if (!["true", "false", "1", "0"].includes(value)) throw badRequest(`invalid filter 'dangling=${value}'`);
  const createdOf = (name: string): number | undefined => {
    const ref = (filters.get(name) ?? [])[0];
    if (ref === undefined) return undefined;
    const image = list.find(
      (entry) =>
        entry.id === ref ||
        entry.id.startsWith(`sha256:${ref}`) ||
        entry.repoTags.some((tag) => tag === ref || tag === `${ref}:latest`),
    );
    if (!image) throw notFound(`No such image: ${ref}`);
    return image.created;
  };
  const before = createdOf("before");
  const since = createdOf("since");
  const patterns = filters.get("reference") ?? [];
  const out: ImageSummary[] = [];
  for (const image of list) {
    // A dangling image has no tag (a commit or an import without a name).
    const isDangling = image.repoTags.length === 0 && image.repoDigests.length === 0;
    if (dangling.some((value) => value === "true" || value === "1") && !isDangling) continue;
    if (dangling.some((value) => value === "false" || value === "0") && isDangling) continue;
    if (before !== undefined && image.created >= before) continue;
    if (since !== undefined && image.created <= since) continue;
    if (!labelsMatch(image.labels, filters.get("label") ?? [])) continue;
    if (patterns.length === 0) {
      out.push(image);
      continue;
    }
    const matches = (familiar: string): boolean =>
      patterns.some((pattern) => referenceMatches(pattern, familiar));
    const repoTags = image.repoTags.filter(matches);
    const repoDigests = image.repoDigests.filter(matches);
    if (repoTags.length > 0 || repoDigests.length > 0) out.push({ ...image, repoTags, repoDigests });
  }
  return out;
}
