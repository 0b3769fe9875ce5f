import type { Command } from "commander";
import { observe } from "../state/observe.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerWait(program: Command): void {
  const command = program
    .command("wait")
    .description("wait for containers to exit and print their exit codes")
    .argument("<ids...>", "container ids");
  addGlobalOptions(command).action(async (ids: string[], _flags: unknown, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      for (const id of ids) {
        const container = await client.loadContainer(id);
        const state = await observe(container);
        let code: number;
        if (state.task === "stopped") code = state.exit?.exitCode ?? 0;
        else if (state.task === "none") code = state.remembered.exitCode ?? 0;
        else code = (await (await container.task()).wait()).exitCode;
        process.stdout.write(`${code}\n`);
      }
    });
  });
}
