import type { OciMount, OciSpec } from "../oci/spec.js";
import { formatPortMapping, type PortMapping } from "./ports.js";
import {
  HOST_NETWORK,
  NETWORK_LABELS,
  type NetworkAttachment,
  NO_NETWORK,
  type PendingAttachment,
} from "./types.js";

function fileMount(destination: string, source: string): OciMount {
  return { destination, type: "bind", source, options: ["rbind", "ro"] };
}

/** `--network none` without DNS servers: a network namespace of its own with only loopback, and no files. */
export function isolatedAttachment(namespace: string, containerId: string): PendingAttachment {
  const attachment: NetworkAttachment = {
    namespace,
    containerId,
    network: NO_NETWORK,
    addresses: [],
    ports: [],
  };
  return { attachment, ready: Promise.resolve(attachment) };
}

/**
 * The spec with the attachment applied: the netns path (or the host's network namespace) and
 * /etc/hosts and /etc/resolv.conf bind-mounted read-only. The spec given is not changed.
 */
export function applyNetwork(spec: OciSpec, attachment: NetworkAttachment): OciSpec {
  const linux = { ...(spec.linux ?? {}) };
  const namespaces = (linux.namespaces ?? []).filter((namespace) => namespace.type !== "network");
  if (attachment.netnsPath) namespaces.push({ type: "network", path: attachment.netnsPath });
  else if (attachment.network !== HOST_NETWORK) namespaces.push({ type: "network" });
  linux.namespaces = namespaces;
  const files: OciMount[] = [];
  if (attachment.hostsPath) files.push(fileMount("/etc/hosts", attachment.hostsPath));
  if (attachment.resolvConfPath) files.push(fileMount("/etc/resolv.conf", attachment.resolvConfPath));
  const replaced = new Set(files.map((mount) => mount.destination));
  const mounts = [...(spec.mounts ?? []).filter((mount) => !replaced.has(mount.destination)), ...files];
  return { ...spec, linux, mounts };
}

/** `io.ctrd.network` and `io.ctrd.ports` for the container's record. */
export function networkLabels(attachment: NetworkAttachment): Record<string, string> {
  return {
    [NETWORK_LABELS.network]: attachment.network,
    [NETWORK_LABELS.ports]: JSON.stringify(attachment.ports),
  };
}

/** The published ports recorded in a container's labels (`[]` when none or unreadable). */
export function portsFromLabels(labels: Readonly<Record<string, string>>): PortMapping[] {
  try {
    const parsed: unknown = JSON.parse(labels[NETWORK_LABELS.ports] ?? "[]");
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (item): item is PortMapping =>
        typeof item === "object" &&
        item !== null &&
        typeof item.hostIp === "string" &&
        typeof item.hostPort === "number" &&
        typeof item.containerPort === "number" &&
        (item.protocol === "tcp" || item.protocol === "udp"),
    );
  } catch {
    return [];
  }
}

export function formatPorts(ports: readonly PortMapping[]): string {
  return ports.map(formatPortMapping).join(", ");
}
