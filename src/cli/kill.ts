import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerKill(program: Command): void {
  const command = program
    .command("kill")
    .description("send a signal to containers' init processes")
    .argument("<ids...>", "container ids")
    .option("-s, --signal <signal>", "signal name or number", "SIGKILL");
  addGlobalOptions(command).action(async (ids: string[], flags: { signal: string }, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await forEachContainer(ids, async (id) => {
        const task = await (await client.loadContainer(id)).task();
        await task.kill(flags.signal);
        return undefined;
      });
    });
  });
}
