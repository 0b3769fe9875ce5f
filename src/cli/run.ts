import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { Logger } from "pino";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import type { Container, LogOptions, Task } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import { LOG_LABELS, logLabels } from "../logs/labels.js";
import type { LocalLogger } from "../logs/local-logger.js";
import type { HostsEntry } from "../network/dns.js";
import type { PortRequest } from "../network/ports.js";
import { isolatedAttachment } from "../network/spec.js";
import { NO_NETWORK, type PendingAttachment } from "../network/types.js";
import { deleteExited } from "../run/remove.js";
import { RUNC_V1_SHIM } from "../runtime/names.js";
import { Attachment } from "./attach.js";
import {
  type ContainerFlags,
  containerLabels,
  containerSpec,
  generateName,
  parseEnv,
  parseUser,
  type RunOptionFlags,
  resourcesFromFlags,
  runOptionsFromFlags,
} from "./container-spec.js";
import { CliError, ExitCode, launchFailure, usageError } from "./errors.js";
import { containerLogPath, parseLogOpts } from "./log-options.js";
import { defaultRunNetwork, parseAddHosts, parsePublish, withNetwork } from "./networking.js";
import {
  addGlobalOptions,
  type GlobalSettings,
  globalFlags,
  resolveSettings,
  withClient,
} from "./options.js";
import { ensureDefaultRootfs } from "./rootfs.js";
import { SignalRelay } from "./signals.js";

