/**
 * Signals for HcsSignalProcess, exactly as hcsshim validates them (microsoft/hcsshim
 * internal/signals/signal.go ValidateWCOW / ValidateLCOW and signalmap.go, at 7c9ff7f48):
 * - a Windows guest gets console control events; numbers map 0→CtrlC, 1→CtrlBreak, 2→CtrlClose,
 *   5→CtrlLogOff, 6 and 15 (SIGTERM)→CtrlShutdown, 9→terminate. So SIGINT (2) is CtrlClose, as
 *   containerd's runhcs shim delivers it; pass "CtrlC" to get a Ctrl+C. The event names are
 *   accepted as well (any case).
 * - a Linux guest (LCOW) gets the POSIX number, only if it is in hcsshim's LCOW signal map.
 * SIGKILL never becomes a signal: it terminates the process.
 */
import { parseSignal } from "../signals.js";
import { InvalidArgumentError } from "../types/errors.js";
import type { GuestOs } from "./documents.js";

export type HcsSignal = { kind: "terminate" } | { kind: "signal"; options: { Signal: string | number } };

const SIGKILL = 9;

const WCOW_BY_NUMBER = new Map<number, string>([
  [0, "CtrlC"],
  [1, "CtrlBreak"],
  [2, "CtrlClose"],
  [5, "CtrlLogOff"],
  [6, "CtrlShutdown"],
  [15, "CtrlShutdown"],
]);

const WCOW_EVENTS = ["CtrlC", "CtrlBreak", "CtrlClose", "CtrlLogOff", "CtrlShutdown"] as const;

/** The values of hcsshim's signalMapLcow: 1–31 (SIGKILL included, which terminates instead). */
const LCOW_SIGNALS = new Set<number>(Array.from({ length: 31 }, (_, i) => i + 1));

export function hcsSignal(guestOs: GuestOs, signal: NodeJS.Signals | string | number): HcsSignal {
  if (guestOs === "windows") {
    if (typeof signal === "string") {
      const event = WCOW_EVENTS.find((e) => e.toLowerCase() === signal.trim().toLowerCase());
      if (event) return { kind: "signal", options: { Signal: event } };
    }
    const number = signalNumber(signal);
    if (number === SIGKILL) return { kind: "terminate" };
    const event = WCOW_BY_NUMBER.get(number);
    if (!event) {
      throw new InvalidArgumentError(
        `signal ${JSON.stringify(signal)} has no Windows console equivalent (hcsshim's map: 0 CtrlC, 1 CtrlBreak, 2 CtrlClose, 5 CtrlLogOff, 6/15 CtrlShutdown, 9 kill; or the event name)`,
      );
    }
    return { kind: "signal", options: { Signal: event } };
  }
  const number = signalNumber(signal);
  if (number === SIGKILL) return { kind: "terminate" };
  if (!LCOW_SIGNALS.has(number)) {
    throw new InvalidArgumentError(`signal ${JSON.stringify(signal)} is not in hcsshim's LCOW signal map`);
  }
  return { kind: "signal", options: { Signal: number } };
}

/** Like parseSignal, plus 0 (CtrlC to a Windows guest), which POSIX does not have. */
function signalNumber(signal: string | number): number {
  if (signal === 0 || (typeof signal === "string" && signal.trim() === "0")) return 0;
  return parseSignal(signal);
}
