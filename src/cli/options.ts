import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { type Command, Option } from "commander";
import type { Logger } from "pino";
import {
  type CreateClientOptions,
  createClient,
  type LibcontainerdClient,
} from "../libcontainerd/factory.js";
import { hostPort, parseAddress } from "../libcontainerd/grpc/address.js";
import type { ContainerdLogLevel } from "../libcontainerd/supervisor/config.js";
import { isErrorCode, LibcontainerdError } from "../libcontainerd/types/errors.js";
import { DEFAULT_MANAGED_ROOT, defaultStateDir } from "../platform/addresses.js";
import { detectPlatform } from "../platform/detect.js";
import { parseDaemonJson } from "../runtime/daemon-json.js";
import type { RuntimeConfig } from "../runtime/types.js";
import { CliError, usageError } from "./errors.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "./logger.js";
import { onBrokenPipeExit, withSpinner } from "./output.js";

export const DEFAULT_NAMESPACE = "ctrd";

/** The flags every command takes, as the user gave them (unset stays undefined). */
export interface GlobalFlags {
  containerd?: string;
  experimental?: boolean;
  defaultRuntime?: string;
  addRuntime?: string[];
  config?: string;
  namespace?: string;
  root?: string;
  state?: string;
  logLevel?: LogLevel;
  lcowKernel?: string;
  lcowInitrd?: string;
}

/** The global flags, resolved: defaults applied, daemon.json read. */
export interface GlobalSettings {
  containerdAddress?: string;
  experimental: boolean;
  namespace: string;
  /** The managed containerd's data root. */
  root: string;
  /** Client state (FIFOs), the managed containerd's socket and state, the CLI's rootfs. */
  stateDir: string;
  runtimes?: Record<string, RuntimeConfig>;
  defaultRuntime?: string;
  addRuntimes: string[];
  logLevel: LogLevel;
  lcow?: { kernel?: string; initrd?: string };
  logger: Logger;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * Adds the global flags. They are on the program and on every command, so `ctrd --namespace x ps`
 * and `ctrd ps --namespace x` both work, as users of docker and nerdctl type either.
 */
export function addGlobalOptions(command: Command): Command {
  command.optionsGroup("Global options:");
  command
    .option(
      "--containerd <address>",
      "containerd address: socket path, unix://PATH or \\\\.\\pipe\\NAME (default: a managed containerd)",
    )
    .option("--experimental", "enable experimental features (remote containerd on Windows)")
    .option("--default-runtime <name>", "runtime for containers that name none (default: runc)")
    .option("--add-runtime <name=path>", "register a runtime binary under a name (repeatable)", collect)
    .option("--config <file>", "daemon.json to read 'runtimes' and 'default-runtime' from")
    .option("--namespace <ns>", `containerd namespace (default: ${DEFAULT_NAMESPACE})`)
    .option("--root <dir>", `the managed containerd's data root (default: ${DEFAULT_MANAGED_ROOT})`)
    .option("--state <dir>", "state dir: FIFOs, the managed containerd's socket, the default rootfs")
    .addOption(
      new Option("--log-level <level>", "log level for ctrd's own logs on stderr (default: warn)").choices(
        LOG_LEVELS,
      ),
    )
    .option("--lcow-kernel <file>", "Linux containers on Windows: the utility VM's kernel")
    .option("--lcow-initrd <file>", "Linux containers on Windows: the utility VM's initrd");
  command.optionsGroup("Options:");
  return command;
}

/** The command's own global flags over the program's; repeatable ones from both. */
export function globalFlags(command: Command): GlobalFlags {
  const chain: Command[] = [];
  for (let current: Command | null = command; current; current = current.parent) chain.unshift(current);
  const merged: GlobalFlags = {};
  const addRuntime: string[] = [];
  for (const level of chain) {
    const flags = level.opts<GlobalFlags>();
    for (const key of Object.keys(flags) as (keyof GlobalFlags)[]) {
      if (key === "addRuntime") addRuntime.push(...(flags.addRuntime ?? []));
      else if (flags[key] !== undefined) Object.assign(merged, { [key]: flags[key] });
    }
  }
  if (addRuntime.length > 0) merged.addRuntime = addRuntime;
  return merged;
}

function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(path);
}

function readDaemonJson(path: string): { runtimes?: Record<string, RuntimeConfig>; defaultRuntime?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  return parseDaemonJson(text);
}

export function resolveSettings(flags: GlobalFlags): GlobalSettings {
  const logLevel = flags.logLevel ?? "warn";
  const platform = detectPlatform();
  const daemonJson = flags.config ? readDaemonJson(flags.config) : {};
  const settings: GlobalSettings = {
    experimental: flags.experimental ?? false,
    namespace: flags.namespace ?? DEFAULT_NAMESPACE,
    root: absolute(flags.root ?? DEFAULT_MANAGED_ROOT),
    stateDir: absolute(flags.state ?? defaultStateDir(platform.os, process.env)),
    addRuntimes: flags.addRuntime ?? [],
    logLevel,
    logger: createLogger(logLevel),
  };
  if (flags.containerd !== undefined) settings.containerdAddress = flags.containerd;
  if (daemonJson.runtimes) settings.runtimes = daemonJson.runtimes;
  const defaultRuntime = flags.defaultRuntime ?? daemonJson.defaultRuntime;
  if (defaultRuntime !== undefined) settings.defaultRuntime = defaultRuntime;
  if (flags.lcowKernel !== undefined || flags.lcowInitrd !== undefined) {
    settings.lcow = {
      ...(flags.lcowKernel !== undefined ? { kernel: flags.lcowKernel } : {}),
      ...(flags.lcowInitrd !== undefined ? { initrd: flags.lcowInitrd } : {}),
    };
  }
  return settings;
}

