import type { Command } from "commander";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import type { ContainerInspect } from "../libcontainerd/types/inspect.js";
import { exitCodeFor, formatError } from "./errors.js";
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
      // As docker inspect: what exists is printed, and each id that does not is an error after it.
      const found: ContainerInspect[] = [];
      const missing: unknown[] = [];
      for (const id of ids) {
        try {
          found.push(await (await client.loadContainer(id)).inspect());
        } catch (err) {
          if (!isErrorCode(err, "not_found")) throw err;
          missing.push(err);
        }
      }
      if (flags.format === undefined) printJson(found);
      else for (const item of found) process.stdout.write(`${renderTemplate(flags.format, item)}\n`);
      for (const err of missing) process.stderr.write(`${formatError(err)}\n`);
      if (missing.length > 0) process.exitCode = exitCodeFor(missing[0]);
    });
  });
}
