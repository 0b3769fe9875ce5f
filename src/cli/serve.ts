import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { CniNetworks } from "../engine/cni-networks.js";
import { ContainerdImages } from "../engine/containerd-images.js";
import { Engine } from "../engine/engine.js";
import { DEFAULT_ENGINE_SOCKET, parseHost } from "../engine/server.js";
import { NetworkManager } from "../network/manager.js";
import {
  DEFAULT_SECCOMP_PROFILE_PATHS,
  findDefaultSeccompProfile,
  parseSeccompProfile,
  type SeccompProfile,
} from "../oci/seccomp.js";
import { packagePath } from "../platform/package-dir.js";
import { usageError } from "./errors.js";
import { networkManagerOptions } from "./network-manager.js";
import { addGlobalOptions, globalFlags, openCheckedClient, resolveSettings } from "./options.js";

interface ServeFlags {
  host?: string[];
  group?: string;
  dataRoot?: string;
  tlscert?: string;
  tlskey?: string;
  tlscacert?: string;
  bridge?: string;
  bip?: string;
  seccompProfile?: string;
}

export const DEFAULT_ENGINE_DATA_ROOT = "/var/lib/libcontainerd/engine";
const INIT_BINARIES = ["/usr/bin/tini-static", "/usr/bin/docker-init"];

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof manifest.version === "string" ? manifest.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

export function registerServe(program: Command): void {
  const command = program
    .command("serve")
    .description("serve the Docker Engine API (docker, dockerode, testcontainers) until SIGINT or SIGTERM")
    .option(
      "-H, --host <address>",
      `unix:///PATH or tcp://HOST:PORT (repeatable; default unix://${DEFAULT_ENGINE_SOCKET})`,
      collect,
    )
    .option("--group <name>", "group that may use the unix socket (mode 0660, owner root)")
    .option("--data-root <dir>", `container records and logs (default: ${DEFAULT_ENGINE_DATA_ROOT})`)
    .option("--tlscert <file>", "TLS certificate (required for tcp://)")
    .option("--tlskey <file>", "TLS key (required for tcp://)")
    .option("--tlscacert <file>", "only accept clients with a certificate signed by this CA")
    .option(
      "-b, --bridge <device>",
      "the default bridge network's device, when it is first created (default: ctrd0)",
    )
    .option(
      "--seccomp-profile <file>",
      `containers' default seccomp profile (docker's format), or unconfined (default: the first of ${DEFAULT_SECCOMP_PROFILE_PATHS.join(", ")})`,
    )
    .option(
      "--bip <cidr>",
      "the default bridge network's subnet, when it is first created (default: 10.210.0.0/16)",
    );
  addGlobalOptions(command).action(async (flags: ServeFlags, self: Command) => {
    process.exitCode = await serve(self, flags);
  });
}

async function serve(self: Command, flags: ServeFlags): Promise<number> {
  const settings = resolveSettings(globalFlags(self));
  const hosts = (flags.host ?? [`unix://${DEFAULT_ENGINE_SOCKET}`]).map(parseHost);
  const tls =
    flags.tlscert !== undefined && flags.tlskey !== undefined
      ? {
          cert: flags.tlscert,
          key: flags.tlskey,
          ...(flags.tlscacert !== undefined ? { ca: flags.tlscacert } : {}),
        }
      : undefined;
  if (hosts.some((host) => host.kind === "tcp") && !tls)
    throw usageError("a tcp:// host needs --tlscert and --tlskey: the Engine API is root on this machine");
  const seccomp = defaultSeccomp(flags.seccompProfile);
  const client = await openCheckedClient(settings);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let engine: Engine | undefined;
  try {
    const initBinary = INIT_BINARIES.find((path) => existsSync(path));
    // The same dirs as ctrd's network commands: `ctrd network ls` and `docker network ls` agree.
    const networkManager = new NetworkManager({
      ...networkManagerOptions(settings),
      defaultNetwork: {
        ...(flags.bridge !== undefined ? { bridge: flags.bridge } : {}),
        ...(flags.bip !== undefined ? { subnet: flags.bip } : {}),
      },
    });
    await networkManager.gc(
      client.namespace,
      async () => (await client.listContainers({ signal: stop.signal })).map((info) => info.id),
      { signal: stop.signal },
    );
    engine = await Engine.create(
      {
        client,
        stateDir: flags.dataRoot ?? DEFAULT_ENGINE_DATA_ROOT,
        images: new ContainerdImages(client.images),
        networks: new CniNetworks(networkManager, client.namespace),
        logger: settings.logger,
        version: packageVersion(),
        ...(initBinary !== undefined ? { initBinary } : {}),
        ...(seccomp ? { seccomp } : {}),
        ...(settings.defaultRuntime !== undefined ? { defaultRuntime: settings.defaultRuntime } : {}),
      },
      stop.signal,
    );
    for (const host of hosts) {
      const options = {
        ...(flags.group !== undefined ? { group: flags.group } : {}),
        ...(tls ? { tls } : {}),
      };
      await engine.listen(host, options);
      process.stderr.write(
        `ctrd: serving the Docker Engine API on ${host.kind === "unix" ? `unix://${host.path}` : `tcp://${host.host}:${host.port}`}\n`,
      );
    }
    if (!stop.signal.aborted)
      await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await engine?.close();
    await client.close().catch(() => {});
  }
}

/**
 * The profile of containers whose request names none, as dockerd applies its default: the file given,
 * or the distribution's (podman's, from docker's); none where none is installed, said on stderr.
 */
function defaultSeccomp(flag: string | undefined): { path: string; profile: SeccompProfile } | undefined {
  if (flag === "unconfined") return undefined;
  if (flag !== undefined) {
    let text: string;
    try {
      text = readFileSync(flag, "utf8");
    } catch (err) {
      throw usageError(`--seccomp-profile ${flag}: ${(err as Error).message}`);
    }
    try {
      return { path: flag, profile: parseSeccompProfile(text, flag) };
    } catch (err) {
      throw usageError(`--seccomp-profile: ${(err as Error).message}`);
    }
  }
  const found = findDefaultSeccompProfile();
  if (!found)
    process.stderr.write(
      `ctrd serve: no default seccomp profile (${DEFAULT_SECCOMP_PROFILE_PATHS.join(", ")}): containers run without one unless they name one\n`,
    );
  return found;
}
