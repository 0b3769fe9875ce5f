/**
 * HRESULTs of vmcompute.dll and how they map onto the library's typed errors.
 * Values from winerror.h / hcsshim internal/hcs/errors.go (see docs/reference hcs-vmcompute.md §3).
 */
import { type ErrorCode, errorFor, type LibcontainerdError } from "../types/errors.js";

export const S_OK = 0;
export const ERROR_VMCOMPUTE_OPERATION_PENDING = 0xc0370103;
export const ERROR_VMCOMPUTE_INVALID_STATE = 0xc0370105;
export const ERROR_ACCESS_DENIED = 0x80070005;

const HRESULT_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00000000, "S_OK"],
  [0x80004001, "E_NOTIMPL"],
  [0x80004004, "E_ABORT"],
  [0x80004005, "E_FAIL"],
  [0x80070005, "ERROR_ACCESS_DENIED"],
  [0x80070006, "ERROR_INVALID_HANDLE"],
  [0x8007000d, "ERROR_INVALID_DATA"],
  [0x8007000e, "E_OUTOFMEMORY"],
  [0x80070032, "ERROR_NOT_SUPPORTED"],
  [0x80070057, "E_INVALIDARG"],
  [0x8007007f, "ERROR_PROC_NOT_FOUND"],
  [0x800705b4, "ERROR_TIMEOUT"],
  [0x80070490, "ERROR_NOT_FOUND"],
  [0xc0370100, "ERROR_VMCOMPUTE_TERMINATED_DURING_START"],
  [0xc0370101, "ERROR_VMCOMPUTE_IMAGE_MISMATCH"],
  [0xc0370102, "ERROR_VMCOMPUTE_HYPERV_NOT_INSTALLED"],
  [0xc0370103, "ERROR_VMCOMPUTE_OPERATION_PENDING"],
  [0xc0370104, "ERROR_VMCOMPUTE_TOO_MANY_NOTIFICATIONS"],
  [0xc0370105, "ERROR_VMCOMPUTE_INVALID_STATE"],
  [0xc0370106, "ERROR_VMCOMPUTE_UNEXPECTED_EXIT"],
  [0xc0370107, "ERROR_VMCOMPUTE_TERMINATED"],
  [0xc0370108, "ERROR_VMCOMPUTE_CONNECT_FAILED"],
  [0xc0370109, "ERROR_VMCOMPUTE_TIMEOUT"],
  [0xc037010a, "ERROR_VMCOMPUTE_CONNECTION_CLOSED"],
  [0xc037010b, "ERROR_VMCOMPUTE_UNKNOWN_MESSAGE"],
  [0xc037010c, "ERROR_VMCOMPUTE_UNSUPPORTED_PROTOCOL_VERSION"],
  [0xc037010d, "ERROR_VMCOMPUTE_INVALID_JSON"],
  [0xc037010e, "ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND"],
  [0xc037010f, "ERROR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS"],
  [0xc0370110, "ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED"],
  [0xc0370111, "ERROR_VMCOMPUTE_PROTOCOL_ERROR"],
  [0xc0370112, "ERROR_VMCOMPUTE_INVALID_LAYER"],
  [0xc0370113, "ERROR_VMCOMPUTE_WINDOWS_INSIDER_REQUIRED"],
  [0x80370100, "HCS_E_TERMINATED_DURING_START"],
  [0x80370101, "HCS_E_IMAGE_MISMATCH"],
  [0x80370102, "HCS_E_HYPERV_NOT_INSTALLED"],
  [0x80370105, "HCS_E_INVALID_STATE"],
  [0x80370106, "HCS_E_UNEXPECTED_EXIT"],
  [0x80370107, "HCS_E_TERMINATED"],
  [0x80370108, "HCS_E_CONNECT_FAILED"],
  [0x80370109, "HCS_E_CONNECTION_TIMEOUT"],
  [0x8037010a, "HCS_E_CONNECTION_CLOSED"],
  [0x8037010b, "HCS_E_UNKNOWN_MESSAGE"],
  [0x8037010d, "HCS_E_INVALID_JSON"],
  [0x8037010e, "HCS_E_SYSTEM_NOT_FOUND"],
  [0x8037010f, "HCS_E_SYSTEM_ALREADY_EXISTS"],
  [0x80370110, "HCS_E_SYSTEM_ALREADY_STOPPED"],
  [0x80370115, "HCS_E_OPERATION_NOT_STARTED"],
  [0x80370116, "HCS_E_OPERATION_ALREADY_STARTED"],
  [0x80370117, "HCS_E_OPERATION_PENDING"],
  [0x80370118, "HCS_E_OPERATION_TIMEOUT"],
  [0x80370119, "HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET"],
  [0x8037011a, "HCS_E_OPERATION_RESULT_ALLOCATION_FAILED"],
  [0x8037011b, "HCS_E_ACCESS_DENIED"],
  [0x8037011c, "HCS_E_GUEST_CRITICAL_ERROR"],
  [0x8037011d, "HCS_E_PROCESS_INFO_NOT_AVAILABLE"],
  [0x8037011e, "HCS_E_SERVICE_DISCONNECT"],
  [0x8037011f, "HCS_E_PROCESS_ALREADY_STOPPED"],
]);

