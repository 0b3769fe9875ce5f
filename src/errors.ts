/**
 * Typed errors shared by every backend. Callers branch on `code` (or `instanceof`); what the
 * backend itself said stays attached as `cause`, and where it came from as `origin`.
 */

export type ErrorCode =
  | "not_found"
  | "already_exists"
  | "invalid_argument"
  | "failed_precondition"
  | "unavailable"
  | "not_implemented"
  | "deadline_exceeded"
  | "canceled"
  | "unauthenticated"
  | "data_loss"
  | "internal";

/** The backend's own words for an error: containerd's gRPC status code, or HCS's HRESULT. */
export type ErrorOrigin =
  | { backend: "containerd"; grpcCode: number }
  | { backend: "hcs"; hresult: number; hresultName: string };

export interface ErrorDetails {
  cause?: unknown;
  origin?: ErrorOrigin;
}

export class LibcontainerdError extends Error {
  readonly code: ErrorCode = "internal";
  /** Where the error came from, when a backend reported it. */
  readonly origin?: ErrorOrigin;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    if (details.origin !== undefined) this.origin = details.origin;
  }
}

export class NotFoundError extends LibcontainerdError {
  override readonly code = "not_found";
}
export class AlreadyExistsError extends LibcontainerdError {
  override readonly code = "already_exists";
}
export class InvalidArgumentError extends LibcontainerdError {
  override readonly code = "invalid_argument";
}
export class FailedPreconditionError extends LibcontainerdError {
  override readonly code = "failed_precondition";
}
export class UnavailableError extends LibcontainerdError {
  override readonly code = "unavailable";
}
export class NotImplementedError extends LibcontainerdError {
  override readonly code = "not_implemented";
}
export class DeadlineExceededError extends LibcontainerdError {
  override readonly code = "deadline_exceeded";
}
export class CanceledError extends LibcontainerdError {
  override readonly code = "canceled";
}
/** A registry refused the credentials (or asked for some and none were given). */
export class UnauthenticatedError extends LibcontainerdError {
  override readonly code = "unauthenticated";
}
/** Bytes that do not match their digest or size: a tampered or truncated blob. */
export class DataLossError extends LibcontainerdError {
  override readonly code = "data_loss";
}
/** Anything the backend reported that fits no other kind. */
export class InternalError extends LibcontainerdError {
  override readonly code = "internal";
}

const byCode = {
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  invalid_argument: InvalidArgumentError,
  failed_precondition: FailedPreconditionError,
  unavailable: UnavailableError,
  not_implemented: NotImplementedError,
  deadline_exceeded: DeadlineExceededError,
  canceled: CanceledError,
  unauthenticated: UnauthenticatedError,
  data_loss: DataLossError,
  internal: InternalError,
} satisfies Record<ErrorCode, typeof LibcontainerdError>;

export function errorFor(code: ErrorCode, message: string, details?: ErrorDetails): LibcontainerdError {
  return new byCode[code](message, details);
}

export function isErrorCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof LibcontainerdError && err.code === code;
}
