#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerDaemon } from "./daemon.js";
import { CliError, ExitCode, exitCodeFor, formatError } from "./errors.js";
import { registerEvents } from "./events.js";
import { registerExec } from "./exec.js";
import { registerImageCommands } from "./images.js";
import { registerInfo } from "./info.js";
import { registerInspect } from "./inspect.js";
import { registerKill } from "./kill.js";
import { registerLogs } from "./logs.js";
import { registerNetwork, registerPort } from "./network.js";
import { addGlobalOptions } from "./options.js";
import { handleBrokenPipes } from "./output.js";
import { registerPause } from "./pause.js";
import { registerPs } from "./ps.js";
import { registerRestart } from "./restart.js";
import { registerRm } from "./rm.js";
import { registerRun } from "./run.js";
import { registerServe } from "./serve.js";
import { registerStart } from "./start.js";
import { registerStats } from "./stats.js";
import { registerStop } from "./stop.js";
import { registerWait } from "./wait.js";

function packageVersion(): string {
  try {
    const manifest: unknown = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    );
    const version =
      typeof manifest === "object" && manifest !== null ? Reflect.get(manifest, "version") : undefined;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

function buildProgram(): Command {
  const program = new Command("ctrd")
    .version(packageVersion(), "-v, --version", "print ctrd's version")
    .description("Run containers through containerd (or Windows HCS), with a managed containerd by default")
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    // Commander's own error lines are replaced by ctrd's one-line format in main().
    .configureOutput({ outputError: () => {} });
  addGlobalOptions(program);
  registerRun(program);
  registerImageCommands(program);
  registerExec(program);
  registerPs(program);
  registerKill(program);
  registerRm(program);
  registerPause(program);
  registerStats(program);
  registerEvents(program);
  registerInfo(program);
  registerLogs(program);
  registerStart(program);
  registerStop(program);
  registerRestart(program);
  registerWait(program);
  registerInspect(program);
  registerDaemon(program);
  registerNetwork(program);
  registerPort(program);
  registerServe(program);
  return program;
}

function usageFailure(err: CommanderError, argv: readonly string[], program: Command): CliError {
  const message = err.message.replace(/^error:\s*/i, "");
  const names = new Set(program.commands.map((command) => command.name()));
  const sub = argv.find((arg) => names.has(arg));
  const help = sub ? `ctrd ${sub} --help` : "ctrd --help";
  return new CliError(`${message}; see '${help}'`, "invalid_argument", ExitCode.ctrdFailure, { cause: err });
}

async function main(argv: string[]): Promise<number> {
  handleBrokenPipes();
  const program = buildProgram();
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

// Explicit exit: open gRPC sessions and timers must not keep a finished command alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${formatError(err)}\n`);
    process.exit(ExitCode.ctrdFailure);
  },
);
