#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerDaemon } from "./daemon.js";
import { CliError, ExitCode, exitCodeFor, formatError } from "./errors.js";
import { registerEvents } from "./events.js";
import { registerExec } from "./exec.js";
import { registerInfo } from "./info.js";
import { registerKill } from "./kill.js";
import { addGlobalOptions } from "./options.js";
import { registerPause } from "./pause.js";
import { registerPs } from "./ps.js";
import { registerRm } from "./rm.js";
import { registerRun } from "./run.js";
import { registerStats } from "./stats.js";

export function buildProgram(): Command {
  const program = new Command("ctrd")
    .description("Run containers through containerd (or Windows HCS), with a managed containerd by default")
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    // Commander's own error lines are replaced by ctrd's one-line format in main().
    .configureOutput({ outputError: () => {} });
  addGlobalOptions(program);
  registerRun(program);
  registerExec(program);
  registerPs(program);
  registerKill(program);
  registerRm(program);
  registerPause(program);
  registerStats(program);
  registerEvents(program);
  registerInfo(program);
  registerDaemon(program);
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
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (err) {
    const failure =
      err instanceof CommanderError
        ? err.exitCode === 0
          ? undefined
          : usageFailure(err, argv, program)
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