const HRESULT_CODES: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [0x80004001, "not_implemented"],
  [0x80070032, "not_implemented"],
  [0x8007007f, "not_implemented"],
  [0xc037010b, "not_implemented"],
  [0x8037010b, "not_implemented"],
  [0xc037010c, "not_implemented"],
  [0x80004004, "canceled"],
  [0x80070490, "not_found"],
  [0xc037010e, "not_found"],
  [0x8037010e, "not_found"],
  [0xc037010f, "already_exists"],
  [0x8037010f, "already_exists"],
  [0x8007000d, "invalid_argument"],
  [0x80070057, "invalid_argument"],
  [0xc037010d, "invalid_argument"],
  [0x8037010d, "invalid_argument"],
  [0xc0370112, "invalid_argument"],
  [0xc0370101, "invalid_argument"],
  [0x80370101, "invalid_argument"],
  // Access is denied: vmcompute refuses a caller that is not an administrator (or, on RS1/RS2, an enumeration
  // racing a silo going away, which listContainers retries); not a fault of HCS's.
  [0x80070005, "failed_precondition"],
  [0x8037011b, "failed_precondition"],
  [0x80070006, "failed_precondition"],
  [0xc0370105, "failed_precondition"],
  [0x80370105, "failed_precondition"],
  [0xc0370110, "failed_precondition"],
  [0x80370110, "failed_precondition"],
  [0x8037011f, "failed_precondition"],
  [0xc0370100, "failed_precondition"],
  [0x80370100, "failed_precondition"],
  [0xc0370102, "failed_precondition"],
  [0x80370102, "failed_precondition"],
  [0xc0370113, "failed_precondition"],
  [0xc0370108, "unavailable"],
  [0x80370108, "unavailable"],
  [0xc037010a, "unavailable"],
  [0x8037010a, "unavailable"],
  [0x8037011e, "unavailable"],
  [0xc0370109, "deadline_exceeded"],
  [0x80370109, "deadline_exceeded"],
  [0x80370118, "deadline_exceeded"],
  [0x800705b4, "deadline_exceeded"],
]);

/** A signed HRESULT as returned over FFI, as the unsigned value every table above uses. */
export function toUnsigned(hresult: number): number {
  return hresult >>> 0;
}

export function isFailure(hresult: number): boolean {
  return (hresult | 0) < 0;
}

export function isPending(hresult: number): boolean {
  return toUnsigned(hresult) === ERROR_VMCOMPUTE_OPERATION_PENDING;
}

