import type { Command } from "commander";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { ContainerInfo, TaskStatus } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { formatPorts, type PortMapping, portsFromLabels } from "../network/index.js";
import { labelledCommand } from "./container-spec.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { formatAge, printJson, printTable, truncate } from "./output.js";

export interface ContainerRow {
  id: string;
  /** The task's status; `none` when the container has no task (never started, or exited and cleaned up). */
  status: TaskStatus | "none";
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
    pid: 0,
    runtime: info.runtime.name,
    command: labelledCommand(info.labels),
    ports: portsFromLabels(info.labels),
    labels: info.labels,
  };
  if (info.createdAt) row.createdAt = info.createdAt.toISOString();
  try {
    const task = await (await client.loadContainer(info.id)).task();
    row.pid = task.pid;
    row.status = await task.status();
  } catch (err) {
    // Removed between the list and now, or simply without a task: both read as "no task".
    if (!isErrorCode(err, "not_found")) throw err;
  }
  return row;
}

export function registerPs(program: Command): void {
  const command = program
    .command("ps")
    .description("list containers with their task status and pid")
    .option("-a, --all", "also show containers whose task is not running")
    .option("--json", "print JSON");
  addGlobalOptions(command).action(async (flags: { all?: boolean; json?: boolean }, self: Command) => {
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      const infos = await client.listContainers();
      const rows = (await Promise.all(infos.map((info) => describeContainer(client, info))))
        .filter((row) => flags.all || LIVE.includes(row.status))
        .sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? "") || a.id.localeCompare(b.id));
      if (flags.json) {
        printJson(rows);
        return;
      }
      printTable(
        ["CONTAINER", "STATUS", "PID", "RUNTIME", "CREATED", "COMMAND", "PORTS"],
        rows.map((row) => [
          row.id,
          row.status === "none" ? "no task" : row.status,
          row.pid > 0 && row.status !== "stopped" ? String(row.pid) : "-",
          row.runtime,
          formatAge(row.createdAt ? new Date(row.createdAt) : undefined),
          truncate(row.command.join(" "), 40),
          formatPorts(row.ports),
        ]),
      );
    });
  });
}
