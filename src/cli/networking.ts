// What `ctrd run` needs of networking before it knows whether the container has a network. The
// network module itself (NetworkManager: CNI, netns, IPAM, the GC) is network-manager.ts, loaded
// only for a container that has one: `--network none` needs no records, no locks and no GC.

import { type HostsEntry, parseExtraHost } from "../network/dns.js";
import { type PortRequest, parsePortSpec } from "../network/ports.js";
import { applyNetwork, networkLabels } from "../network/spec.js";
import { DEFAULT_NETWORK, type NetworkAttachment } from "../network/types.js";
import type { OciSpec } from "../oci/spec.js";
import { usageError } from "./errors.js";

/** `ctrd run`'s network when --network is not given: the env's CTRD_NETWORK, else the default bridge (as docker). */
export function defaultRunNetwork(): string {
  return process.env.CTRD_NETWORK || DEFAULT_NETWORK;
}

export interface RunNetworkFlags {
  network?: string;
  publish?: string[];
  dns?: string[];
  addHost?: string[];
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

/** --add-host NAME:IP (or NAME:host-gateway) values, checked before anything starts. */
export function parseAddHosts(values: readonly string[]): HostsEntry[] {
  return values.map((value) => {
    try {
      return parseExtraHost(value);
    } catch (err) {
      throw usageError((err as Error).message);
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