/**
 * containerd's log levels are logrus's: no "silent", and "panic" is its quietest. At ctrd's default
 * its warnings and errors stay quiet too: they are routine (a shim cleaned up after a normal exit,
 * a paused container resumed to be killed), and what goes wrong reaches ctrd as a typed error anyway.
 */
export function containerdLogLevel(level: LogLevel): ContainerdLogLevel {
  if (level === "silent") return "panic";
  return level === "warn" || level === "error" ? "fatal" : level;
}

export function createClientOptions(settings: GlobalSettings): CreateClientOptions {
  return {
    namespace: settings.namespace,
    stateDir: settings.stateDir,
    root: settings.root,
    experimental: settings.experimental,
    addRuntimes: settings.addRuntimes,
    env: process.env,
    logger: settings.logger,
    ...(settings.containerdAddress !== undefined ? { containerdAddress: settings.containerdAddress } : {}),
    ...(settings.runtimes !== undefined ? { runtimes: settings.runtimes } : {}),
    ...(settings.defaultRuntime !== undefined ? { defaultRuntime: settings.defaultRuntime } : {}),
    ...(settings.lcow !== undefined ? { lcow: settings.lcow } : {}),
    // The managed containerd is a daemon: it outlives this command so `run -d` containers keep running.
    managedContainerd: { leaveRunning: true, logLevel: containerdLogLevel(settings.logLevel) },
  };
}

const REACH_TIMEOUT_MS = 5_000;

/**
 * A unix socket path is checked before a client exists, for the one line that says what is wrong
 * with it. Whether containerd answers there is then the command's first call (see openClient).
 */
function checkContainerdAddress(raw: string): void {
  let address: ReturnType<typeof parseAddress>;
  try {
    address = parseAddress(raw);
  } catch (err) {
    throw new CliError((err as Error).message, "invalid_argument", 125, { cause: err });
  }
  if (address.kind !== "unix") return;
  if (!existsSync(address.path)) {
    throw new CliError(`cannot reach containerd at ${address.path}: no socket there`, "unavailable");
  }
  if (!statSync(address.path).isSocket()) {
    throw new CliError(
      `cannot reach containerd at ${address.path}: it is not a socket (containerd's config or state dir instead of its socket?)`,
      "invalid_argument",
    );
  }
}

/**
 * A client for the chosen backend. Whether containerd answers is not asked on its own (a Version
 * call cost every command one more RPC): a command whose calls find nobody there fails with the one
 * line that says so (see `unreachable`). Starting a managed containerd shows a spinner.
 */
export async function openClient(settings: GlobalSettings): Promise<LibcontainerdClient> {
  if (settings.containerdAddress !== undefined) checkContainerdAddress(settings.containerdAddress);
  const managed = settings.containerdAddress === undefined && process.platform === "linux";
  const creating = createClient(createClientOptions(settings));
  return managed ? await withSpinner("starting containerd", creating) : await creating;
}

/**
 * openClient, checked to answer: for a command that serves (`ctrd serve`), which is to fail at its
 * start, not at its first request.
 */
export async function openCheckedClient(settings: GlobalSettings): Promise<LibcontainerdClient> {
  const client = await openClient(settings);
  if (client.backend === "remote") {
    try {
      await client.version({ timeoutMs: REACH_TIMEOUT_MS });
    } catch (err) {
      await client.close().catch(() => {});
      throw (await unreachable(client, err, true)) ?? err;
    }
  }
  return client;
}

/** The address of the containerd the client talks to, if it talks to one. */
function containerdAddress(client: LibcontainerdClient): string | undefined {
  const { choice } = client;
  if (choice.backend !== "remote") return undefined;
  return "address" in choice ? choice.address : client.managedContainerd?.address;
}

/**
 * The one line for a command that found no containerd: its call failed as unavailable and no call
 * of this process was ever answered there (one that went away in the middle of a command is
 * another failure). With `always`, whatever failed (a Version call made only to check).
 */
async function unreachable(
  client: LibcontainerdClient,
  err: unknown,
  always = false,
): Promise<CliError | undefined> {
  const address = containerdAddress(client);
  if (address === undefined) return undefined;
  if (!always) {
    // Loaded here, on a failure: a command that never calls containerd need not load the transport.
    const { lastAnswerAt } = await import("../libcontainerd/grpc/transport.js");
    const parsed = parseAddress(address);
    const answered = lastAnswerAt(parsed.kind === "tcp" ? hostPort(parsed) : parsed.path) !== undefined;
    if (answered || !isErrorCode(err, "unavailable")) return undefined;
  }
  const detail = err instanceof LibcontainerdError ? err.message : String(err);
  return new CliError(`cannot reach containerd at ${address}: ${detail}`, "unavailable", 125, { cause: err });
}

/** Opens a client, runs `work`, and always closes it (leaving a managed containerd running). */
export async function withClient<T>(
  settings: GlobalSettings,
  work: (client: LibcontainerdClient) => Promise<T>,
): Promise<T> {
  const client = await openClient(settings);
  onBrokenPipeExit(() => client.close());
  try {
    return await work(client);
  } catch (err) {
    throw (await unreachable(client, err)) ?? err;
  } finally {
    // A broken pipe noticed while closing waits for the same close (it is idempotent).
    await client.close().catch((err: unknown) => settings.logger.debug({ err }, "closing the client failed"));
    onBrokenPipeExit(undefined);
  }
}
