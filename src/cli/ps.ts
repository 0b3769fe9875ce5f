import type { Command } from "commander";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { ContainerInfo, TaskStatus } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import type { ContainerStatus } from "../libcontainerd/types/inspect.js";
import type { PortMapping } from "../network/ports.js";
import { formatPorts, portsFromLabels } from "../network/spec.js";
import { containerStatus } from "../state/inspect.js";
import { observe } from "../state/observe.js";
import { labelledCommand } from "./container-spec.js";
import { statusText } from "./container-status.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { formatAge, printJson, printTable, truncate } from "./output.js";

export interface ContainerRow {
  id: string;
  /** The task's status; `none` when the container has no task (never started, or exited and cleaned up). */
  status: TaskStatus | "none";
  /** Docker's state word (`running`, `exited`, …) and its STATUS text (`Exited (3) 2 minutes ago`). */
  state: ContainerStatus;
  statusText: string;
  /** The last exit (the stopped task's, or remembered), if any. */
  exitCode?: number;
  pid: number;
  runtime: string;
  createdAt?: string;
  command: string[];
  ports: PortMapping[];
  labels: Record<string, string>;
}

const LIVE: readonly string[] = ["running", "paused", "pausing"];

async function describeContainer(client: LibcontainerdClient, info: ContainerInfo): Promise<ContainerRow> {
  const row: ContainerRow = {
    id: info.id,
    status: "none",
    state: "created",
    statusText: "Created",
    pid: 0,
    runtime: info.runtime.name,
    command: labelledCommand(info.labels),
    ports: portsFromLabels(info.labels),
    labels: info.labels,
  };
  if (info.createdAt) row.createdAt = info.createdAt.toISOString();
  try {
    // Looking records an exit that happened while no client ran (the shim still holds it).
    const state = await observe(await client.loadContainer(info.id));
    row.status = state.task;
    row.pid = state.pid;
    row.state = containerStatus(state);
    row.statusText = statusText(state);
    const exitCode = state.exit?.exitCode ?? (state.task === "none" ? state.remembered.exitCode : undefined);
    if (exitCode !== undefined) row.exitCode = exitCode;
  } catch (err) {
    // Removed between the list and now.
    if (!isErrorCode(err, "not_found")) throw err;
  }
  return row;
}

export function registerPs(program: Command): void {
  const command = program
    .command("ps")
    .description("list containers with their task status and pid")
    .option("-a, --all", "also show containers whose task is not running")
    .option("-q, --quiet", "only ids, one a line (ctrd rm -f $(ctrd ps -aq))")
    .option("--json", "print JSON");
  addGlobalOptions(command).action(
    async (flags: { all?: boolean; quiet?: boolean; json?: boolean }, self: Command) => {
      const settings = resolveSettings(globalFlags(self));
      await withClient(settings, async (client) => {
        const infos = await client.listContainers();
        const rows = (await Promise.all(infos.map((info) => describeContainer(client, info))))
          .filter((row) => flags.all || LIVE.includes(row.status))
          .sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? "") || a.id.localeCompare(b.id));
        if (flags.quiet) {
          process.stdout.write(rows.map((row) => `${row.id}\n`).join(""));
          return;
        }
        if (flags.json) {
          printJson(rows);
          return;
        }
        printTable(
          ["CONTAINER", "STATUS", "PID", "RUNTIME", "CREATED", "COMMAND", "PORTS"],
          rows.map((row) => [
            row.id,
            row.statusText,
            row.pid > 0 ? String(row.pid) : "-",
            row.runtime,
            formatAge(row.createdAt ? new Date(row.createdAt) : undefined),
            truncate(row.command.join(" "), 40),
            formatPorts(row.ports),
          ]),
        );
      });
    },
  );
}
