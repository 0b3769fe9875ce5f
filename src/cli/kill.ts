import type { Command } from "commander";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";

export function registerKill(program: Command): void {
  const command = program
    .command("kill")
    .description("send a signal to a container's init process")
    .argument("<id>", "container id")
    .option("-s, --signal <signal>", "signal name or number", "SIGKILL");
  addGlobalOptions(command).action(async (id: string, flags: { signal: string }, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      const task = await (await client.loadContainer(id)).task();
      await task.kill(flags.signal);
      process.stdout.write(`${id}\n`);
    });
  });
}
