import { humanDuration } from "../../state/human-duration.js";
import { parseBind } from "./config.js";
import type { ContainerRecord } from "./store.js";
import { ZERO_TIME } from "./store.js";

function since(time: string, now: number): number {
  return now - Date.parse(time);
}

/** The STATUS column of `docker ps`, worded as container.State.String() words it. */
export function statusText(record: ContainerRecord, now = Date.now()): string {
  const state = record.State;
  switch (state.Status) {
    case "running": {
      const health = state.Health?.Status;
      const suffix =
        health === undefined ? "" : health === "starting" ? " (health: starting)" : ` (${health})`;
      return `Up ${humanDuration(since(state.StartedAt, now))}${suffix}`;
    }
    case "paused":
      return `Up ${humanDuration(since(state.StartedAt, now))} (Paused)`;
    case "restarting":
      return `Restarting (${state.ExitCode}) ${humanDuration(since(state.FinishedAt, now))} ago`;
    case "removing":
      return "Removal In Progress";
    case "dead":
      return "Dead";
    case "created":
      return "Created";
    case "exited":
      return state.FinishedAt === ZERO_TIME
        ? "Created"
        : `Exited (${state.ExitCode}) ${humanDuration(since(state.FinishedAt, now))} ago`;
  }
}

/** The list's Command: the path, then the args with those holding a space in single quotes (container/view.go). */
function commandText(record: ContainerRecord): string {
  const args = record.Args.map((arg) => (arg.includes(" ") ? `'${arg}'` : arg));
  return [record.Path, ...args].join(" ");
}

/** api/types.Port entries for the list view. */
function portList(
  record: ContainerRecord,
): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  const ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  const seen = new Set<string>();
  for (const [key, bindings] of Object.entries(record.Ports)) {
    const [port = "0", type = "tcp"] = key.split("/");
    seen.add(key);
    if (bindings.length === 0) ports.push({ PrivatePort: Number(port), Type: type });
    for (const binding of bindings)
      ports.push({
        IP: binding.HostIp,
        PrivatePort: Number(port),
        PublicPort: Number(binding.HostPort),
        Type: type,
      });
  }
  for (const key of Object.keys(record.Config.ExposedPorts ?? {})) {
    if (seen.has(key)) continue;
    const [port = "0", type = "tcp"] = key.split("/");
    ports.push({ PrivatePort: Number(port), Type: type });
  }
  return ports;
}

function networks(record: ContainerRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // By name, as dockerd's JSON has them (Go sorts a map's keys).
  const byName = Object.entries(record.Networks).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, endpoint] of byName) {
    out[name] = {
      IPAMConfig: endpoint.IPAMConfig ?? null,
      Links: null,
      Aliases: endpoint.Aliases,
      NetworkID: endpoint.NetworkID,
      EndpointID: endpoint.EndpointID,
      Gateway: endpoint.Gateway,
      IPAddress: endpoint.IPAddress,
      IPPrefixLen: endpoint.IPPrefixLen,
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      MacAddress: endpoint.MacAddress,
      DriverOpts: null,
    };
  }
  return out;
}

/** One row of GET /containers/json (api/types.Container). */
export function listView(record: ContainerRecord, now = Date.now()): Record<string, unknown> {
  return {
    Id: record.Id,
    Names: [record.Name],
    Image: record.Config.Image,
    ImageID: record.Image,
    Command: commandText(record),
    Created: Math.floor(Date.parse(record.Created) / 1000),
    Ports: portList(record),
    Labels: record.Config.Labels,
    State: record.State.Status,
    Status: statusText(record, now),
    HostConfig: { NetworkMode: record.HostConfig.NetworkMode },
    NetworkSettings: { Networks: networks(record) },
    Mounts: mountsView(record),
  };
}

/** api/types.MountPoint entries: host binds (-v, --mount), --mount tmpfs, and volumes with their data dirs. */
function mountsView(record: ContainerRecord): Record<string, unknown>[] {
  const binds = (record.HostConfig.Binds ?? [])
    .map((spec) => parseBind(spec))
    .filter((bind) => bind.type === "bind")
    .map((bind) => ({
      Type: "bind",
      Source: bind.source,
      Destination: bind.destination,
      Mode: bind.mode,
      RW: !bind.readonly,
      Propagation: "rprivate",
    }));
  const mounts = (record.HostConfig.Mounts ?? [])
    .filter((mount) => mount.Type !== "volume")
    .map((mount) => ({
      Type: mount.Type,
      Source: mount.Source,
      Destination: mount.Target,
      Mode: "",
      RW: !mount.ReadOnly,
      Propagation: mount.Type === "bind" ? "rprivate" : "",
    }));
  const volumes = (record.MountPoints ?? []).map((mountPoint) => ({
    Type: mountPoint.Type,
    ...(mountPoint.Type === "volume" ? { Name: mountPoint.Name } : {}),
    Source: mountPoint.Source,
    Destination: mountPoint.Destination,
    ...(mountPoint.Type === "volume" ? { Driver: mountPoint.Driver } : {}),
    Mode: mountPoint.Mode,
    RW: mountPoint.RW,
    Propagation: mountPoint.Propagation,
  }));
  return [...binds, ...mounts, ...volumes];
}

/** NetworkSettings.Ports: the published ports, and the exposed ones not published as null (as dockerd shows them). */
function inspectPorts(
  record: ContainerRecord,
): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  // dockerd: none on the host's network, none of its own on another container's (container:ID).
  const mode = record.HostConfig.NetworkMode;
  if (mode === "host" || mode === "none" || mode.startsWith("container:")) return ports;
  for (const key of Object.keys(record.Config.ExposedPorts ?? {})) ports[key] = null;
  return { ...ports, ...record.Ports };
}

/**
 * GET /containers/{id}/json (api/types.ContainerJSON). `dir`: the engine dir whose hosts, hostname and
 * resolv.conf the container has (on another container's network, that one's).
 */
export function inspectView(
  record: ContainerRecord,
  dir: string,
  execIds: string[],
): Record<string, unknown> {
  const state = record.State;
  const primary = Object.values(record.Networks)[0];
  return {
    Id: record.Id,
    Created: record.Created,
    Path: record.Path,
    Args: record.Args,
    State: {
      Status: state.Status,
      Running: state.Status === "running" || state.Status === "paused",
      Paused: state.Status === "paused",
      Restarting: state.Status === "restarting",
      OOMKilled: state.OOMKilled,
      Dead: state.Status === "dead",
      Pid: state.Pid,
      ExitCode: state.ExitCode,
      Error: state.Error,
      StartedAt: state.StartedAt,
      FinishedAt: state.FinishedAt,
      ...(state.Health ? { Health: state.Health } : {}),
    },
    Image: record.Image,
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: record.LogPath,
    Name: record.Name,
    RestartCount: record.RestartCount,
    Driver: "overlayfs",
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: execIds.length > 0 ? execIds : null,
    HostConfig: record.HostConfig,
    GraphDriver: { Data: null, Name: "overlayfs" },
    Mounts: mountsView(record),
    Config: record.Config,
    NetworkSettings: {
      Bridge: "",
      SandboxID: record.Id,
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      Ports: inspectPorts(record),
      SandboxKey: "",
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: primary?.EndpointID ?? "",
      Gateway: primary?.Gateway ?? "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: primary?.IPAddress ?? "",
      IPPrefixLen: primary?.IPPrefixLen ?? 0,
      IPv6Gateway: "",
      MacAddress: primary?.MacAddress ?? "",
      Networks: networks(record),
    },
  };
}
