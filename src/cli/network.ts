import type { Command } from "commander";
import { formatPortMapping } from "../network/index.js";
import { CliError } from "./errors.js";
import { collectNetworkGarbage, networkManager } from "./network-manager.js";
import {
  addGlobalOptions,
  type GlobalSettings,
  globalFlags,
  resolveSettings,
  withClient,
} from "./options.js";
import { formatAge, printJson, printTable } from "./output.js";

function settingsOf(self: Command): GlobalSettings {
  return resolveSettings(globalFlags(self));
}

/** `ctrd network create|ls|rm|inspect`: bridge networks (CNI), as `docker network`. */
export function registerNetwork(program: Command): void {
  const network = program.command("network").description("manage bridge networks (create, ls, rm, inspect)");

  const create = network
    .command("create")
    .description(
      "create a bridge network (the default one, 'bridge', may be created first to choose its subnet)",
    )
    .argument("<name>", "network name")
    .option("--subnet <cidr>", "IPv4 subnet, e.g. 10.1.0.0/24 (default: a free /24)")
    .option("--gateway <ip>", "the bridge's address (default: the subnet's first)")
    .option("--bridge <device>", "the Linux bridge device's name (default: ctrd- and ten hex digits)");
  addGlobalOptions(create).action(
    async (name: string, flags: { subnet?: string; gateway?: string; bridge?: string }, self: Command) => {
      const created = await networkManager(settingsOf(self)).createNetwork({ name, ...flags });
      process.stdout.write(`${created.id}\n`);
    },
  );

  const list = network.command("ls").description("list networks").option("--json", "print JSON");
  addGlobalOptions(list).action(async (flags: { json?: boolean }, self: Command) => {
    const networks = await networkManager(settingsOf(self)).listNetworks();
    if (flags.json) {
      printJson(networks);
      return;
    }
    printTable(
      ["NETWORK ID", "NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY", "CREATED"],
      networks.map((n) => [
        n.id.slice(0, 12),
        n.name,
        n.driver,
        n.bridge,
        n.subnet,
        n.gateway,
        formatAge(new Date(n.createdAt)),
      ]),
    );
  });

  const remove = network
    .command("rm")
    .description("remove networks (refused while a container is on one)")
    .argument("<names...>", "network names");
  addGlobalOptions(remove).action(async (names: string[], _flags: unknown, self: Command) => {
    const settings = settingsOf(self);
    const manager = networkManager(settings);
    // A container that a crashed ctrd left attached must not keep its network in use forever.
    await withClient(settings, (client) => collectNetworkGarbage(manager, client, settings));
    for (const name of names) {
      await manager.removeNetwork(name);
      process.stdout.write(`${name}\n`);
    }
  });

  const inspect = network
    .command("inspect")
    .description("show networks and the containers on them, as JSON")
    .argument("<names...>", "network names");
  addGlobalOptions(inspect).action(async (names: string[], _flags: unknown, self: Command) => {
    const manager = networkManager(settingsOf(self));
    printJson(await Promise.all(names.map((name) => manager.inspectNetwork(name))));
  });
}

/** `ctrd port ID [PORT[/PROTO]]`: the container's published ports, as `docker port` prints them. */
export function registerPort(program: Command): void {
  const command = program
    .command("port")
    .description("list a container's published ports")
    .argument("<id>", "container id")
    .argument("[port]", "only this container port, e.g. 80 or 53/udp");
  addGlobalOptions(command).action(
    async (id: string, port: string | undefined, _flags: unknown, self: Command) => {
      const settings = settingsOf(self);
      const attachment = await networkManager(settings).attachment(settings.namespace, id);
      if (!attachment) {
        // No attachment: ask containerd, so an unknown id is a not-found error and not an empty answer.
        await withClient(settings, (client) => client.loadContainer(id));
        return;
      }
      const [number, protocol = "tcp"] = (port ?? "").split("/");
      const shown = attachment.ports.filter(
        (mapping) =>
          port === undefined || (String(mapping.containerPort) === number && mapping.protocol === protocol),
      );
      if (port !== undefined && shown.length === 0) {
        throw new CliError(`no public port ${number}/${protocol} published for ${id}`, "not_found");
      }
      for (const mapping of shown) {
        const [host, container] = formatPortMapping(mapping).split("->");
        process.stdout.write(`${container} -> ${host}\n`);
      }
    },
  );
}
