/** One record of Docker's json-file log, as ctrd-logger writes it. */
export interface LogRecord {
  stream: "stdout" | "stderr";
  /** RFC 3339 with nanoseconds, as written. */
  timestamp: string;
  time: Date;
  /** The text; it ends with "\n" unless the line was split (a partial record). */
  log: string;
}

/** A record, or undefined for a line that is not one (cut by a crash or a full disk): skipped. */
export function parseRecord(line: string): LogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const log: unknown = Reflect.get(value, "log");
  const stream: unknown = Reflect.get(value, "stream");
  const timestamp: unknown = Reflect.get(value, "time");
  if (typeof log !== "string" || typeof timestamp !== "string") return undefined;
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const time = new Date(timestamp);
  if (Number.isNaN(time.getTime())) return undefined;
  return { stream, timestamp, time, log };
}