/** The symbolic name (`ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND`), or the hex value when unknown. */
export function hresultName(hresult: number): string {
  const unsigned = toUnsigned(hresult);
  return HRESULT_NAMES.get(unsigned) ?? hex(unsigned);
}

export function hex(hresult: number): string {
  return `0x${toUnsigned(hresult).toString(16).toUpperCase().padStart(8, "0")}`;
}

/**
 * hcsshim's reduction of FACILITY_WIN32 HRESULTs (0x8007xxxx) to the bare Win32 code,
 * kept for log lines and comparisons with hcsshim's documented values.
 */
export function win32FromHresult(hresult: number): number {
  const unsigned = toUnsigned(hresult);
  return (unsigned & 0x1fff0000) === 0x00070000 ? unsigned & 0xffff : unsigned;
}

export function errorCodeForHresult(hresult: number): ErrorCode {
  return HRESULT_CODES.get(toUnsigned(hresult)) ?? "internal";
}

/** One entry of ResultError.ErrorEvents, as hcsshim decodes it. */
export interface HcsErrorEvent {
  Message?: string;
  StackTrace?: string;
  Provider?: string;
  EventId?: number;
  Flags?: number;
  Source?: string;
}

export interface HcsResultError {
  Error?: number;
  ErrorMessage?: string;
  ErrorEvents?: HcsErrorEvent[];
}

/**
 * Parses the `result` out-string. Returns undefined for an absent, empty or malformed document;
 * fields of the wrong type are dropped (HCS documents are input, not trusted shapes).
 */
export function parseResultError(resultJson: string | null | undefined): HcsResultError | undefined {
  if (!resultJson) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(resultJson);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed)) return undefined;
  const result: HcsResultError = {};
  if (typeof parsed.Error === "number") result.Error = parsed.Error;
  if (typeof parsed.ErrorMessage === "string") result.ErrorMessage = parsed.ErrorMessage;
  if (Array.isArray(parsed.ErrorEvents)) {
    result.ErrorEvents = parsed.ErrorEvents.filter(isRecord).map((event) => {
      const out: HcsErrorEvent = {};
      for (const key of ["Message", "StackTrace", "Provider", "Source"] as const) {
        const value = event[key];
        if (typeof value === "string") out[key] = value;
      }
      for (const key of ["EventId", "Flags"] as const) {
        const value = event[key];
        if (typeof value === "number") out[key] = value;
      }
      return out;
    });
  }
  return result;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface HcsErrorContext {
  /** The HCS export or the logical operation (`HcsCreateComputeSystem`, `wait SystemStartCompleted`). */
  operation: string;
  /** Compute system id, `<id>/<pid>` for processes. */
  subject?: string;
  resultJson?: string | null;
  cause?: unknown;
}

/**
 * A typed error for a failed HCS call. The message carries the operation, the HRESULT name and
 * every ErrorEvents message, because HCS puts the actual reason (a missing layer, bad JSON) there.
 */
export function hcsError(hresult: number, context: HcsErrorContext): LibcontainerdError {
  const unsigned = toUnsigned(hresult);
  const name = hresultName(unsigned);
  const result = parseResultError(context.resultJson);
  const details: string[] = [];
  if (result?.ErrorMessage) details.push(result.ErrorMessage);
  for (const event of result?.ErrorEvents ?? []) {
    if (event.Message) details.push(event.Message);
  }
  const subject = context.subject ? ` ${context.subject}` : "";
  const known = HRESULT_NAMES.has(unsigned) ? ` (${hex(unsigned)})` : "";
  const suffix = details.length > 0 ? `: ${details.join("; ")}` : "";
  const message = `${context.operation}${subject}: ${name}${known}${suffix}`;
  return errorFor(errorCodeForHresult(unsigned), message, {
    origin: { backend: "hcs", hresult: unsigned, hresultName: name },
    cause: context.cause,
  });
}
