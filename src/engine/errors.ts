import { LibcontainerdError } from "../libcontainerd/types/errors.js";

/**
 * An error with the HTTP status Docker gives it. The body is always `{"message": …}`, as dockerd
 * writes it (api/server/httputils.MakeErrorHandler), so every client shows the message as is.
 */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "EngineError";
  }
}

export const badRequest = (message: string): EngineError => new EngineError(400, message);
export const notFound = (message: string): EngineError => new EngineError(404, message);
export const conflict = (message: string): EngineError => new EngineError(409, message);
export const notModified = (): EngineError => new EngineError(304, "");

const STATUS_FOR_CODE: Record<string, number> = {
  not_found: 404,
  already_exists: 409,
  invalid_argument: 400,
  unauthenticated: 401,
  failed_precondition: 409,
  unavailable: 503,
  not_implemented: 501,
  deadline_exceeded: 504,
  canceled: 499,
  internal: 500,
};

/** The status and message a client sees for any error thrown by a handler. */
export function toHttpError(err: unknown): { status: number; message: string } {
  if (err instanceof EngineError) return { status: err.status, message: err.message };
  if (err instanceof LibcontainerdError)
    return { status: STATUS_FOR_CODE[err.code] ?? 500, message: err.message };
  return { status: 500, message: err instanceof Error ? err.message : String(err) };
}
