import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorCode, errorFor, LibcontainerdError } from "../types/errors.js";

const byGrpcCode: Partial<Record<Code, ErrorCode>> = {
  // Our own cancellations are recognised by their AbortSignal before this map is consulted; a
  // Canceled that reaches it is connect's reading of an HTTP/2 stream reset: containerd went away.
  [Code.Canceled]: "unavailable",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Unimplemented]: "not_implemented",
  [Code.Unavailable]: "unavailable",
  [Code.OutOfRange]: "invalid_argument",
};

const CONNECTION_ERRNOS = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "ECONNRESET",
  "EPIPE",
  "ENOTSOCK",
  "ECONNABORTED",
]);

function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("E")) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The runtime's (runc's) own failures reach us as gRPC Unknown with the message text; the
 * ones callers act on (the command does not exist, or may not be executed) get their kind back.
 */
function kindFromRuntimeMessage(message: string): ErrorCode | undefined {
  // containerd's errdefs kinds survive the shim's ttrpc hop only as text at the end of the message.
  const errdefs = /: (not found|already exists|failed precondition|invalid argument|not implemented)$/.exec(
    message,
  )?.[1];
  if (errdefs) return errdefs.replace(" ", "_") as ErrorCode;
  if (/executable file not found|no such file or directory/i.test(message)) return "not_found";
  if (/permission denied/i.test(message)) return "failed_precondition";
  if (/no such process|process already finished/i.test(message)) return "not_found";
  // The shim's process state machine (containerd pkg/process/*_state.go): "cannot start a running
  // process", "cannot pause task in created state", "cannot exec in a stopped state", …
  if (
    /\bcannot (start|pause|resume|delete|update|checkpoint|exec|kill)\b.*\b(running|stopped|paused|created|deleted)\b/i.test(
      message,
    ) ||
    /in a (stopped|created|paused) state|not running|is paused|already (started|running|paused)|invalid state transition/i.test(
      message,
    )
  ) {
    return "failed_precondition";
  }
  return undefined;
}

/**
 * Turns anything a containerd call threw into a typed error whose message names the operation
 * and the object, keeping the gRPC code and the original error as the cause.
 */
export function toTypedError(err: unknown, what: string): LibcontainerdError {
  if (err instanceof LibcontainerdError) return err;
  if (err instanceof ConnectError) {
    const errno = errnoOf(err);
    const code: ErrorCode =
      errno && CONNECTION_ERRNOS.has(errno)
        ? "unavailable"
        : (byGrpcCode[err.code] ?? kindFromRuntimeMessage(err.rawMessage) ?? "internal");
    const detail = err.rawMessage || errno || Code[err.code];
    return errorFor(code, `${what}: ${detail}`, {
      cause: err,
      origin: { backend: "containerd", grpcCode: err.code },
    });
  }
  const errno = errnoOf(err);
  if (errno && CONNECTION_ERRNOS.has(errno)) {
    return errorFor("unavailable", `${what}: containerd is not reachable (${errno})`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return errorFor("internal", `${what}: ${message}`, { cause: err });
}

/** Errnos of a connection that was never made: the request cannot have reached containerd. */
const NEVER_CONNECTED_ERRNOS = new Set(["ECONNREFUSED", "ENOENT", "ENOTSOCK"]);

/**
 * Whether a failed call may have been received (and acted on) by containerd before it went away:
 * true for a connection lost mid-call, false when there was no connection to begin with. Cleanups
 * of half-done work run only in the first case, so a call made while containerd is down still
 * fails at once.
 */
export function mayHaveReachedContainerd(err: unknown): boolean {
  const errno = errnoOf(err);
  return !(errno && NEVER_CONNECTED_ERRNOS.has(errno));
}
