import type { Command } from "commander";
import { forEachContainer } from "./each-container.js";
import { usageError } from "./errors.js";
import { stopContainer } from "./lifecycle.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

/** `-t SECONDS` as docker takes it (default 10). */
export function graceMs(value: string | undefined): number {
  const seconds = Number(value ?? "10");
  if (value !== undefined && !/^\d+(\.\d+)?$/.test(value.trim()))
    throw usageError(`invalid --time ${JSON.stringify(value)}: want seconds`);
  return seconds * 1000;
}

export function registerStop(program: Command): void {
  const command = program
    .command("stop")
    .description("stop running containers: SIGTERM, then SIGKILL after the grace period")
    .argument("<ids...>", "container ids")
    .option("-t, --time <seconds>", "seconds to wait before SIGKILL", "10");
  addGlobalOptions(command).action(async (ids: string[], flags: { time?: string }, self: Command) => {
    const grace = graceMs(flags.time);
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await forEachContainer(ids, async (id) => {
        await stopContainer(client, id, grace);
        return undefined;
      });
    });
  });
}
