import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { createClient } from "../libcontainerd/factory.js";
import { type ManagedContainerdLayout, managedContainerdLayout } from "../libcontainerd/supervisor/layout.js";
import { findContainerdProcesses, isManagedContainerd } from "../libcontainerd/supervisor/process-info.js";
import { ManagedContainerd } from "../libcontainerd/supervisor/supervisor.js";
import { CliError } from "./errors.js";
import {
  addGlobalOptions,
  containerdLogLevel,
  type GlobalSettings,
  globalFlags,
  resolveSettings,
} from "./options.js";
import { printJson, withSpinner } from "./output.js";

/** `daemon status` exits with this when no managed containerd runs, as an LSB init script does. */
export const NOT_RUNNING_EXIT_CODE = 3;

export interface DaemonStatus {
  running: boolean;
  pid?: number;
  address: string;
  root: string;
  stateDir: string;
  version?: string;
  /** Containers in the namespace, when containerd answers. */
  containers?: number;
  error?: string;
}

function managedPids(layout: ManagedContainerdLayout): number[] {
  const pids = new Set(findContainerdProcesses(layout.configFile));
  try {
    const recorded = Number(readFileSync(layout.pidFile, "utf8").trim());
    if (isManagedContainerd(recorded, layout.configFile)) pids.add(recorded);
  } catch {}
  return [...pids];
}

function supervisor(settings: GlobalSettings, leaveRunning: boolean): ManagedContainerd {
  if (settings.containerdAddress !== undefined) {
    throw new CliError(
      "ctrd daemon manages ctrd's own containerd; --containerd names one run by someone else",
      "invalid_argument",
    );
  }
  return new ManagedContainerd({
    root: settings.root,
    stateDir: settings.stateDir,
    leaveRunning,
    logger: settings.logger,
    logLevel: containerdLogLevel(settings.logLevel),
  });
}

async function start(settings: GlobalSettings): Promise<number> {
  const managed = supervisor(settings, true);
  await withSpinner("starting containerd", managed.start());
  const pid = managed.pid;
  const adopted = managed.adopted;
  await managed.shutdown({ leaveRunning: true });
  process.stdout.write(
    `containerd ${adopted ? "already running" : "started"} (pid ${pid}) at ${managed.address}\n`,
  );
  return 0;
}

async function stop(settings: GlobalSettings): Promise<number> {
  const layout = managedContainerdLayout(settings.root, settings.stateDir);
  if (managedPids(layout).length === 0) {
    process.stdout.write("containerd is not running\n");
    return 0;
  }
  const live = await liveContainers(settings, layout.socket).catch(() => 0);
  // Adopting first lets the supervisor stop it the one careful way: TERM, grace, KILL, files removed.
  const managed = supervisor(settings, false);
  await managed.start();
  const pid = managed.pid;
  await managed.shutdown({ leaveRunning: false, onPurpose: true });
  const note =
    live > 0
      ? `; ${live} container(s) in namespace ${settings.namespace} keep running, and are found again when it starts`
      : "";
  process.stdout.write(`containerd stopped (pid ${pid})${note}\n`);
  return 0;
}

/** Containers whose task runs: shims outlive containerd, so stopping it does not stop them. */
async function liveContainers(settings: GlobalSettings, socket: string): Promise<number> {
  const client = await createClient({
    containerdAddress: socket,
    stateDir: settings.stateDir,
    namespace: settings.namespace,
    logger: settings.logger,
  });
  try {
    const containers = await client.listContainers({ timeoutMs: 3_000 });
    const statuses = await Promise.all(
      containers.map(async (info) => {
        try {
          const container = await client.loadContainer(info.id, { timeoutMs: 3_000 });
          return await (await container.task({ timeoutMs: 3_000 })).status({ timeoutMs: 3_000 });
        } catch {
          return "none";
        }
      }),
    );
    return statuses.filter((status) => status === "running" || status === "paused").length;
  } finally {
    await client.close();
  }
}

async function status(settings: GlobalSettings): Promise<DaemonStatus> {
  const layout = managedContainerdLayout(settings.root, settings.stateDir);
  const [pid] = managedPids(layout);
  const report: DaemonStatus = {
    running: pid !== undefined,
    address: layout.socket,
    root: layout.root,
    stateDir: layout.stateDir,
  };
  if (pid === undefined) return report;
  report.pid = pid;
  const client = await createClient({
    containerdAddress: layout.socket,
    stateDir: settings.stateDir,
    namespace: settings.namespace,
    logger: settings.logger,
  });
  try {
    report.version = (await client.version({ timeoutMs: 3_000 })).version;
    report.containers = (await client.listContainers({ timeoutMs: 3_000 })).length;
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  } finally {
    await client.close();
  }
  return report;
}

export function registerDaemon(program: Command): void {
  const daemon = program.command("daemon").description("the containerd ctrd manages (started on first use)");
  const actions = {
    start: "start the managed containerd (or report the one running)",
    stop: "stop the managed containerd (containers keep running, and are found again on the next start)",
    status: "whether the managed containerd runs, its pid, address and version",
  } as const;
  for (const [name, description] of Object.entries(actions) as [keyof typeof actions, string][]) {
    const command = daemon.command(name).description(description);
    if (name === "status") command.option("--json", "print JSON");
    addGlobalOptions(command).action(async (flags: { json?: boolean }, self: Command) => {
      const settings = resolveSettings(globalFlags(self));
      if (name === "start") process.exitCode = await start(settings);
      else if (name === "stop") process.exitCode = await stop(settings);
      else {
        const report = await status(settings);
        if (flags.json) printJson(report);
        else if (report.running) {
          process.stdout.write(
            `containerd is running (pid ${report.pid}) at ${report.address}` +
              (report.version
                ? `, version ${report.version}, ${report.containers} container(s) in ${settings.namespace}`
                : "") +
              (report.error ? `, but does not answer: ${report.error}` : "") +
              "\n",
          );
        } else
          process.stdout.write(`containerd is not running (root ${report.root}, state ${report.stateDir})\n`);
        process.exitCode = report.running ? 0 : NOT_RUNNING_EXIT_CODE;
      }
    });
  }
}
