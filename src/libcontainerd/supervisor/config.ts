import { MAX_MESSAGE_BYTES } from "../grpc/transport.js";
import type { ManagedContainerdLayout } from "./layout.js";

/**
 * Plugins a library client never uses. CRI would start its own networking and image services; the
 * snapshotters below fail noisily (or probe the kernel) on hosts without their filesystems.
 */
export const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
] as const;

export type ContainerdLogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "panic";

/** TOML basic strings accept JSON's escapes, so JSON.stringify quotes any path safely. */
function tomlString(value: string): string {
  return JSON.stringify(value);
}

/** containerd's server config (version 2), rewritten before every start like moby's supervisor does. */
export function containerdConfigToml(layout: ManagedContainerdLayout, logLevel?: ContainerdLogLevel): string {
  const lines = [
    "version = 2",
    `root = ${tomlString(layout.root)}`,
    `state = ${tomlString(layout.daemonStateDir)}`,
    "disabled_plugins = [",
    ...DISABLED_PLUGINS.map((name) => `  ${tomlString(name)},`),
    "]",
    "",
    "[grpc]",
    `  address = ${tomlString(layout.socket)}`,
    `  max_recv_message_size = ${MAX_MESSAGE_BYTES}`,
    `  max_send_message_size = ${MAX_MESSAGE_BYTES}`,
    "",
    "[ttrpc]",
    `  address = ${tomlString(layout.ttrpcSocket)}`,
    "",
  ];
  if (logLevel !== undefined) lines.push("[debug]", `  level = ${tomlString(logLevel)}`, "");
  lines.push(
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${tomlString(`${layout.root}/opt`)}`,
    "",
    // The v1 runtime keeps runc state in /run/containerd/runc by default; under our dirs two managed
    // containerds (or a system one) never see each other's containers.
    '[plugins."io.containerd.runtime.v1.linux"]',
    '  shim = "containerd-shim"',
    '  runtime = "runc"',
    `  runtime_root = ${tomlString(layout.runcV1Root)}`,
    "",
  );
  return lines.join("\n");
}
