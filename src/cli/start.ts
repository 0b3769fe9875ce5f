import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { startContainer } from "./lifecycle.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerStart(program: Command): void {
  const command = program
    .command("start")
    .description("start created or exited containers again (in the background, appending to their log)")
    .argument("<ids...>", "container ids");
  addGlobalOptions(command).action(async (ids: string[], _flags: unknown, self: Command) => {
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      await forEachContainer(ids, async (id) => {
        await startContainer(settings, client, id);
        return undefined;
      });
    });
  });
}
