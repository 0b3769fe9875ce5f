import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import type { Readable, Writable } from "node:stream";
import { Transform } from "node:stream";
import { applyConfigChanges } from "../images/config-changes.js";
import type { ImageRunConfig } from "../images/media-types.js";
import { formatReference, parseReference } from "../images/reference.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { type ContainerdImages, familiarName } from "./containerd-images.js";
import { type ContainerConfig, isObject, parseConfig } from "./containers/config.js";
import type { ContainerManager } from "./containers/manager.js";
import type { ContainerRecord, ContainerStore } from "./containers/store.js";
import { badRequest, conflict, EngineError, notFound, toHttpError } from "./errors.js";
import type { EventBus } from "./events.js";
import { type Exchange, queryBool } from "./http.js";
import type { Router } from "./router.js";

/**
 * `repo` and `tag` as dockerd's httputils.RepoTagReference reads them: no repo is no name (the image
 * is dangling), a repo without a tag gets `latest`, a digest is refused. The full normalised name.
 */
export function repoTagReference(repo: string, tag: string, what: "commit" | "import"): string | undefined {
  if (repo === "") return undefined;
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(repo);
  } catch {
    throw badRequest(
      /[A-Z]/.test(repo)
        ? "invalid reference format: repository name must be lowercase"
        : "invalid reference format",
    );
  }
  if (ref.digest !== undefined)
    throw badRequest(
      what === "commit"
        ? "refusing to create a tag with a digest reference"
        : "cannot import digest reference",
    );
  if (tag === "") return formatReference(ref);
  if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw badRequest("invalid tag format");
  return formatReference({ domain: ref.domain, path: ref.path, tag });
}

/** An image config's runtime part from a container's config (containerConfigToDockerOCIImageConfig). */
function runtimeConfigOf(config: ContainerConfig): ImageRunConfig {
  const out: ImageRunConfig = {};
  if (config.User) out.User = config.User;
  if (config.ExposedPorts && Object.keys(config.ExposedPorts).length > 0)
    out.ExposedPorts = config.ExposedPorts;
  if (config.Env) out.Env = config.Env;
  if (config.Entrypoint) out.Entrypoint = config.Entrypoint;
  if (config.Cmd) out.Cmd = config.Cmd;
  if (config.Volumes && Object.keys(config.Volumes).length > 0) out.Volumes = config.Volumes;
  if (config.WorkingDir) out.WorkingDir = config.WorkingDir;
  if (Object.keys(config.Labels).length > 0) out.Labels = config.Labels;
  if (config.StopSignal) out.StopSignal = config.StopSignal;
  if (config.Healthcheck) out.Healthcheck = config.Healthcheck;
  return out;
}

/**
 * moby's daemon/commit.go merge: what the commit's config leaves unset comes from the container's
 * (Env and ExposedPorts and Labels are merged key by key).
 */
function mergeCommitConfig(user: ImageRunConfig, container: ImageRunConfig): ImageRunConfig {
  const merged: ImageRunConfig = { ...user };
  if (!merged.User && container.User) merged.User = container.User;
  if (container.ExposedPorts) merged.ExposedPorts = { ...container.ExposedPorts, ...merged.ExposedPorts };
  if (!merged.Env || merged.Env.length === 0) {
    if (container.Env) merged.Env = container.Env;
  } else {
    const keys = new Set(merged.Env.map((entry) => entry.split("=", 1)[0]));
    merged.Env = [
      ...merged.Env,
      ...(container.Env ?? []).filter((entry) => !keys.has(entry.split("=", 1)[0])),
    ];
  }
  if (container.Labels || merged.Labels) merged.Labels = { ...container.Labels, ...merged.Labels };
  if (!merged.Entrypoint || merged.Entrypoint.length === 0) {
    if (!merged.Cmd || merged.Cmd.length === 0) {
      if (container.Cmd) merged.Cmd = container.Cmd;
    }
    if (merged.Entrypoint === undefined && container.Entrypoint) merged.Entrypoint = container.Entrypoint;
  }
  if (!merged.Healthcheck && container.Healthcheck) merged.Healthcheck = container.Healthcheck;
  if (!merged.WorkingDir && container.WorkingDir) merged.WorkingDir = container.WorkingDir;
  if (container.Volumes) merged.Volumes = { ...merged.Volumes, ...container.Volumes };
  if (!merged.StopSignal && container.StopSignal) merged.StopSignal = container.StopSignal;
  return merged;
}

/** A 400 for a change dockerd refuses (its BuildFromConfig's errors are InvalidParameter). */
function withChanges(config: ImageRunConfig, changes: readonly string[]): ImageRunConfig {
  try {
    return applyConfigChanges(config, changes);
  } catch (err) {
    if (isErrorCode(err, "invalid_argument")) throw badRequest((err as Error).message);
    throw err;
  }
}