interface RunFlags extends RunOptionFlags {
  rm?: boolean;
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  name?: string;
  rootfs?: string;
  env?: string[];
  workdir?: string;
  user?: string;
  runtime?: string;
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpus?: string;
  cpusetCpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  init?: boolean;
  readOnly?: boolean;
  cgroupParent?: string;
  stopTimeout?: string;
  logDriver?: string;
  logOpt?: string[];
  network?: string;
  publish?: string[];
  dns?: string[];
  addHost?: string[];
  pull?: string;
  platform?: string;
  plainHttp?: boolean;
  caFile?: string;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerRun(program: Command): void {
  const command = program
    .command("run")
    .description("run a command in a new container (stdio attached; its exit code is ctrd's)")
    .usage(
      "[options] IMAGE [COMMAND [ARGS...]]  |  [options] --rootfs DIR CMD [ARGS...]  |  [options] -- CMD [ARGS...]",
    )
    .argument(
      "<image-or-cmd...>",
      "an image (and a command replacing its Cmd), or after --/with --rootfs the command",
    )
    .option("--rm", "remove the container when it exits")
    .option("-d, --detach", "start the container in the background and print its id")
    .option("-i, --interactive", "pass stdin to the container")
    .option("-t, --tty", "give the container a terminal")
    .option("--name <id>", "container id (default: a generated name)")
    .option("--rootfs <dir>", "root filesystem directory (default: a busybox rootfs built on first use)")
    .option("-e, --env <K=V>", "set an environment variable (repeatable)", collect)
    .option("-w, --workdir <dir>", "working directory inside the container")
    .option("-u, --user <uid[:gid]>", "user (and group) to run as, ids or names from the rootfs")
    .option("--runtime <name>", "runtime: runc, io.containerd.runtime.v1.linux, a configured name, or a shim")
    .option("-m, --memory <size>", "memory limit, e.g. 64m or 1g")
    .option("--cpus <n>", "CPU limit, e.g. 0.5")
    .option("--pids-limit <n>", "maximum number of processes")
    .option("--memory-swap <size>", "memory plus swap (-1: unlimited swap); default twice --memory")
    .option("--memory-reservation <size>", "soft memory limit")
    .option("--cpuset-cpus <list>", "CPUs the container may use, e.g. 0-1")
    .option("--cpu-shares <n>", "relative CPU weight (2-262144)")
    .option("--blkio-weight <n>", "relative block IO weight (10-1000)")
    .option("--init", "run tini as PID 1: signals reach the command, zombies are reaped")
    .option("--read-only", "mount the root filesystem read-only")
    .option("--cgroup-parent <path>", "cgroup to put the container's cgroup under (default: /NAMESPACE)")
    .option("--privileged", "every capability and host device, no masked paths")
    .option("--cap-add <cap>", "add a capability, e.g. NET_ADMIN, or ALL (repeatable)", collect)
    .option("--cap-drop <cap>", "drop a capability, or ALL (repeatable)", collect)
    .option("--device <host[:container][:rwm]>", "give the container a host device (repeatable)", collect)
    .option(
      "--device-cgroup-rule <rule>",
      "allow devices by number, e.g. 'c 10:200 rwm' (repeatable)",
      collect,
    )
    .option("--ulimit <name=soft[:hard]>", "a process limit, e.g. nofile=1024:2048 (repeatable)", collect)
    .option("--shm-size <size>", "size of /dev/shm (default 64m)")
    .option(
      "--sysctl <name=value>",
      "a namespaced kernel parameter, e.g. net.ipv4.ip_forward=1 (repeatable)",
      collect,
    )
    .option(
      "--security-opt <opt>",
      "no-new-privileges[:true|false], systempaths=unconfined (repeatable)",
      collect,
    )
    .option("--pid <mode>", "host: share the host's PID namespace")
    .option("--ipc <mode>", "host: share the host's IPC namespace and /dev/shm; none: no /dev/shm")
    .option("--uts <mode>", "host: share the host's hostname")
    .option(
      "--group-add <group>",
      "an additional group, by id (or name, with --rootfs) (repeatable)",
      collect,
    )
    .option("--oom-score-adj <n>", "the OOM killer's preference, -1000 to 1000")
    .option(
      "--stop-timeout <seconds>",
      "after Ctrl-C, how long the container has to stop before SIGKILL",
      "3",
    )
    .option("--log-driver <driver>", "json-file (the default; none with --rm) or none")
    .option("--log-opt <k=v>", "json-file options: max-size=10m, max-file=3 (repeatable)", collect)
    .option("--network <name>", `none, host, or a network's name (default: ${defaultRunNetwork()})`)
    .option(
      "-p, --publish <[ip:][hostPort:]port[/proto]>",
      "publish a container port on the host (repeatable)",
      collect,
    )
    .option("--dns <ip>", "nameserver for the container's resolv.conf (repeatable)", collect)
    .option(
      "--add-host <name:ip>",
      "a line for the container's /etc/hosts; host-gateway for the default network's gateway (repeatable)",
      collect,
    )
    .option("--pull <policy>", "pull the image: missing (default), always, never")
    .option("--platform <os/arch[/variant]>", "platform of the image to pull (default: this host's)")
    .option("--plain-http", "talk plain HTTP to the image's registry (default for localhost and 127.0.0.1)")
    .option("--ca-file <file>", "PEM CA certificate(s) to trust for the registry's TLS")
    .passThroughOptions();
  addGlobalOptions(command).action(async (args: string[], flags: RunFlags, self: Command) => {
    const image =
      flags.rootfs === undefined && !commandAfterDoubleDash(self, process.argv) ? args[0] : undefined;
    process.exitCode = await runContainer(
      resolveSettings(globalFlags(self)),
      image === undefined ? args : args.slice(1),
      flags,
      image,
    );
  });
}

function checkRootfs(dir: string): string {
  const path = resolve(dir);
  if (!existsSync(path)) throw new CliError(`rootfs ${path} does not exist`, "not_found");
  if (!statSync(path).isDirectory())
    throw new CliError(`rootfs ${path} is not a directory`, "invalid_argument");
  return path;
}

function stopTimeoutMs(value: string | undefined): number {
  const seconds = Number(value ?? "3");
  if (!Number.isFinite(seconds) || seconds < 0)
    throw usageError(`invalid --stop-timeout ${JSON.stringify(value)}`);
  return seconds * 1000;
}

/**
 * `ctrd run [options] -- CMD…`: nothing but options before `--`, so the command runs on the default
 * rootfs; otherwise the first operand is an image. Read from the raw arguments: commander drops `--`.
 */
function commandAfterDoubleDash(command: Command, argv: readonly string[]): boolean {
  const start = argv.indexOf(command.name());
  if (start < 0) return false;
  const takesValue = new Map<string, boolean>();
  for (const option of [...command.options, ...(command.parent?.options ?? [])]) {
    for (const flag of [option.long, option.short])
      if (flag) takesValue.set(flag, option.required || option.optional);
  }
  for (let i = start + 1; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") return true;
    if (!arg.startsWith("-") || arg === "-") return false;
    if (!arg.includes("=") && takesValue.get(arg)) i++;
  }
  return false;
}

/** Everything checkable without containerd is checked first, so a typo costs nothing. */
function containerFlags(
  settings: GlobalSettings,
  args: string[],
  flags: RunFlags,
  image: string | undefined,
): ContainerFlags {
  if (args.length === 0 && image === undefined)
    throw usageError(
      "ctrd run needs an image or a command: ctrd run [OPTIONS] IMAGE [CMD…] | -- CMD [ARGS...]",
    );
  if (flags.pull !== undefined && !["missing", "always", "never"].includes(flags.pull))
    throw usageError(`invalid --pull ${JSON.stringify(flags.pull)}: want missing, always or never`);
  // As docker refuses it: a terminal on piped input (the input's end hangs it up; what the container
  // writes comes back echoed and with CRLFs). -i alone pipes.
  if (flags.interactive && flags.tty && !flags.detach && !process.stdin.isTTY)
    throw usageError("the input device is not a TTY: use -i without -t for piped input");
  if (flags.rm && flags.detach) {
    throw usageError("--rm and --detach together need a daemon to remove the container later; ctrd has none");
  }
  const env = parseEnv(flags.env ?? []);
  const resources = resourcesFromFlags(flags);
  // An image's rootfs is its snapshot, mounted at the bundle's `rootfs`.
  const rootfs =
    image !== undefined
      ? "rootfs"
      : flags.rootfs !== undefined
        ? checkRootfs(flags.rootfs)
        : ensureDefaultRootfs(settings.stateDir);
  const container: ContainerFlags = {
    args,
    rootfs,
    id: flags.name ?? generateName(),
    namespace: settings.namespace,
    env,
    tty: flags.tty ?? false,
  };
  if (flags.workdir !== undefined) container.workdir = flags.workdir;
  if (flags.cgroupParent !== undefined) container.cgroupParent = flags.cgroupParent;
  if (flags.user !== undefined && image === undefined) container.user = parseUser(flags.user, rootfs);
  if (resources) container.resources = resources;
  if (flags.init) container.init = true;
  if (flags.readOnly) container.readonlyRootfs = true;
  if (flags.logDriver === "none") container.noLog = true;
  const runOptions = runOptionsFromFlags(flags, image === undefined ? rootfs : undefined);
  if (runOptions) container.runOptions = runOptions;
  return container;
}

export async function runContainer(
  settings: GlobalSettings,
  args: string[],
  flags: RunFlags,
  image?: string,
): Promise<number> {
  const spec = containerFlags(settings, args, flags, image);
  const graceMs = stopTimeoutMs(flags.stopTimeout);
  const log = runLog(settings, spec.id, flags);
  const ports = parsePublish(flags.publish ?? []);
  const extraHosts = parseAddHosts(flags.addHost ?? []);
  return withClient(settings, async (client) => {
    const relay = new SignalRelay();
    try {
      const network = await runNetwork(settings, client, spec.id, flags, ports, extraHosts);
      // `done` when --rm has removed the container and detached its network: nothing is left to check;
      // `created` once a container of that id may be this run's.
      const removed = { done: false, created: false };
      try {
        let fromImage: Awaited<ReturnType<typeof imageRootfs>> | undefined;
        try {
          fromImage = image === undefined ? undefined : await imageRootfs(client, image, spec, flags, relay);
        } catch (err) {
          // Ctrl-C (or a forwarded signal) during the pull: it stopped, and so does ctrd.
          if (relay.stopRequested && isErrorCode(err, "canceled")) return relay.stoppedExitCode;
          throw err;
        }
        return await createAndRun(
          client,
          spec,
          fromImage,
          { ...network, removed },
          flags,
          graceMs,
          relay,
          settings.logger,
          log,
        );
      } finally {
        // The network goes with the container: after a failure, or a container never created.
        if (!removed.done) {
          const exists =
            removed.created &&
            (await client.loadContainer(spec.id).then(
              () => true,
              (err: unknown) => !isErrorCode(err, "not_found"),
            ));
          if (!exists) await network.detach();
        }
      }
    } finally {
      relay.stop();
    }
  });
}

type RunNetwork = PendingAttachment & { detach(): Promise<void> };

/**
 * The container's network, being set up. `--network none` (no ports, no DNS servers) needs nothing of
 * the network module: no record, no lock, no files, and no GC of what crashed ctrds left (the next
 * run with a network collects it), so the module is loaded only for a container that has a network.
 */
async function runNetwork(
  settings: GlobalSettings,
  client: LibcontainerdClient,
  containerId: string,
  flags: RunFlags,
  ports: PortRequest[],
  extraHosts: HostsEntry[],
): Promise<RunNetwork> {
  const network = flags.network ?? defaultRunNetwork();
  const dns = flags.dns ?? [];
  if (network === NO_NETWORK && ports.length === 0 && dns.length === 0 && extraHosts.length === 0)
    return { ...isolatedAttachment(settings.namespace, containerId), detach: () => Promise.resolve() };
  // containerd first: a network set up for a container that cannot be created would stay until a GC.
  await client.version();
  const { collectNetworkGarbage, networkManager } = await import("./network-manager.js");
  const manager = networkManager(settings);
  await collectNetworkGarbage(manager, client, settings);
  const pending = await manager.prepare({
    namespace: settings.namespace,
    containerId,
    network,
    ports,
    dns,
    extraHosts,
  });
  return { ...pending, detach: () => manager.detach(settings.namespace, containerId) };
}

/**
 * Pulls the image if the policy says so, takes its process (the command given replaces its Cmd,
 * -e adds to its Env, -w and -u replace its WorkingDir and User) and prepares its snapshot.
 */
async function imageRootfs(
  client: LibcontainerdClient,
  image: string,
  spec: ContainerFlags,
  flags: RunFlags,
  relay: SignalRelay,
): Promise<{ image: string; snapshot: { snapshotter: string; key: string } }> {
  const policy = flags.pull ?? "missing";
  const registry = {
    plainHttp: flags.plainHttp,
    caFile: flags.caFile,
    platform: flags.platform,
    signal: relay.stopSignal,
  };
  // Loaded here: a run on a rootfs dir needs nothing of images, pulls or registries.
  const { pullWithProgress } = await import("./images.js");
  let name: string;
  if (policy === "always") name = (await pullWithProgress(client, image, registry)).name;
  else {
    try {
      name = (await client.images.get(image)).name;
    } catch (err) {
      if (!isErrorCode(err, "not_found") || policy === "never") throw err;
      process.stderr.write(`Unable to find image '${image}' locally\n`);
      name = (await pullWithProgress(client, image, registry)).name;
    }
  }
  const platform = flags.platform !== undefined ? { platform: flags.platform } : {};
  const processOf = await client.images.process(
    name,
    {
      ...(spec.args.length > 0 ? { args: spec.args } : {}),
      env: spec.env,
      ...(spec.workdir !== undefined ? { cwd: spec.workdir } : {}),
      ...(flags.user !== undefined ? { user: flags.user } : {}),
    },
    platform,
  );
  spec.args = processOf.args;
  spec.env = processOf.env;
  spec.workdir = processOf.cwd;
  spec.user = processOf.user;
  const snapshot = await client.images.prepareSnapshot(name, spec.id, platform);
  return { image: name, snapshot: { snapshotter: snapshot.snapshotter, key: snapshot.key } };
}

async function createAndRun(
  client: LibcontainerdClient,
  flags: ContainerFlags,
  fromImage: { image: string; snapshot: { snapshotter: string; key: string } } | undefined,
  network: RunNetwork & { removed: { done: boolean; created: boolean } },
  runFlags: RunFlags,
  graceMs: number,
  relay: SignalRelay,
  logger: Logger,
  log: LogOptions | undefined,
): Promise<number> {
  const detach = runFlags.detach ?? false;
  const { spec, labels } = withNetwork(containerSpec(flags), containerLabels(flags), network.attachment);
  // A foreground run's output passes through ctrd, which keeps it too: the log is recorded on the
  // container at its creation (a `run -d` task's is when the task is created, by the library).
  if (!detach && log) Object.assign(labels, recordedLogLabels(log));
  // Ours from here on, unless the id is taken: then it is another container's, with its own network.
  network.removed.created = true;
  const container = await client
    .newContainer(flags.id, spec, {
      labels,
      ...(runFlags.runtime !== undefined ? { runtime: runFlags.runtime } : {}),
      ...fromImage,
    })
    .catch(async (err: unknown) => {
      if (!isErrorCode(err, "already_exists")) throw err;
      network.removed.created = false;
      // A taken id keeps the snapshot named by it (it could be that container's); this one we made.
      if (fromImage)
        await client.images.removeSnapshot(fromImage.snapshot.snapshotter, fromImage.snapshot.key);
      throw err;
    });
  let task: Task | undefined;
  let attachment: Attachment | undefined;
  let logging: Promise<LocalLogger | undefined> | undefined;
  // The log's writer ends (and writes what it holds) before the container, and its log, can go.
  const closeLog = async (): Promise<void> => {
    await (await logging?.catch(() => undefined))?.close();
  };
  try {
    if (relay.stopRequested) return await abandon(container, task, relay);
    const keptLog = log && (await logKept(container, runFlags, logger));
    if (!detach && log && !keptLog) await container.setLabels(forgottenLogLabels());
    const stdio = detach
      ? { ...(keptLog ? { log } : {}) }
      : { stdin: runFlags.interactive ?? false, stdout: true, stderr: true, terminal: flags.tty };
    // Its process starts while containerd creates the task.
    if (!detach && log && keptLog) logging = foregroundLogger(log, flags);
    logging?.catch(() => {});
    try {
      task = await container.newTask({ stdio });
    } catch (err) {
      throw launchFailure(err, flags.args);
    }
    const localLog = await logging;
    const exited = task.wait();
    // A wait that fails is reported below; this keeps it from being an unhandled rejection meanwhile.
    exited.catch(() => {});
    if (!detach) {
      attachment = new Attachment(task, {
        stdin: runFlags.interactive ?? false,
        tty: flags.tty,
        logger,
        // Nobody reads the output any more (`ctrd run … | head`): stop the container as Ctrl-C would.
        onOutputGone: () => relay.interrupt(),
        ...(localLog ? { log: localLog } : {}),
      });
      attachment.wireOutput();
      await attachment.sizeTerminal();
    }
    // The CNI plugins ran while containerd created the container and its task; they finish first.
    await network.ready;
    if (relay.stopRequested) {
      attachment?.detach();
      await closeLog();
      return await abandon(container, task, relay);
    }
    try {
      await task.start();
    } catch (err) {
      throw launchFailure(err, flags.args);
    }
    if (detach) {
      process.stdout.write(`${flags.id}\n`);
      return ExitCode.ok;
    }
    attachment?.wireInput();
    const stopper = new Stopper(task, graceMs, logger);
    relay.attach(stopper);
    const status = await exited;
    stopper.done();
    await attachment?.drain();
    attachment?.detach();
    await closeLog();
    const removing = runFlags.rm || relay.interrupts > 0;
    // The network's DEL runs while containerd deletes the task and the container.
    const networkGone = removing ? network.detach() : undefined;
    networkGone?.catch(() => {});
    await deleteExited(container, task);
    // Removed by someone else meanwhile (ctrd rm -f): what --rm wanted.
    if (removing) await container.delete().catch(ignoreNotFound);
    await networkGone;
    if (removing) network.removed.done = true;
    if (attachment?.outputGone) return ExitCode.brokenPipe;
    return relay.interrupts > 0 ? ExitCode.interrupted : status.exitCode;
  } catch (err) {
    attachment?.detach();
    await closeLog();
    await removeQuietly(container, task, logger);
    throw err;
  }
}

/** The log's labels with a value (a foreground run records them on the new container). */
function recordedLogLabels(log: LogOptions): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(logLabels(log))) if (value !== undefined) labels[key] = value;
  return labels;
}

