import type { Command } from "commander";
import type { LibcontainerdEvent } from "../libcontainerd/types/events.js";
import { CliError } from "./errors.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { printJsonLine } from "./output.js";
import { signalExitCode } from "./signals.js";

function describe(event: LibcontainerdEvent): string {
  const parts = [event.timestamp.toISOString(), event.type.padEnd(12), event.containerId];
  if (event.processId !== event.containerId) parts.push(`exec=${event.processId}`);
  if (event.pid > 0) parts.push(`pid=${event.pid}`);
  if (event.exitCode !== undefined) parts.push(`exit=${event.exitCode}`);
  if (event.error) parts.push(`error=${JSON.stringify(event.error.message)}`);
  return parts.join(" ");
}

export function registerEvents(program: Command): void {
  const command = program
    .command("events")
    .description("stream task events of the namespace until Ctrl-C")
    .option("--json", "one JSON object per line");
  addGlobalOptions(command).action(async (flags: { json?: boolean }, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      const stop = new AbortController();
      // Ctrl-C ends the stream with the signal's status (130), as it ends docker events.
      const onStop = (signal: NodeJS.Signals): void => {
        process.exitCode = signalExitCode(signal);
        stop.abort();
      };
      // `ctrd daemon stop` elsewhere: no event can come any more (docker events ends with dockerd).
      let stoppedElsewhere = false;
      const onStoppedElsewhere = (): void => {
        stoppedElsewhere = true;
        stop.abort();
      };
      client.managedContainerd?.once("stopped-elsewhere", onStoppedElsewhere);
      process.once("SIGINT", onStop);
      process.once("SIGTERM", onStop);
      try {
        for await (const event of client.events({ signal: stop.signal })) {
          if (!flags.json) {
            process.stdout.write(`${describe(event)}\n`);
            continue;
          }
          const { error, ...rest } = event;
          printJsonLine(error ? { ...rest, error: error.message } : rest);
        }
        if (stoppedElsewhere)
          throw new CliError("containerd was stopped (ctrd daemon stop); no more events", "unavailable");
      } finally {
        client.managedContainerd?.off("stopped-elsewhere", onStoppedElsewhere);
        process.off("SIGINT", onStop);
        process.off("SIGTERM", onStop);
      }
    });
  });
}
