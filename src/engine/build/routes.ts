import type { Writable } from "node:stream";
import { normalizeReference } from "../../images/reference.js";
import { badRequest, EngineError, toHttpError } from "../errors.js";
import { type Exchange, queryBool } from "../http.js";
import type { Router } from "../router.js";
import { Build, type BuildDeps, RunFailedError } from "./builder.js";
import { unpackContext } from "./context.js";

/** A JSON object of strings in a query parameter (buildargs, labels); null values kept as undefined. */
function queryMap(exchange: Exchange, name: string): Map<string, string | undefined> {
  const text = exchange.query.get(name);
  const map = new Map<string, string | undefined>();
  if (!text) return map;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest(`invalid ${name}: want a JSON object of strings`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw badRequest(`invalid ${name}: want a JSON object of strings`);
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== null && typeof value !== "string")
      throw badRequest(`invalid ${name}: ${key} is not a string`);
    map.set(key, value ?? undefined);
  }
  return map;
}

/**
 * POST /build (docker build with the classic builder, DOCKER_BUILDKIT=0): the body a tar of the build
 * context, the result Docker's JSON stream (`stream` lines, `aux` with the image id, `error` at the end
 * of a failed build), as moby's api/server/router/build. A failure before anything was written is the
 * HTTP answer's status, as dockerd's.
 */
export function buildRoutes(router: Router, deps: BuildDeps): void {
  router.add("POST", "/build", async (exchange) => {
    const query = exchange.query;
    if (query.get("remote"))
      throw new EngineError(501, "a remote build context (remote=…) is not supported by this engine");
    const version = query.get("version");
    if (version === "2")
      throw new EngineError(
        501,
        "BuildKit (version=2) is not supported by this engine: use the classic builder (DOCKER_BUILDKIT=0)",
      );
    const tags = query.getAll("t").filter((tag) => tag !== "");
    for (const tag of tags) {
      try {
        normalizeReference(tag);
      } catch {
        throw badRequest(`invalid reference format: ${tag}`);
      }
    }
    const labels: Record<string, string> = {};
    for (const [key, value] of queryMap(exchange, "labels")) labels[key] = value ?? "";
    const signal = exchange.signal;
    const context = await unpackContext(exchange.body(), query.get("dockerfile") || "Dockerfile", signal);
    let out: Writable | undefined;
    const write = (message: Record<string, unknown>): void => {
      out ??= exchange.stream("application/json");
      if (!out.writableEnded) out.write(`${JSON.stringify(message)}\n`);
    };
    try {
      const build = new Build(deps, context, {
        tags,
        buildArgs: queryMap(exchange, "buildargs"),
        labels,
        quiet: queryBool(query, "q"),
        pull: queryBool(query, "pull"),
        noCache: queryBool(query, "nocache"),
        target: query.get("target") ?? "",
        networkMode: query.get("networkmode") || "default",
        signal,
        write,
      });
      await build.run();
    } catch (err) {
      if (!out) throw err;
      const { message } = toHttpError(err);
      const code = err instanceof RunFailedError ? { code: err.exitCode } : {};
      write({ errorDetail: { ...code, message }, error: message });
    } finally {
      await context.close();
    }
    out?.end();
  });
}