/** Removes the log's labels: a foreground run whose log cannot be kept (see logKept). */
function forgottenLogLabels(): Record<string, undefined> {
  return Object.fromEntries(
    [LOG_LABELS.path, LOG_LABELS.maxSize, LOG_LABELS.maxFiles].map((key) => [key, undefined]),
  );
}

/** The logger a foreground run feeds; loaded only then (not for --rm, whose log would go with it). */
async function foregroundLogger(log: LogOptions, flags: ContainerFlags): Promise<LocalLogger> {
  const { startLocalLogger } = await import("../logs/local-logger.js");
  return startLocalLogger(log, { namespace: flags.namespace, containerId: flags.id });
}

/**
 * A container's output goes to a log that outlives ctrd (unless --log-driver none): a detached one's
 * through the shim's logger, a foreground one's through ctrd's (see createAndRun). Not with --rm: the
 * log would go with the container, as docker's does, so nothing is written for nobody.
 */
function runLog(settings: GlobalSettings, id: string, flags: RunFlags): LogOptions | undefined {
  const driver = flags.logDriver ?? "json-file";
  if (driver !== "json-file" && driver !== "none")
    throw usageError(`invalid --log-driver ${JSON.stringify(driver)}: json-file or none`);
  const options = parseLogOpts(flags.logOpt ?? []);
  if (flags.rm || driver === "none") return undefined;
  return { path: containerLogPath(settings, id), ...options };
}