/**
 * Commits of one running container share one pause: the first pauses it, the last unpauses it. Each
 * pausing on its own, a commit that came while another's pause was under way failed ("cannot pause a
 * paused container", a 409), and one that found the container paused did not pause it and had it
 * unpaused by the other's end while its own diff was still being read.
 */
class SharedPauses {
  private readonly held = new Map<
    string,
    { holders: number; paused: Promise<void>; releasing?: Promise<void> }
  >();

  constructor(private readonly manager: ContainerManager) {}

  /** Holds `record` paused if it is running (or held already); the release unpauses it after the last. */
  async hold(record: ContainerRecord): Promise<() => Promise<void>> {
    let entry = this.held.get(record.Id);
    // Being unpaused by the last holder: a new hold starts after that (and pauses again).
    if (entry?.releasing) {
      await entry.releasing;
      return this.hold(record);
    }
    if (!entry) {
      if (record.State.Status !== "running") return async () => {};
      // Not a request's signal: the pause is shared, and one client going must not undo the others'.
      entry = { holders: 0, paused: this.manager.pause(record) };
      this.held.set(record.Id, entry);
    }
    const held = entry;
    held.holders++;
    const release = async (): Promise<void> => {
      held.holders--;
      if (held.holders > 0) return;
      held.releasing = (async () => {
        const paused = await held.paused.then(
          () => true,
          () => false,
        );
        if (paused) await this.manager.unpause(record).catch(() => {});
        if (this.held.get(record.Id) === held) this.held.delete(record.Id);
      })();
      await held.releasing;
    };
    try {
      await held.paused;
    } catch (err) {
      await release();
      throw err;
    }
    return release;
  }
}

export interface CommitRoutesDeps {
  images: ContainerdImages;
  store: ContainerStore;
  manager: ContainerManager;
}

/**
 * POST /commit (docker commit): a container's filesystem changes as a new image on its image,
 * with its config (or the body's) changed by `changes`, as dockerd's CreateImageFromContainer. A
 * running container is paused meanwhile unless pause=0, and unpaused after whatever happened.
 */
export function commitRoutes(router: Router, deps: CommitRoutesDeps): void {
  const { images, store, manager } = deps;
  const pauses = new SharedPauses(manager);
  router.add("POST", "/commit", async (exchange) => {
    const query = exchange.query;
    const record = store.get(query.get("container") ?? "");
    if (record.State.Status === "dead")
      throw conflict(`You cannot commit container ${record.Id} which is Dead`);
    if (record.State.Status === "removing")
      throw conflict(`You cannot commit container ${record.Id} which is being removed`);
    const name = repoTagReference(query.get("repo") ?? "", query.get("tag") ?? "", "commit");
    const body = await exchange.json();
    const given = isObject(body) && Object.keys(body).length > 0;
    const containerConfig = runtimeConfigOf(record.Config);
    const userConfig = given
      ? runtimeConfigOf(parseConfig({ ...body, Image: record.Config.Image }))
      : containerConfig;
    const config = mergeCommitConfig(withChanges(userConfig, query.getAll("changes")), containerConfig);
    const { records, named } = await images
      .records(record.Image, { signal: exchange.signal })
      .catch((err: unknown) => {
        if (isErrorCode(err, "not_found"))
          throw conflict(
            `the image of container ${record.Id} (${record.Image}) is gone: nothing to commit onto`,
          );
        throw err;
      });
    const base = named ?? records[0];
    if (!base) throw notFound(`No such image: ${record.Image}`);
    const pause = query.get("pause") === null ? true : queryBool(query, "pause");
    const release = pause ? await pauses.hold(record) : async () => {};
    let made: Awaited<ReturnType<ContainerdImages["service"]["commit"]>>;
    try {
      const comment = query.get("comment") ?? "";
      const author = query.get("author") ?? "";
      made = await images.service.commit(base.name, {
        signal: exchange.signal,
        snapshotKey: record.Id,
        config,
        createdBy: (record.Config.Cmd ?? []).join(" "),
        ...(author ? { author } : {}),
        ...(comment ? { comment } : {}),
        ...(name ? { name } : {}),
      });
    } finally {
      // Whatever happened (a client gone too): the container is not left paused.
      await release();
    }
    manager.emit(record, "commit", {
      comment: query.get("comment") ?? "",
      imageID: made.id,
      imageRef: name ? familiarName(name) : "",
    });
    exchange.send(201, { Id: made.id });
  });
}

/** How much of an error answer's body goes into the message: the start says why, the rest is not read. */
const ERROR_BODY_PREFIX = 1024;

/**
 * How long an error answer's body may take to end before what came of it is used: a server may send an
 * error and never end its body (moby's io.ReadAll waits for it for good).
 */
