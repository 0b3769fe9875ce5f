import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { startContainer, stopContainer } from "./lifecycle.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { graceMs, type StopFlags, stopSignal } from "./stop.js";

export function registerRestart(program: Command): void {
  const command = program
    .command("restart")
    .description("stop containers (SIGTERM, then SIGKILL) and start them again")
    .argument("<ids...>", "container ids")
    .option("-t, --time <seconds>", "seconds to wait before SIGKILL", "10")
    .option(
      "-s, --signal <signal>",
      "the signal that asks it to stop (default: its image's StopSignal, else SIGTERM)",
    );
  addGlobalOptions(command).action(async (ids: string[], flags: StopFlags, self: Command) => {
    const grace = graceMs(flags.time);
    const signal = stopSignal(flags.signal);
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      await forEachContainer(ids, async (id) => {
        await stopContainer(client, id, grace, signal);
        await startContainer(settings, client, id);
        return undefined;
      });
    });
  });
}
