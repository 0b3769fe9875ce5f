import type { Command } from "commander";
import { parseSignal } from "../libcontainerd/signals.js";
import { forEachContainer } from "./each-container.js";
import { usageError } from "./errors.js";
import { stopContainer } from "./lifecycle.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export interface StopFlags {
  time?: string;
  signal?: string;
}

/** `-s SIGNAL`, checked before any container is touched (a bad one would fail each the same way). */
export function stopSignal(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    parseSignal(value);
  } catch (err) {
    throw usageError(`invalid --signal ${JSON.stringify(value)}: ${(err as Error).message}`);
  }
  return value;
}

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
    .option("-t, --time <seconds>", "seconds to wait before SIGKILL", "10")
    .option(
      "-s, --signal <signal>",
      "the signal that asks it to stop (default: its image's StopSignal, else SIGTERM)",
    );
  addGlobalOptions(command).action(async (ids: string[], flags: StopFlags, self: Command) => {
    const grace = graceMs(flags.time);
    const signal = stopSignal(flags.signal);
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await forEachContainer(ids, async (id) => {
        await stopContainer(client, id, grace, signal);
        return undefined;
      });
    });
  });
}
