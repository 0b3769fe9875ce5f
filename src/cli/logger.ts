import { type Logger, pino } from "pino";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Logs go to stderr, synchronously, so a line written just before exit is not lost. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, name: "ctrd" }, pino.destination({ fd: 2, sync: true }));
}
