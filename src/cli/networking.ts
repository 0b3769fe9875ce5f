import { dirname, join } from "node:path";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import {
  applyNetwork,
  DEFAULT_NETWORK,
  type NetworkAttachment,
  NetworkManager,
  type NetworkManagerOptions,
  networkLabels,
  type PortRequest,
  parsePortSpec,
} from "../network/index.js";
import type { OciSpec } from "../oci/spec.js";
import { stateDirLayout } from "../platform/state-dir.js";
import { usageError } from "./errors.js";
import type { GlobalSettings } from "./options.js";

/** `ctrd run`'s network when --network is not given: the env's CTRD_NETWORK, else the default bridge (as docker). */
export function defaultRunNetwork(): string {
  return process.env.CTRD_NETWORK || DEFAULT_NETWORK;
}

/**
 * The network module on ctrd's dirs: runtime state (netns files, IPAM) beside the client's state,
 * network definitions beside the managed containerd's root so that they outlive a reboot.
 */
export function networkManager(settings: GlobalSettings): NetworkManager {
  return new NetworkManager(networkManagerOptions(settings));
}

export function networkManagerOptions(settings: GlobalSettings): NetworkManagerOptions {
  return {
    stateDir: stateDirLayout(settings.stateDir).network,
    dataDir: join(dirname(settings.root), "network"),
    logger: settings.logger,
  };
}

/** What a crashed ctrd left in this namespace (ctrd has no daemon: every command that may need it starts with this). */
export async function collectNetworkGarbage(
  manager: NetworkManager,
  client: LibcontainerdClient,
  settings: GlobalSettings,
): Promise<void> {
  const cleaned = await manager.gc(settings.namespace, async () =>
    (await client.listContainers()).map((info) => info.id),
  );
  if (cleaned.length > 0) settings.logger.info({ containers: cleaned }, "removed networks left by a crash");
}

export interface RunNetworkFlags {
  network?: string;
  publish?: string[];
  dns?: string[];
}

/** -p values parsed before anything starts: a typo costs nothing. */
export function parsePublish(values: readonly string[]): PortRequest[] {
  return values.map((value) => {
    try {
      return parsePortSpec(value);
    } catch (err) {
      throw usageError(
        `invalid -p ${JSON.stringify(value)}: ${(err as Error).message.replace(/^invalid port mapping "[^"]*": /, "")}`,
      );
    }
  });
}

/** The attachment applied: the spec to create the container with and the labels to record it by. */
export function withNetwork(
  spec: OciSpec,
  labels: Record<string, string>,
  attachment: NetworkAttachment,
): { spec: OciSpec; labels: Record<string, string> } {
  return { spec: applyNetwork(spec, attachment), labels: { ...labels, ...networkLabels(attachment) } };
}
