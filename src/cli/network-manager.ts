import { dirname, join } from "node:path";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import { NetworkManager, type NetworkManagerOptions } from "../network/manager.js";
import { stateDirLayout } from "../platform/state-dir.js";
import type { GlobalSettings } from "./options.js";

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
