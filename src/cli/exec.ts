import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { Process } from "../libcontainerd/types/client.js";
import { isErrorCode } from "../libcontainerd/types/errors.js";
import type { OciProcess } from "../oci/spec.js";
import { Attachment } from "./attach.js";
import { LABELS, parseEnv } from "./container-spec.js";
import { launchFailure, usageError } from "./errors.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { SignalRelay } from "./signals.js";

interface ExecFlags {
  env?: string[];
  interactive?: boolean;
  tty?: boolean;
  workdir?: string;
  user?: string;
}

function parseNumericUser(value: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!match) throw usageError(`invalid --user ${JSON.stringify(value)}: want UID[:GID] (numbers)`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] !== undefined ? Number(match[2]) : uid };
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `base` with each of `extra`'s variables set (the last one given wins): replaced in place, or added. */
export function withEnv(base: readonly string[], extra: readonly string[]): string[] {
  const name = (entry: string) => entry.split("=", 1)[0] ?? entry;
  const set = new Map(extra.map((entry) => [name(entry), entry]));
  const merged = base.map((entry) => set.get(name(entry)) ?? entry);
  const present = new Set(base.map(name));
  return [...merged, ...[...set].filter(([key]) => !present.has(key)).map(([, entry]) => entry)];
}

export function registerExec(program: Command): void {
  const command = program
    .command("exec")
    .description("run a command in a running container")
    .usage("[options] ID [--] CMD [ARGS...]")
    .argument("<id>", "container id")
    .argument("<cmd...>", "the command and its arguments")
    .option("-i, --interactive", "pass stdin to the process")
    .option("-t, --tty", "give the process a terminal")
    .option("-w, --workdir <dir>", "working directory (default: the container's)")
    .option("-u, --user <uid[:gid]>", "user to run as (default: the container's)")
    .option("-e, --env <K=V>", "set an environment variable, over the container's (repeatable)", collect)
    .passThroughOptions();
  addGlobalOptions(command).action(async (id: string, given: string[], flags: ExecFlags, self: Command) => {
    // Options stop at the id, so a `--` after it reaches us as an argument; it only separates.
    const args = given[0] === "--" ? given.slice(1) : given;
    if (args.length === 0)
      throw usageError("ctrd exec needs a command: ctrd exec [OPTIONS] ID -- CMD [ARGS...]");
    // As docker refuses it: the end of piped input would close the terminal, and the hang-up kills
    // the command (SIGHUP, 129) before it has read what came through.
    if (flags.interactive && flags.tty && !process.stdin.isTTY)
      throw usageError("the input device is not a TTY: use -i without -t for piped input");
    const settings = resolveSettings(globalFlags(self));
    const user = flags.user !== undefined ? parseNumericUser(flags.user) : undefined;
    const extraEnv = parseEnv(flags.env ?? []);
    process.exitCode = await withClient(settings, async (client) => {
      const container = await client.loadContainer(id);
      const info = await container.info();
      const labels = info.labels;
      const task = await container.task();
      const tty = flags.tty ?? false;
      const spec: OciProcess = {
        args,
        cwd: flags.workdir ?? labels[LABELS.workdir] ?? "/",
        user: user ?? parseNumericUser(labels[LABELS.user] ?? "0:0"),
        terminal: tty,
      };
      // docker exec -e: the container's environment with these set over it.
      if (extraEnv.length > 0) spec.env = withEnv(info.spec?.process?.env ?? [], extraEnv);
      // The exec starts with its Exec call: a resize after it comes too late for a command that asks
      // at once (`stty size` saw 0 0). runc sizes an exec's pty from the spec before it runs.
      if (tty && process.stdout.isTTY && process.stdout.columns && process.stdout.rows)
        spec.consoleSize = { width: process.stdout.columns, height: process.stdout.rows };
      const relay = new SignalRelay();
      let proc: Process;
      try {
        proc = await task.exec(`exec-${randomBytes(6).toString("hex")}`, spec, {
          stdio: { stdin: flags.interactive ?? false, stdout: true, stderr: true, terminal: tty },
        });
      } catch (err) {
        relay.stop();
        throw launchFailure(err, args);
      }
      const attachment = new Attachment(proc, {
        stdin: flags.interactive ?? false,
        tty,
        logger: settings.logger,
        // An exec'd process is no pid 1, so SIGPIPE ends it as it would end a writer in a shell pipeline.
        onOutputGone: () => {
          proc.kill("SIGPIPE").catch(() => {});
        },
      });
      try {
        attachment.wireOutput();
        await attachment.sizeTerminal();
        attachment.wireInput();
        // An exec'd process is no pid 1: Ctrl-C's SIGINT has its default effect, as in a shell;
        // a second Ctrl-C is for a process that ignores it.
        relay.attach({
          interrupt: (count) => proc.kill(count > 1 ? "SIGKILL" : "SIGINT").catch(() => {}),
          forward: (signal) => proc.kill(signal).catch(() => {}),
        });
        const status = await proc.wait();
        await attachment.drain();
        await proc.delete().catch((err: unknown) => {
          if (!isErrorCode(err, "not_found")) throw err;
        });
        return status.exitCode;
      } finally {
        attachment.detach();
        relay.stop();
      }
    });
  });
}
