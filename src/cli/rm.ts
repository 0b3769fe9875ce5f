import type { Command } from "commander";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { forEachContainer } from "./each-container.js";
import { CliError } from "./errors.js";
import { collectNetworkGarbage, networkManager } from "./network-manager.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerRm(program: Command): void {
  const command = program
    .command("rm")
    .description("remove containers (a stopped task goes with them; -f kills a running one first)")
    .argument("<ids...>", "container ids")
    .option("-f, --force", "kill and remove a running container");
  addGlobalOptions(command).action(async (ids: string[], flags: { force?: boolean }, self: Command) => {
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      const network = networkManager(settings);
      await collectNetworkGarbage(network, client, settings);
      await forEachContainer(
        ids,
        async (id) => {
          const container = await client.loadContainer(id);
          const task = await container.task().catch((err: unknown) => {
            if (isErrorCode(err, "not_found")) return undefined;
            throw err;
          });
          if (task) {
            const status = await task.status();
            if (flags.force) {
              await task.forceDelete();
            } else if (status === "stopped" || status === "created") {
              // A created task never ran: deleting it is as harmless as deleting a stopped one.
              if (status === "created") await task.forceDelete();
              else await task.delete();
            } else {
              throw new CliError(
                `container ${id} is ${status}: stop it first (ctrd kill ${id}) or use ctrd rm -f ${id}`,
                "failed_precondition",
              );
            }
          }
          await container.delete().catch((err: unknown) => {
            // Removed meanwhile by the ctrd that runs it with --rm, once the kill above ended it.
            if (!isErrorCode(err, "not_found")) throw err;
          });
          await network.detach(settings.namespace, id);
          return undefined;
        },
        { missingIsFine: flags.force ?? false },
      );
    });
  });
}
