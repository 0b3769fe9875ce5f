import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { startContainer, stopContainer } from "./lifecycle.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { graceMs } from "./stop.js";

export function registerRestart(program: Command): void {
  const command = program
    .command("restart")
    .description("stop containers (SIGTERM, then SIGKILL) and start them again")
    .argument("<ids...>", "container ids")
    .option("-t, --time <seconds>", "seconds to wait before SIGKILL", "10");
  addGlobalOptions(command).action(async (ids: string[], flags: { time?: string }, self: Command) => {
    const grace = graceMs(flags.time);
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      await forEachContainer(ids, async (id) => {
        await stopContainer(client, id, grace);
        await startContainer(settings, client, id);
        return undefined;
      });
    });
  });
}
