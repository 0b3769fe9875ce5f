/**
 * Windows command lines. HCS takes one CommandLine string that the guest splits with
 * CommandLineToArgvW rules, so OCI `args` are joined with Go's syscall.EscapeArg quoting
 * (what hcsshim and moby do).
 */
import type { OciProcess } from "../../oci/spec.js";
import { InvalidArgumentError } from "../types/errors.js";

/** Go's `syscall.EscapeArg`: quote when there is a space or tab, backslash-escape quotes. */
export function escapeArg(arg: string): string {
  if (arg.length === 0) return '""';
  const needsBackslash = /["\\]/.test(arg);
  const hasSpace = /[ \t]/.test(arg);
  if (!needsBackslash && !hasSpace) return arg;
  if (!needsBackslash) return `"${arg}"`;
  let out = hasSpace ? '"' : "";
  let slashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      slashes++;
    } else if (ch === '"') {
      // Backslashes before a quote are literal only when doubled; then the quote itself is escaped.
      out += "\\".repeat(slashes + 1);
      slashes = 0;
    } else {
      slashes = 0;
    }
    out += ch;
  }
  if (hasSpace) out += `${"\\".repeat(slashes)}"`;
  return out;
}

export function joinCommandLine(args: readonly string[]): string {
  return args.map(escapeArg).join(" ");
}

/** `commandLine` wins when set (it is the Windows-native form); otherwise the escaped `args`. */
export function commandLineFor(process: Pick<OciProcess, "args" | "commandLine">): string {
  if (process.commandLine) return process.commandLine;
  if (!process.args || process.args.length === 0) {
    throw new InvalidArgumentError("process has neither commandLine nor args");
  }
  return joinCommandLine(process.args);
}
