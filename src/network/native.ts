/**
 * native/network (network.node, see addon.c): network namespaces as files by system calls, and CNI
 * plugins started without forking Node. Optional: where it is not built, each caller falls back to
 * processes (unshare, umount) or child_process.
 */
import { spawn } from "node:child_process";
import { constants as os } from "node:os";
import { errnoName, nativeAddon } from "../platform/native-addon.js";

export { errnoName };

type Done = (errno: number, step: string) => void;
type RunDone = (
  errno: number,
  step: string,
  code: number,
  signal: number,
  stdout: Buffer,
  stderr: Buffer,
) => void;

export interface NetworkAddon {
  createNetns(path: string, done: Done): void;
  removeNetns(path: string, done: Done): void;
  /** The pid, or -errno when it could not start (then `done` is never called). */
  run(file: string, env: string[], input: Buffer, done: RunDone): number;
  kill(pid: number, signal: number): boolean;
}

/** Null when not built; `CTRD_NETWORK_ADDON` names another build, or "none" for none. */
export const networkAddon = nativeAddon<NetworkAddon>(
  "native/network/build/network.node",
  "CTRD_NETWORK_ADDON",
);

/** How a program run by `runProgram` ended: its exit code, or the signal that ended it. */
export interface ProgramOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const signalNames = new Map(
  Object.entries(os.signals).map(([name, value]) => [value, name as NodeJS.Signals]),
);

/**
 * Runs `file` with exactly `env` and `input` on its stdin, to its end; an abort kills it (SIGKILL)
 * and the outcome then says so. Rejects (with the errno's name) only when it could not be started.
 */
export function runProgram(
  file: string,
  env: Record<string, string>,
  input: string,
  signal: AbortSignal | undefined,
): Promise<ProgramOutcome> {
  const native = networkAddon();
  return new Promise((resolve, reject) => {
    let kill: () => void;
    const onAbort = () => kill();
    const settle = (outcome: ProgramOutcome | Error) => {
      signal?.removeEventListener("abort", onAbort);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    if (native) {
      const pid = native.run(
        file,
        Object.entries(env).map(([key, value]) => `${key}=${value}`),
        Buffer.from(input),
        (errno, step, code, signalNumber, stdout, stderr) => {
          if (errno !== 0) return settle(new Error(`${step}: ${errnoName(errno)}`));
          settle({
            code: code >= 0 ? code : null,
            signal: signalNumber > 0 ? (signalNames.get(signalNumber) ?? null) : null,
            stdout: stdout.toString("utf8"),
            stderr: stderr.toString("utf8"),
          });
        },
      );
      if (pid < 0) return reject(new Error(`spawn ${file}: ${errnoName(-pid)}`));
      kill = () => native.kill(pid, os.signals.SIGKILL);
    } else {
      // detached: a process group of its own, as the addon gives it (see native/network/spawn.c).
      const child = spawn(file, [], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      kill = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        } catch {}
      };
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.stdin.on("error", () => {});
      child.once("error", (err) => settle(err));
      child.once("close", (code, signalName) =>
        settle({
          code,
          signal: signalName,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
        }),
      );
      child.stdin.end(input);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
