import { isErrorCode, LibcontainerdError } from "../libcontainerd/types/errors.js";

/** docker's conventions: 125 is the tool's own failure; 126 and 127 are the container command's. */
export const ExitCode = {
  ok: 0,
  ctrdFailure: 125,
  commandCannotRun: 126,
  commandNotFound: 127,
  interrupted: 130,
  /** What a writer killed by SIGPIPE reports: our output's reader went away. */
  brokenPipe: 141,
} as const;

/** A failure ctrd reports as one line and a chosen exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: string = "invalid_argument",
    readonly exitCode: number = ExitCode.ctrdFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CliError";
  }
}

/** A bad flag or argument: the user's mistake, reported like the library's InvalidArgumentError. */
export function usageError(message: string): CliError {
  return new CliError(message, "invalid_argument");
}

/**
 * The typed error from creating, starting or exec'ing a process, turned into docker's statuses:
 * 127 when the executable does not exist, 126 when it cannot be executed, as it was otherwise. Only
 * errors from that step are classified this way; a missing container elsewhere stays ctrd's 125.
 */
export function launchFailure(err: unknown, command: readonly string[]): unknown {
  if (!(err instanceof LibcontainerdError)) return err;
  const executable = command[0] ?? "";
  // runc's words, carried in the typed error's message (the remote backend typed it not_found).
  if (/permission denied/i.test(err.message)) {
    return new CliError(`cannot run ${executable}: permission denied (${err.message})`, err.code, 126, {
      cause: err,
    });
  }
  const executableMissing = /executable file not found|exec: .*no such file or directory/i.test(err.message);
  if (isErrorCode(err, "not_found") && executableMissing) {
    return new CliError(`${executable}: executable file not found (${err.message})`, err.code, 127, {
      cause: err,
    });
  }
  return err;
}

function errorCodeOf(err: unknown): string {
  if (err instanceof CliError) return err.code;
  if (err instanceof LibcontainerdError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "internal";
}

export function exitCodeFor(err: unknown): number {
  return err instanceof CliError ? err.exitCode : ExitCode.ctrdFailure;
}

/** `ctrd: <message> (<code>)`, on one line whatever the message holds. */
export function formatError(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  const message = raw.replace(/\s*\n\s*/g, " | ").trim();
  return `ctrd: ${message} (${errorCodeOf(err)})`;
}
