import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

/** `pause` and `resume` (docker's `unpause`): freeze and thaw every process of a container. */
export function registerPause(program: Command): void {
  for (const verb of ["pause", "resume"] as const) {
    const command = program
      .command(verb)
      .description(verb === "pause" ? "freeze every process of a container" : "thaw a paused container")
      .argument("<ids...>", "container ids");
    if (verb === "resume") command.alias("unpause");
    addGlobalOptions(command).action(async (ids: string[], _flags: unknown, self: Command) => {
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        await forEachContainer(ids, async (id) => {
          const task = await (await client.loadContainer(id)).task();
          await (verb === "pause" ? task.pause() : task.resume());
          return undefined;
        });
      });
    });
  }
}
