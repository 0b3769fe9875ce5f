// ctrd's command line: global options, the commands the arguments name, and one-line errors.
import { Command, CommanderError } from "commander";
import { CliError, ExitCode, exitCodeFor, formatError } from "./errors.js";
import { addGlobalOptions } from "./options.js";
import { handleBrokenPipes } from "./output.js";
import { packageVersion } from "./version.js";

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when the command line names it: `ctrd ps` need not load
 * images, networking or the log reader, and `ctrd --version` loads none (start-up time is most of
 * a short command's cost). A module that registers several commands is listed under each name.
 */
const COMMANDS: Record<string, () => Promise<Register[]>> = {
  run: async () => [(await import("./run.js")).registerRun],
  exec: async () => [(await import("./exec.js")).registerExec],
  ps: async () => [(await import("./ps.js")).registerPs],
  kill: async () => [(await import("./kill.js")).registerKill],
  rm: async () => [(await import("./rm.js")).registerRm],
  pause: async () => [(await import("./pause.js")).registerPause],
  resume: async () => [(await import("./pause.js")).registerPause],
  unpause: async () => [(await import("./pause.js")).registerPause],
  stats: async () => [(await import("./stats.js")).registerStats],
  events: async () => [(await import("./events.js")).registerEvents],
  info: async () => [(await import("./info.js")).registerInfo],
  logs: async () => [(await import("./logs.js")).registerLogs],
  start: async () => [(await import("./start.js")).registerStart],
  stop: async () => [(await import("./stop.js")).registerStop],
  restart: async () => [(await import("./restart.js")).registerRestart],
  wait: async () => [(await import("./wait.js")).registerWait],
  inspect: async () => [(await import("./inspect.js")).registerInspect],
  daemon: async () => [(await import("./daemon.js")).registerDaemon],
  network: async () => [(await import("./network.js")).registerNetwork],
  port: async () => [(await import("./network.js")).registerPort],
  serve: async () => [(await import("./serve.js")).registerServe],
  ...Object.fromEntries(
    ["pull", "push", "images", "image-ls", "rmi", "tag", "import", "save", "commit"].map((name) => [
      name,
      async () => [(await import("./images.js")).registerImageCommands],
    ]),
  ),
};

/**
 * The registrations the command line needs: those of every word that names a command (a global
 * option's value that happens to be a command name only loads one module more), or all of them
 * when none does (help, or an unknown command, whose error lists what exists).
 */
async function registrations(argv: readonly string[]): Promise<Register[]> {
  const named = argv.filter((arg) => Object.hasOwn(COMMANDS, arg));
  const loaders = named.length > 0 ? named.map((name) => COMMANDS[name]!) : Object.values(COMMANDS);
  const unique = [...new Set(loaders)];
  // A command name listed twice (pause/resume, the image commands) loads its module once.
  return [...new Set((await Promise.all(unique.map((load) => load()))).flat())];
}

/** The command the arguments name, if any: what the code cache notes as covered (see code-cache.ts). */
export function commandNamed(argv: readonly string[]): string | undefined {
  return argv.find((arg) => Object.hasOwn(COMMANDS, arg));
}

function buildProgram(commands: readonly Register[]): Command {
  const program = new Command("ctrd")
    .version(packageVersion(), "-v, --version", "print ctrd's version")
    .description("Run containers through containerd (or Windows HCS), with a managed containerd by default")
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    // Commander's own error lines are replaced by ctrd's one-line format in main().
    .configureOutput({ outputError: () => {} });
  addGlobalOptions(program);
  for (const register of commands) register(program);
  return program;
}

function usageFailure(err: CommanderError, argv: readonly string[], program: Command): CliError {
  const message = err.message.replace(/^error:\s*/i, "");
  const names = new Set(program.commands.map((command) => command.name()));
  const sub = argv.find((arg) => names.has(arg));
  const help = sub ? `ctrd ${sub} --help` : "ctrd --help";
  return new CliError(`${message}; see '${help}'`, "invalid_argument", ExitCode.ctrdFailure, { cause: err });
}

export async function main(argv: string[]): Promise<number> {
  handleBrokenPipes();
  const program = buildProgram(await registrations(argv));
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (err) {
    // Help asked for, or shown because no command was given, is not a failure (as with docker).
    const helpOrVersion =
      err instanceof CommanderError && (err.exitCode === 0 || err.code === "commander.help");
    const failure = helpOrVersion
      ? undefined
      : err instanceof CommanderError
        ? usageFailure(err, argv, program)
        : err;
    if (failure === undefined) return ExitCode.ok;
    process.stderr.write(`${formatError(failure)}\n`);
    return exitCodeFor(failure);
  }
}

/**
 * Evaluates the modules a command may load (every command's, or only those of the commands named,
 * the remote client, the managed containerd's supervisor) and builds the command line, running
 * nothing: the build runs it before it saves V8's code cache of the bundle, so that the cache holds
 * their compiled code. bench/startup-snapshot.ts names `run` and `ps`: Node 20 cannot load node:http
 * (the image and Engine API commands) while it builds a startup snapshot.
 */
export async function warmUp(commands: readonly string[] = []): Promise<void> {
  buildProgram(await registrations(commands));
  await Promise.all([
    import("../libcontainerd/remote/client.js"),
    import("../libcontainerd/supervisor/supervisor.js"),
  ]);
}

/** Runs ctrd and exits with its status: open gRPC sessions and timers must not keep a finished command alive. */
export function runAndExit(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${formatError(err)}\n`);
      process.exit(ExitCode.ctrdFailure);
    },
  );
}
