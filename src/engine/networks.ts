import { createHash } from "node:crypto";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { DEFAULT_NETWORK, HOST_NETWORK, type NetworkInfo, NO_NETWORK } from "../network/types.js";
import type { CniNetworks } from "./cni-networks.js";
import { isObject } from "./containers/config.js";
import type { ContainerRecord, ContainerStore } from "./containers/store.js";
import { badRequest, conflict, EngineError, notFound } from "./errors.js";
import type { EventBus } from "./events.js";
import { type Exchange, labelsMatch, queryFilters } from "./http.js";
import { type EndpointIpamConfig, endpointIpamConfig } from "./network-plan.js";
import { pruneFilter } from "./prune.js";
import type { Router } from "./router.js";

/** host and none as Docker lists them: networks of their own drivers that always exist. */
const PSEUDO: { name: string; driver: string }[] = [
  { name: HOST_NETWORK, driver: "host" },
  { name: NO_NETWORK, driver: "null" },
];

const pseudoId = (name: string): string => createHash("sha256").update(`ctrd-network-${name}`).digest("hex");

interface DockerNetwork {
  Name: string;
  Id: string;
  Created: string;
  Scope: "local";
  Driver: string;
  EnableIPv6: false;
  IPAM: { Driver: "default"; Options: null; Config: { Subnet: string; Gateway: string }[] };
  Internal: false;
  Attachable: false;
  Ingress: false;
  ConfigFrom: { Network: "" };
  ConfigOnly: false;
  Containers: Record<string, unknown>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

function dockerNetwork(
  name: string,
  id: string,
  driver: string,
  extra: {
    created?: string;
    subnet?: string;
    gateway?: string;
    bridge?: string;
    labels?: Record<string, string>;
  } = {},
): DockerNetwork {
  return {
    Name: name,
    Id: id,
    Created: extra.created ?? "0001-01-01T00:00:00Z",
    Scope: "local",
    Driver: driver,
    EnableIPv6: false,
    IPAM: {
      Driver: "default",
      Options: null,
      Config: extra.subnet ? [{ Subnet: extra.subnet, Gateway: extra.gateway ?? "" }] : [],
    },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: {},
    Options: extra.bridge ? { "com.docker.network.bridge.name": extra.bridge } : {},
    Labels: extra.labels ?? {},
  };
}

function fromInfo(info: NetworkInfo): DockerNetwork {
  return dockerNetwork(info.name, info.id, "bridge", {
    created: info.createdAt,
    subnet: info.subnet,
    gateway: info.gateway,
    bridge: info.bridge,
    labels: info.labels,
  });
}

/** Networks: list, inspect, create, remove, prune (bridge networks on CNI; host and none built in). */
export function networkRoutes(
  router: Router,
  networks: CniNetworks,
  store: ContainerStore,
  events: EventBus,
  /** ContainerManager's connect and disconnect. */
  connections: {
    connect(
      record: ContainerRecord,
      network: string,
      aliases: string[],
      signal: AbortSignal,
      ipam?: EndpointIpamConfig,
    ): Promise<void>;
    disconnect(record: ContainerRecord, network: string, signal: AbortSignal): Promise<void>;
  },
): void {
  const manager = networks.manager;

  const all = async (signal: AbortSignal): Promise<DockerNetwork[]> => {
    const defined = (await manager.listNetworks({ signal })).map(fromInfo);
    // The default bridge is defined on first use; it is listed before that, as Docker always has it.
    if (!defined.some((network) => network.Name === DEFAULT_NETWORK))
      defined.push(
        dockerNetwork(
          DEFAULT_NETWORK,
          pseudoId(DEFAULT_NETWORK),
          "bridge",
          await manager.defaultNetworkAddresses({ signal }),
        ),
      );
    return [...defined, ...PSEUDO.map(({ name, driver }) => dockerNetwork(name, pseudoId(name), driver))];
  };

  const find = async (ref: string, signal: AbortSignal): Promise<DockerNetwork> => {
    const list = await all(signal);
    const byName = list.find((network) => network.Name === ref || network.Id === ref);
    if (byName) return byName;
    const byPrefix = list.filter((network) => ref.length > 0 && network.Id.startsWith(ref));
    if (byPrefix.length === 1 && byPrefix[0]) return byPrefix[0];
    throw notFound(`network ${ref} not found`);
  };

  const withContainers = (network: DockerNetwork): DockerNetwork => {
    const containers: Record<string, unknown> = {};
    for (const record of store.all()) {
      const endpoint = record.Networks[network.Name];
      if (!endpoint) continue;
      containers[record.Id] = {
        Name: record.Name.slice(1),
        EndpointID: endpoint.EndpointID,
        MacAddress: endpoint.MacAddress,
        IPv4Address: endpoint.IPAddress ? `${endpoint.IPAddress}/${endpoint.IPPrefixLen}` : "",
        IPv6Address: "",
      };
    }
    return { ...network, Containers: containers };
  };

  router.add("GET", "/networks", async (exchange) => {
    const filters = queryFilters(exchange.query);
    // daemon/network/filter.go's accepted filters; others are a 400.
    for (const name of filters.keys())
      if (!["name", "id", "driver", "label", "type", "scope", "dangling"].includes(name))
        throw badRequest(`invalid filter '${name}'`);
    for (const value of filters.get("type") ?? [])
      if (value !== "custom" && value !== "builtin") throw badRequest(`invalid filter: 'type'='${value}'`);
    const accepts = (name: string, test: (value: string) => boolean): boolean => {
      const values = filters.get(name);
      return !values || values.length === 0 || values.some(test);
    };
    const builtin = (network: DockerNetwork): boolean =>
      network.Name === DEFAULT_NETWORK || PSEUDO.some((pseudo) => pseudo.name === network.Name);
    const list = (await all(exchange.signal)).filter(
      (network) =>
        accepts("name", (value) => network.Name.includes(value)) &&
        accepts("id", (value) => network.Id.startsWith(value)) &&
        accepts("driver", (value) => network.Driver === value) &&
        accepts("scope", (value) => value === "local") &&
        accepts("type", (value) => (value === "builtin") === builtin(network)) &&
        accepts("dangling", (value) => {
          const unused = !builtin(network) && !store.all().some((record) => record.Networks[network.Name]);
          return (value === "true" || value === "1") === unused;
        }) &&
        // Every label given must be on the network (filters.Args.MatchKVList).
        labelsMatch(network.Labels, filters.get("label") ?? []),
    );
    exchange.send(200, list);
  });

  router.add("GET", "/networks/{id}", async (exchange) => {
    exchange.send(200, withContainers(await find(exchange.params.id ?? "", exchange.signal)));
  });

  router.add("POST", "/networks/create", async (exchange) => {
    const body = await exchange.json();
    if (!isObject(body) || typeof body.Name !== "string" || body.Name === "")
      throw badRequest("network name is required");
    const driver = typeof body.Driver === "string" && body.Driver !== "" ? body.Driver : "bridge";
    if (driver !== "bridge") throw notFound(`plugin "${driver}" not found`);
    const name = body.Name;
    if ([DEFAULT_NETWORK, HOST_NETWORK, NO_NETWORK].includes(name))
      throw new EngineError(403, `${name} is a pre-defined network and cannot be created`);
    const ipam = isObject(body.IPAM) && Array.isArray(body.IPAM.Config) ? body.IPAM.Config : [];
    const first: unknown = ipam[0];
    const subnet = isObject(first) && typeof first.Subnet === "string" ? first.Subnet : undefined;
    const gateway =
      isObject(first) && typeof first.Gateway === "string" && first.Gateway !== ""
        ? first.Gateway
        : undefined;
    const labels =
      isObject(body.Labels) && Object.values(body.Labels).every((value) => typeof value === "string")
        ? (body.Labels as Record<string, string>)
        : {};
    try {
      const info = await manager.createNetwork({
        name,
        ...(subnet !== undefined ? { subnet } : {}),
        ...(gateway !== undefined ? { gateway } : {}),
        labels,
        signal: exchange.signal,
      });
      events.publish("network", "create", info.id, { name, type: "bridge" });
      exchange.send(201, { Id: info.id, Warning: "" });
    } catch (err) {
      if (isErrorCode(err, "already_exists")) throw conflict(`network with name ${name} already exists`);
      throw err;
    }
  });

  router.add("DELETE", "/networks/{id}", async (exchange) => {
    const network = await find(exchange.params.id ?? "", exchange.signal);
    if (network.Name === HOST_NETWORK || network.Name === NO_NETWORK || network.Name === DEFAULT_NETWORK)
      throw new EngineError(403, `${network.Name} is a pre-defined network and cannot be removed`);
    try {
      await manager.removeNetwork(network.Name, { signal: exchange.signal });
    } catch (err) {
      if (isErrorCode(err, "failed_precondition"))
        throw new EngineError(
          403,
          `error while removing network: network ${network.Name} id ${network.Id} has active endpoints`,
        );
      throw err;
    }
    events.publish("network", "destroy", network.Id, { name: network.Name, type: "bridge" });
    exchange.send(204, null);
  });

  router.add("POST", "/networks/prune", async (exchange) => {
    const { matches } = pruneFilter(exchange.query);
    const deleted: string[] = [];
    for (const info of await manager.listNetworks({ signal: exchange.signal })) {
      if (info.isDefault || info.name === DEFAULT_NETWORK) continue;
      if (!matches(info.labels, Date.parse(info.createdAt))) continue;
      // A network a container (even a stopped one) is on stays, as dockerd's prune keeps it.
      if (store.all().some((record) => record.Networks[info.name])) continue;
      try {
        await manager.removeNetwork(info.name, { signal: exchange.signal });
        deleted.push(info.name);
        events.publish("network", "destroy", info.id, { name: info.name, type: "bridge" });
      } catch (err) {
        if (!isErrorCode(err, "failed_precondition")) throw err;
      }
    }
    exchange.send(200, { NetworksDeleted: deleted });
  });

  // POST /networks/{id}/connect and /disconnect: the network and the container must exist (404s), then
  // the container's manager does the rest and the network's event follows, as dockerd's.
  const connection =
    (verb: "connect" | "disconnect") =>
    async (exchange: Exchange): Promise<void> => {
      const network = await find(exchange.params.id ?? "", exchange.signal);
      const body = await exchange.json();
      const ref = isObject(body) && typeof body.Container === "string" ? body.Container : "";
      if (ref === "") throw badRequest("a container is required");
      const record = store.get(ref);
      if (verb === "disconnect") {
        await connections.disconnect(record, network.Name, exchange.signal);
      } else {
        const settings = isObject(body) && isObject(body.EndpointConfig) ? body.EndpointConfig : {};
        const aliases = Array.isArray(settings.Aliases)
          ? settings.Aliases.filter((alias): alias is string => typeof alias === "string")
          : [];
        // validateEndpointSettings' refusal, and what this engine does not do rather than ignore.
        if (aliases.length > 0 && network.Name === DEFAULT_NETWORK)
          throw badRequest("network-scoped alias is supported only for containers in user defined networks");
        await connections.connect(
          record,
          network.Name,
          aliases,
          exchange.signal,
          endpointIpamConfig(settings.IPAMConfig),
        );
      }
      events.publish("network", verb, network.Id, {
        container: record.Id,
        name: network.Name,
        type: network.Driver,
      });
      exchange.send(200, null);
    };
  router.add("POST", "/networks/{id}/connect", connection("connect"));
  router.add("POST", "/networks/{id}/disconnect", connection("disconnect"));
}
