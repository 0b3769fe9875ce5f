import type { Command } from "commander";
import { observe } from "../state/observe.js";
import { forEachContainer } from "./each-container.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerWait(program: Command): void {
  const command = program
    .command("wait")
    .description("wait for containers to exit and print their exit codes")
    .argument("<ids...>", "container ids");
  addGlobalOptions(command).action(async (ids: string[], _flags: unknown, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await forEachContainer(ids, async (id) => {
        const container = await client.loadContainer(id);
        const state = await observe(container);
        if (state.task === "stopped") return String(state.exit?.exitCode ?? 0);
        // docker wait's condition, not-running (dockerd's State.Wait): a container that is not running
        // now is answered at once with its last exit code (0 if it never ran). That includes a task
        // created and never started, whose wait() would block until someone starts it.
        if (state.task === "none" || state.task === "created") return String(state.remembered.exitCode ?? 0);
        return String((await (await container.task()).wait()).exitCode);
      });
    });
  });
}
