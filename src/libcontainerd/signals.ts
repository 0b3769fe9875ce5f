import { constants } from "node:os";
import { InvalidArgumentError } from "./types/errors.js";

const byName = constants.signals as Record<string, number>;
const MAX_SIGNAL = 64;

/** Accepts `SIGTERM`, `TERM`, `term`, `15` or 15, and real-time signals `SIGRTMIN+3`. */
export function parseSignal(signal: string | number): number {
  if (typeof signal === "number") {
    if (Number.isInteger(signal) && signal > 0 && signal <= MAX_SIGNAL) return signal;
    throw new InvalidArgumentError(`invalid signal number ${signal}`);
  }
  const raw = signal.trim();
  if (/^\d+$/.test(raw)) return parseSignal(Number(raw));
  const upper = raw.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  const rt = /^SIGRTM(IN|AX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const base = rt[1] === "IN" ? 34 : MAX_SIGNAL;
    const value = base + Number(rt[2] ?? 0);
    if (value >= 34 && value <= MAX_SIGNAL) return value;
  }
  const value = byName[name];
  if (value !== undefined) return value;
  throw new InvalidArgumentError(`unknown signal ${JSON.stringify(signal)}`);
}