/**
 * Whether a detached container's default log can be kept: the v1 shim (io.containerd.runtime.v1.linux)
 * cannot run a log driver, so there the default becomes "none", with a warning; a log asked for
 * explicitly (--log-driver json-file) is still refused by the library.
 */
async function logKept(container: Container, flags: RunFlags, logger: Logger): Promise<boolean> {
  if (flags.logDriver !== undefined && flags.detach) return true;
  if ((await container.info()).runtime.name !== RUNC_V1_SHIM) return true;
  // A foreground run's log ctrd could write, but a later `start` would need the shim's logger.
  if (flags.detach || flags.logDriver !== undefined)
    logger.warn(
      `the ${RUNC_V1_SHIM} runtime cannot keep a log: the container's output is ${flags.detach ? "discarded" : "not kept"}`,
    );
  return false;
}

/** A stop was asked for before the process ran: remove what exists and report how ctrd was stopped. */
async function abandon(container: Container, task: Task | undefined, relay: SignalRelay): Promise<number> {
  if (task) await task.forceDelete();
  await container.delete();
  return relay.stoppedExitCode;
}

function ignoreNotFound(err: unknown): void {
  if (!isErrorCode(err, "not_found")) throw err;
}

async function removeQuietly(container: Container, task: Task | undefined, logger: Logger): Promise<void> {
  try {
    if (task) await task.forceDelete();
    await container.delete();
  } catch (err) {
    logger.warn({ err, container: container.id }, "could not remove the container after a failure");
  }
}

/**
 * Ctrl-C stops the container: SIGTERM, then SIGKILL after the grace period or at a second Ctrl-C.
 * Other signals are passed on as they are, and the container decides what they mean.
 */
class Stopper {
  private killTimer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly task: Task,
    private readonly graceMs: number,
    private readonly logger: Logger,
  ) {}

  interrupt(count: number): void {
    if (this.finished) return;
    if (count === 1) {
      if (process.stderr.isTTY)
        process.stderr.write(`\nctrd: stopping ${this.task.containerId} (Ctrl-C again to kill it)\n`);
      this.send("SIGTERM");
      this.killTimer = setTimeout(() => this.send("SIGKILL"), this.graceMs);
    } else {
      this.send("SIGKILL");
    }
  }

  forward(signal: NodeJS.Signals): void {
    if (!this.finished) this.send(signal);
  }

  done(): void {
    this.finished = true;
    clearTimeout(this.killTimer);
  }

  private send(signal: NodeJS.Signals): void {
    this.task.kill(signal).catch((err: unknown) => {
      // The process may have exited in between; that is the outcome the signal wanted.
      if (!isErrorCode(err, "not_found")) this.logger.warn({ err, signal }, "could not signal the container");
    });
  }
}