const ERROR_BODY_WAIT_MS = 2_000;

/**
 * A GET of an import's URL (http or https only, redirects followed as Go's http.Get does), answered 2xx;
 * otherwise moby's GetWithStatusError, its status and the start of its body (bounded: at most
 * ERROR_BODY_PREFIX, what came within ERROR_BODY_WAIT_MS). A response not used is destroyed: its
 * connection goes, whatever its server does.
 */
async function download(start: URL, signal: AbortSignal): Promise<IncomingMessage> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw badRequest(`Get "${url.href}": unsupported protocol scheme "${url.protocol.replace(/:$/, "")}"`);
    const res = await getOnce(url, signal);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location && redirects < 10) {
      res.destroy();
      url = new URL(location, url);
      continue;
    }
    if (status >= 200 && status < 300) return res;
    const text = await bodyPrefix(res, signal);
    // moby's errdefs kinds for the statuses it names; any other is Unknown (500).
    const kind = [400, 401, 403, 404].includes(status) ? status : 500;
    throw new EngineError(
      kind,
      `failed to GET ${url.href} with status ${status} ${res.statusMessage ?? ""}: ${text.trim()}`,
    );
  }
}

/** The start of a body: until it ends, ERROR_BODY_PREFIX characters came, ERROR_BODY_WAIT_MS passed or the client went. */
function bodyPrefix(res: IncomingMessage, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const finish = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      res.removeListener("data", onData);
      res.destroy();
      resolve(text.slice(0, ERROR_BODY_PREFIX));
    };
    const onData = (chunk: string): void => {
      text += chunk;
      if (text.length >= ERROR_BODY_PREFIX) finish();
    };
    const timer = setTimeout(finish, ERROR_BODY_WAIT_MS);
    signal.addEventListener("abort", finish, { once: true });
    res.setEncoding("utf8").on("data", onData);
    res.once("end", finish).once("error", finish).once("close", finish);
  });
}

function getOnce(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
  const get = url.protocol === "https:" ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, { signal }, resolve);
    req.on("error", (err) =>
      reject(new EngineError(500, `Get "${url.href}": ${err.message}`, { cause: err })),
    );
  });
}

/** Counts what passes, for the `Importing` progress messages (about one a 512 KiB, and the last). */
function importProgress(total: number, report: (current: number) => void): Transform {
  let current = 0;
  let reported = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      current += chunk.length;
      if (current - reported >= 512 * 1024 || current === total) {
        reported = current;
        report(current);
      }
      done(null, chunk);
    },
  });
}

/**
 * POST /images/create?fromSrc=… (docker import): the body (`-`) or the tarball at a URL made into a
 * one-layer image, named by repo and tag (or dangling), its config from `changes`; Docker's JSON
 * messages, the last the image id.
 */
export async function importImage(
  exchange: Exchange,
  images: ContainerdImages,
  events: EventBus,
): Promise<void> {
  const query = exchange.query;
  const source = query.get("fromSrc") ?? "";
  const name = repoTagReference(query.get("repo") ?? "", query.get("tag") ?? "", "import");
  const config = withChanges({}, query.getAll("changes"));
  const platform = query.get("platform") || undefined;
  const comment = query.get("message") || `Imported from ${source}`;
  let out: Writable | undefined;
  const write = (message: Record<string, unknown>): void => {
    out ??= exchange.stream("application/json");
    if (!out.writableEnded) out.write(`${JSON.stringify(message)}\n`);
  };
  let downloaded: IncomingMessage | undefined;
  try {
    let input: Readable;
    if (source === "-") input = exchange.body();
    else {
      let url: URL;
      try {
        url = new URL(source.includes("://") ? source : `http://${source}`);
      } catch {
        throw badRequest(`invalid import source URL: ${source}`);
      }
      const res = await download(url, exchange.signal);
      downloaded = res;
      write({ status: `Downloading from ${url.href}` });
      const total = Number(res.headers["content-length"] ?? -1);
      input = res.pipe(
        importProgress(total, (current) =>
          write({
            status: "Importing",
            progressDetail: { current, ...(total > 0 ? { total } : {}) },
            id: "",
          }),
        ),
      );
      res.on("error", (err) => input.destroy(err));
    }
    const made = await images.service.importRootfs(input, {
      signal: exchange.signal,
      config,
      comment,
      ...(name ? { name } : {}),
      ...(platform ? { platform } : {}),
    });
    events.publish("image", "import", made.id, { name: made.id });
    write({ status: made.id });
    out?.end();
  } catch (err) {
    if (!out) throw err;
    const { message } = toHttpError(err);
    write({ errorDetail: { message }, error: message });
    out.end();
  } finally {
    // An import that failed (a tarball it cannot read, the client gone) reads no more of the URL.
    downloaded?.destroy();
  }
}
