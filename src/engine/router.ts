import { badRequest, EngineError } from "./errors.js";
import type { Exchange } from "./http.js";

export type Handler = (exchange: Exchange) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

/** The API version this engine speaks, and the oldest it still accepts (dockerd 20.10's range). */
export const API_VERSION = "1.41";
export const MIN_API_VERSION = "1.12";

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split(".").map(Number);
  const [bMajor = 0, bMinor = 0] = b.split(".").map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

export function versionAtLeast(version: string, minimum: string): boolean {
  return compareVersions(version, minimum) >= 0;
}

/** Splits `/v1.41/containers/json` into the version and the path, refusing versions out of range. */
export function splitVersion(path: string): { apiVersion: string; path: string } {
  const match = /^\/v(\d+\.\d+)(\/.*)?$/.exec(path);
  if (!match) return { apiVersion: API_VERSION, path };
  const apiVersion = match[1] ?? API_VERSION;
  // Messages as dockerd's version middleware words them.
  if (compareVersions(apiVersion, API_VERSION) > 0)
    throw badRequest(
      `client version ${apiVersion} is too new. Maximum supported API version is ${API_VERSION}`,
    );
  if (compareVersions(apiVersion, MIN_API_VERSION) < 0)
    throw badRequest(
      `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  return { apiVersion, path: match[2] ?? "/" };
}

/**
 * Routes written as `/containers/{id}/json`; `{name*}` also matches slashes, for image references
 * such as `127.0.0.1:5000/library/busybox:latest` (moby's `{name:.*}`).
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, template: string, handler: Handler): this {
    const names: string[] = [];
    const source = template
      .split(/(\{\w+\*?\})/)
      .map((part) => {
        const param = /^\{(\w+)(\*?)\}$/.exec(part);
        if (!param) return part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
        names.push(param[1] ?? "");
        return param[2] ? "(.+)" : "([^/]+)";
      })
      .join("");
    this.routes.push({ method, pattern: new RegExp(`^${source}/?$`), names, handler });
    return this;
  }

  /** The handler and its path parameters; 404 for an unknown path, 405 for a known one with another method. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } {
    let pathKnown = false;
    for (const route of this.routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      pathKnown = true;
      const same = route.method === method || (method === "HEAD" && route.method === "GET");
      if (!same) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, index) => {
        params[name] = safeDecode(match[index + 1] ?? "");
      });
      return { handler: route.handler, params };
    }
    if (pathKnown) throw new EngineError(405, `method ${method} not allowed for ${path}`);
    throw new EngineError(404, `page not found: ${method} ${path} is not an endpoint of this engine`);
  }
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badRequest(`invalid escape in the path: ${part}`);
  }
}
