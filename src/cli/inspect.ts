import type { Command } from "commander";
import type { ContainerInspect } from "../libcontainerd/types/inspect.js";
import { renderTemplate } from "./go-template.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { printJson } from "./output.js";

export function registerInspect(program: Command): void {
  const command = program
    .command("inspect")
    .description("show containers as docker inspect does (JSON, or --format with a Go template)")
    .argument("<ids...>", "container ids")
    .option("-f, --format <template>", "a Go template: {{.State.ExitCode}}, {{json .Config}}");
  addGlobalOptions(command).action(async (ids: string[], flags: { format?: string }, self: Command) => {
    // A bad template fails before anything is looked up.
    if (flags.format !== undefined) renderTemplate(flags.format, {});
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      const found: ContainerInspect[] = [];
      for (const id of ids) found.push(await (await client.loadContainer(id)).inspect());
      if (flags.format === undefined) printJson(found);
      else for (const item of found) process.stdout.write(`${renderTemplate(flags.format, item)}\n`);
    });
  });
}
