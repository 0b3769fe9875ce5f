import type { Command } from "commander";
import { EVENT_TYPES, type LibcontainerdEvent } from "../libcontainerd/types/events.js";
import { CliError, usageError } from "./errors.js";
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

/**
 * docker's words for the same events (`--filter event=die`): die is the container's own exit (its
 * init process), exec_die an exec's, as docker reports them apart.
 */
const DOCKER_EVENT_NAMES: Record<string, (event: LibcontainerdEvent) => boolean> = {
  die: (event) => event.type === "exit" && event.processId === event.containerId,
  exec_die: (event) => event.type === "exit" && event.processId !== event.containerId,
  pause: (event) => event.type === "paused",
  unpause: (event) => event.type === "resumed",
  exec_create: (event) => event.type === "exec-added",
  exec_start: (event) => event.type === "exec-started",
};

/** docker's object types (`--filter type=`): ctrd's events are all of containers. */
const DOCKER_OBJECT_TYPES = [
  "container",
  "image",
  "volume",
  "network",
  "daemon",
  "plugin",
  "node",
  "service",
  "secret",
  "config",
];

/**
 * `--filter container=ID --filter event=NAME --filter type=container`, as docker events takes them:
 * values of one key are alternatives, different keys must all match.
 */
export function eventFilter(entries: readonly string[]): (event: LibcontainerdEvent) => boolean {
  const containers = new Set<string>();
  const names: ((event: LibcontainerdEvent) => boolean)[] = [];
  const objectTypes = new Set<string>();
  for (const entry of entries) {
    const at = entry.indexOf("=");
    const key = at > 0 ? entry.slice(0, at) : "";
    const value = at > 0 ? entry.slice(at + 1) : "";
    if (key === "container" && value) containers.add(value);
    else if (key === "event") {
      const ours = EVENT_TYPES.find((name) => name === value);
      const matches =
        DOCKER_EVENT_NAMES[value] ?? (ours && ((event: LibcontainerdEvent) => event.type === ours));
      if (!matches) {
        throw usageError(
          `invalid --filter ${JSON.stringify(entry)}: events are ${[...EVENT_TYPES, ...Object.keys(DOCKER_EVENT_NAMES)].join(", ")}`,
        );
      }
      names.push(matches);
    } else if (key === "type") {
      if (!DOCKER_OBJECT_TYPES.includes(value))
        throw usageError(
          `invalid --filter ${JSON.stringify(entry)}: types are ${DOCKER_OBJECT_TYPES.join(", ")}`,
        );
      objectTypes.add(value);
    } else {
      throw usageError(
        `invalid --filter ${JSON.stringify(entry)}: want container=ID, event=NAME or type=container`,
      );
    }
  }
  return (event) =>
    (containers.size === 0 || containers.has(event.containerId)) &&
    (names.length === 0 || names.some((matches) => matches(event))) &&
    (objectTypes.size === 0 || objectTypes.has("container"));
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerEvents(program: Command): void {
  const command = program
    .command("events")
    .description("stream task events of the namespace until Ctrl-C")
    .option("--json", "one JSON object per line")
    .option(
      "-f, --filter <key=value>",
      "only container=ID, only event=NAME (docker's or ctrd's), type=container (repeatable)",
      collect,
    );
  addGlobalOptions(command).action(async (flags: { json?: boolean; filter?: string[] }, self: Command) => {
    const wanted = eventFilter(flags.filter ?? []);
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
          if (!wanted(event)) continue;
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
