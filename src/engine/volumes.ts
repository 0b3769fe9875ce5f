import { badRequest, EngineError, notFound } from "./errors.js";
import { queryFilters } from "./http.js";
import type { Router } from "./router.js";

const UNSUPPORTED =
  "named volumes are not supported by this engine: bind a host directory instead (-v /host/dir:/path, or --mount type=bind)";

/**
 * Volumes: this engine has no volume store (containers bind host directories), so the list is honestly
 * empty, a name is never found, and creating one is refused with a message that says what to do instead,
 * where an unknown endpoint used to answer `page not found` to every `docker volume` command.
 */
export function volumeRoutes(router: Router): void {
  router.add("GET", "/volumes", (exchange) => {
    const filters = queryFilters(exchange.query);
    for (const name of filters.keys())
      if (!["dangling", "driver", "label", "name"].includes(name))
        throw badRequest(`invalid filter '${name}'`);
    exchange.send(200, { Volumes: [], Warnings: null });
  });
  router.add("POST", "/volumes/create", () => {
    throw new EngineError(501, UNSUPPORTED);
  });
  router.add("POST", "/volumes/prune", (exchange) => {
    exchange.send(200, { VolumesDeleted: null, SpaceReclaimed: 0 });
  });
  router.add("GET", "/volumes/{name}", (exchange) => {
    throw notFound(`get ${exchange.params.name ?? ""}: no such volume`);
  });
  router.add("DELETE", "/volumes/{name}", (exchange) => {
    throw notFound(`get ${exchange.params.name ?? ""}: no such volume`);
  });
}
