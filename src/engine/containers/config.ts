import { existsSync } from "node:fs";
import { posix } from "node:path";
import { parseExtraHost } from "../../network/dns.js";
import { badRequest } from "../errors.js";
import { type EndpointIpamConfig, endpointIpamConfig } from "../network-plan.js";
import { checkVolumeDriver, checkVolumeName } from "../volume-store.js";
import { type HealthConfig, parseHealthConfig } from "./health.js";
import { checkResourceSettings, hostRunOptions } from "./host-options.js";
import { logSettings } from "./log-file.js";
import { checkNetContainerMode } from "./shared-namespaces.js";

/** The parts of api/types/container.Config the engine acts on (and echoes back in inspect). */
export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts: Record<string, Record<string, never>> | null;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Image: string;
  Volumes: Record<string, Record<string, never>> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  OnBuild: null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: HealthConfig;
}

export interface RestartPolicy {
  Name: "" | "no" | "always" | "unless-stopped" | "on-failure";
  MaximumRetryCount: number;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** api/types/container.HostConfig: what the engine acts on, plus the rest kept as the client sent it. */
export interface HostConfig {
  Binds: string[] | null;
  /** `--volumes-from CONTAINER[:ro|rw]`: that container's binds and volumes. */
  VolumesFrom: string[] | null;
  NetworkMode: string;
  PortBindings: Record<string, PortBinding[]>;
  PublishAllPorts: boolean;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  Memory: number;
  NanoCpus: number;
  CpuShares: number;
  CpuQuota: number;
  CpuPeriod: number;
  PidsLimit: number | null;
  Runtime: string;
  Init: boolean | null;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  Dns: string[];
  ExtraHosts: string[] | null;
  /** HostConfig.Mounts (`--mount`): binds of host paths, volumes and tmpfs. */
  Mounts: MountRequest[] | null;
  /** HostConfig.Tmpfs (`--tmpfs PATH[:OPTIONS]`): a tmpfs on each path, with mount options. */
  Tmpfs: Record<string, string> | null;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  LogConfig: { Type: string; Config: Record<string, string> };
  [other: string]: unknown;
}

/** The parts of api/types/mount.Mount the engine acts on. */
export interface MountRequest {
  Type: "bind" | "tmpfs" | "volume";
  /** A host path (bind), a volume's name (volume; empty: a new anonymous one), nothing (tmpfs). */
  Source: string;
  Target: string;
  ReadOnly: boolean;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
  VolumeOptions?: VolumeOptions;
}

/** api/types/mount.VolumeOptions: how a volume is made (when it is new) and filled. */
export interface VolumeOptions {
  NoCopy?: boolean;
  Labels?: Record<string, string>;
  DriverConfig?: { Name?: string; Options?: Record<string, string> };
}

function parseVolumeOptions(target: string, value: unknown): VolumeOptions | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw badRequest("invalid VolumeOptions");
  if (field(value, "Subpath", "string", isString, "") !== "")
    throw badRequest(
      `invalid mount config for type "volume": volume subpaths are not supported by this engine (${target})`,
    );
  const options: VolumeOptions = {};
  if (field(value, "NoCopy", "boolean", isBool, false)) options.NoCopy = true;
  const labels = field(value, "Labels", "map of strings", isStringRecord, null);
  if (labels) options.Labels = labels;
  const driver = value.DriverConfig;
  if (isObject(driver)) {
    const name = field(driver, "Name", "string", isString, "");
    checkVolumeDriver(name);
    const driverOptions = field(driver, "Options", "map of strings", isStringRecord, null);
    options.DriverConfig = {
      ...(name ? { Name: name } : {}),
      ...(driverOptions ? { Options: driverOptions } : {}),
    };
  }
  return options;
}

/** HostConfig.Mounts as dockerd's volume/mounts validator takes them (errors worded as its). */
function parseMounts(value: unknown): MountRequest[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw badRequest("invalid Mounts: want a list");
  return value.map((entry: unknown) => {
    if (!isObject(entry)) throw badRequest("invalid Mounts: want a list of objects");
    const type = field(entry, "Type", "string", isString, "");
    const source = field(entry, "Source", "string", isString, "");
    const target = field(entry, "Target", "string", isString, "");
    const readOnly = field(entry, "ReadOnly", "boolean", isBool, false);
    if (!target.startsWith("/"))
      throw badRequest(
        `invalid mount config for type "${type}": invalid mount path: '${target}' mount path must be absolute`,
      );
    if (posix.normalize(target) === "/")
      throw badRequest(
        `invalid mount config for type "${type}": invalid specification: destination can't be '/'`,
      );
    for (const other of ["BindOptions", "TmpfsOptions", "VolumeOptions"])
      if (
        entry[other] !== undefined &&
        entry[other] !== null &&
        other !== `${type[0]?.toUpperCase()}${type.slice(1)}Options`
      )
        throw badRequest(`invalid mount config for type "${type}": field ${other} must not be specified`);
    if (type === "bind") {
      if (!source.startsWith("/"))
        throw badRequest(
          `invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`,
        );
      if (!existsSync(source))
        throw badRequest(`invalid mount config for type "bind": bind source path does not exist: ${source}`);
      return { Type: type, Source: source, Target: target, ReadOnly: readOnly };
    }
    if (type === "tmpfs") {
      if (source !== "")
        throw badRequest(`invalid mount config for type "tmpfs": field Source must not be specified`);
      const options = isObject(entry.TmpfsOptions) ? entry.TmpfsOptions : {};
      const size = field(options, "SizeBytes", "number", isNumber, 0);
      const mode = field(options, "Mode", "number", isNumber, 0);
      return {
        Type: type,
        Source: "",
        Target: target,
        ReadOnly: readOnly,
        TmpfsOptions: { ...(size > 0 ? { SizeBytes: size } : {}), ...(mode > 0 ? { Mode: mode } : {}) },
      };
    }
    if (type === "volume") {
      if (source !== "") checkVolumeName(source);
      const volumeOptions = parseVolumeOptions(target, entry.VolumeOptions);
      return {
        Type: type,
        Source: source,
        Target: target,
        ReadOnly: readOnly,
        ...(volumeOptions ? { VolumeOptions: volumeOptions } : {}),
      };
    }
    throw badRequest(`mount type unknown: "${type}"`);
  });
}

export interface CreateRequest {
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** NetworkingConfig.EndpointsConfig: network name → its endpoint settings (aliases, addresses). */
  endpoints: Record<string, { Aliases?: string[]; IPAMConfig?: EndpointIpamConfig }>;
}

type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field<T>(
  source: Json,
  key: string,
  what: string,
  check: (value: unknown) => value is T,
  fallback: T,
): T {
  const value = source[key];
  if (value === undefined || value === null) return fallback;
  if (!check(value)) throw badRequest(`invalid ${what} in ${key}: ${JSON.stringify(value)}`);
  return value;
}

const isString = (value: unknown): value is string => typeof value === "string";
const isBool = (value: unknown): value is boolean => typeof value === "boolean";
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === "string");
const isStringRecord = (value: unknown): value is Record<string, string> =>
  isObject(value) && Object.values(value).every((item) => typeof item === "string");
const isKeySet = (value: unknown): value is Record<string, Record<string, never>> => isObject(value);

/** Cmd and Entrypoint: an array, or (old clients) one string. */
function command(source: Json, key: string): string[] | null {
  const value = source[key];
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value === "" ? [] : [value];
  if (isStringArray(value)) return value;
  throw badRequest(`invalid ${key}: want a list of strings`);
}

export function parseConfig(body: Json): ContainerConfig {
  const image = field(body, "Image", "string", isString, "");
  if (image === "") throw badRequest("config.Image must be set: this engine runs containers from images");
  const config: ContainerConfig = {
    Hostname: field(body, "Hostname", "string", isString, ""),
    Domainname: field(body, "Domainname", "string", isString, ""),
    User: field(body, "User", "string", isString, ""),
    AttachStdin: field(body, "AttachStdin", "boolean", isBool, false),
    AttachStdout: field(body, "AttachStdout", "boolean", isBool, false),
    AttachStderr: field(body, "AttachStderr", "boolean", isBool, false),
    ExposedPorts: field(body, "ExposedPorts", "object", isKeySet, null),
    Tty: field(body, "Tty", "boolean", isBool, false),
    OpenStdin: field(body, "OpenStdin", "boolean", isBool, false),
    StdinOnce: field(body, "StdinOnce", "boolean", isBool, false),
    Env: field(body, "Env", "list of strings", isStringArray, null),
    Cmd: command(body, "Cmd"),
    Image: image,
    Volumes: field(body, "Volumes", "object", isKeySet, null),
    WorkingDir: field(body, "WorkingDir", "string", isString, ""),
    Entrypoint: command(body, "Entrypoint"),
    OnBuild: null,
    Labels: field(body, "Labels", "map of strings", isStringRecord, {}),
  };
  const stopSignal = field(body, "StopSignal", "string", isString, "");
  if (stopSignal) config.StopSignal = stopSignal;
  const stopTimeout = field(body, "StopTimeout", "number", isNumber, -1);
  if (stopTimeout >= 0) config.StopTimeout = stopTimeout;
  const healthcheck = parseHealthConfig(body.Healthcheck);
  if (healthcheck) config.Healthcheck = healthcheck;
  for (const entry of config.Env ?? []) {
    if (entry === "" || entry.startsWith("=")) throw badRequest(`invalid environment variable: ${entry}`);
  }
  return config;
}

const RESTART_NAMES = new Set(["", "no", "always", "unless-stopped", "on-failure"]);

export function parseRestartPolicy(value: unknown): RestartPolicy {
  if (value === undefined || value === null) return { Name: "", MaximumRetryCount: 0 };
  if (!isObject(value)) throw badRequest("invalid RestartPolicy");
  const name = field(value, "Name", "string", isString, "");
  const retries = field(value, "MaximumRetryCount", "number", isNumber, 0);
  if (!RESTART_NAMES.has(name)) throw badRequest(`invalid restart policy '${name}'`);
  if (retries < 0 || !Number.isInteger(retries)) throw badRequest("maximum retry count cannot be negative");
  if (retries > 0 && name !== "on-failure")
    throw badRequest(`maximum retry count cannot be used with restart policy '${name}'`);
  return { Name: name as RestartPolicy["Name"], MaximumRetryCount: retries };
}

function parsePortBindings(value: unknown): Record<string, PortBinding[]> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw badRequest("invalid PortBindings");
  const bindings: Record<string, PortBinding[]> = {};
  for (const [port, list] of Object.entries(value)) {
    if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/.test(port)) throw badRequest(`invalid port specification: ${port}`);
    if (list === null) {
      bindings[port] = [];
      continue;
    }
    if (!Array.isArray(list)) throw badRequest(`invalid PortBindings for ${port}`);
    bindings[port] = list.map((entry: unknown) => {
      if (!isObject(entry)) throw badRequest(`invalid PortBindings for ${port}`);
      const hostPort = field(entry, "HostPort", "string", isString, "");
      if (hostPort !== "" && !/^\d{1,5}(-\d{1,5})?$/.test(hostPort))
        throw badRequest(`invalid port specification: ${hostPort}`);
      return { HostIp: field(entry, "HostIp", "string", isString, ""), HostPort: hostPort };
    });
  }
  return bindings;
}

export function parseHostConfig(value: unknown): HostConfig {
  const body = value === undefined || value === null ? {} : value;
  if (!isObject(body)) throw badRequest("invalid HostConfig");
  const memory = field(body, "Memory", "number", isNumber, 0);
  if (memory !== 0 && memory < 6 * 1024 * 1024) throw badRequest("Minimum memory limit allowed is 6MB");
  const nanoCpus = field(body, "NanoCpus", "number", isNumber, 0);
  if (nanoCpus < 0) throw badRequest("invalid NanoCpus: cannot be negative");
  const logConfig = isObject(body.LogConfig) ? body.LogConfig : {};
  const hostConfig: HostConfig = {
    ...body,
    Binds: field(body, "Binds", "list of strings", isStringArray, null),
    VolumesFrom: field(body, "VolumesFrom", "list of strings", isStringArray, null),
    NetworkMode: field(body, "NetworkMode", "string", isString, "default") || "default",
    PortBindings: parsePortBindings(body.PortBindings),
    PublishAllPorts: field(body, "PublishAllPorts", "boolean", isBool, false),
    RestartPolicy: parseRestartPolicy(body.RestartPolicy),
    AutoRemove: field(body, "AutoRemove", "boolean", isBool, false),
    Memory: memory,
    NanoCpus: nanoCpus,
    CpuShares: field(body, "CpuShares", "number", isNumber, 0),
    CpuQuota: field(body, "CpuQuota", "number", isNumber, 0),
    CpuPeriod: field(body, "CpuPeriod", "number", isNumber, 0),
    PidsLimit: field(body, "PidsLimit", "number", isNumber, null),
    Runtime: field(body, "Runtime", "string", isString, "runc") || "runc",
    Init: field(body, "Init", "boolean", isBool, null),
    Privileged: field(body, "Privileged", "boolean", isBool, false),
    ReadonlyRootfs: field(body, "ReadonlyRootfs", "boolean", isBool, false),
    Dns: field(body, "Dns", "list of strings", isStringArray, []),
    ExtraHosts: field(body, "ExtraHosts", "list of strings", isStringArray, null),
    Mounts: parseMounts(body.Mounts),
    Tmpfs: field(body, "Tmpfs", "map of strings", isStringRecord, null),
    CapAdd: field(body, "CapAdd", "list of strings", isStringArray, null),
    CapDrop: field(body, "CapDrop", "list of strings", isStringArray, null),
    LogConfig: {
      Type: field(logConfig, "Type", "string", isString, "json-file") || "json-file",
      Config: field(logConfig, "Config", "map of strings", isStringRecord, {}),
    },
  };
  logSettings(hostConfig.LogConfig); // refuses what the log driver does not take
  if (hostConfig.AutoRemove && hostConfig.RestartPolicy.Name !== "" && hostConfig.RestartPolicy.Name !== "no")
    throw badRequest("can't create 'AutoRemove' container with restart policy");
  for (const bind of hostConfig.Binds ?? []) parseBind(bind);
  for (const spec of hostConfig.VolumesFrom ?? []) parseVolumesFrom(spec);
  checkVolumeDriver(field(body, "VolumeDriver", "string", isString, ""));
  for (const path of Object.keys(hostConfig.Tmpfs ?? {}))
    if (!path.startsWith("/")) throw badRequest(`invalid tmpfs path: ${path}: mount path must be absolute`);
  for (const entry of hostConfig.ExtraHosts ?? []) {
    try {
      parseExtraHost(entry);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
  }
  return hostConfig;
}

/** The fields POST /containers/{id}/update changes (api/types/container.UpdateConfig); 0 leaves one as it is. */
export function parseUpdate(body: unknown, current: HostConfig): HostConfig {
  if (!isObject(body)) throw badRequest("the request body must be a JSON object");
  const next: HostConfig = { ...current };
  const memory = field(body, "Memory", "number", isNumber, 0);
  if (memory !== 0) {
    if (memory < 6 * 1024 * 1024) throw badRequest("Minimum memory limit allowed is 6MB");
    next.Memory = memory;
  }
  // MemorySwap (memory plus swap) is applied with Memory since create: moby's update checks keep the pair valid.
  const swap = field(body, "MemorySwap", "number", isNumber, 0);
  if (swap !== 0) {
    if (swap > 0 && swap < next.Memory)
      throw badRequest("Minimum memoryswap limit should be larger than memory limit, see usage");
    next.MemorySwap = swap;
  } else if (
    memory !== 0 &&
    typeof current.MemorySwap === "number" &&
    current.MemorySwap > 0 &&
    memory > current.MemorySwap
  ) {
    throw badRequest(
      "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
    );
  }
  const nanoCpus = field(body, "NanoCpus", "number", isNumber, 0);
  if (nanoCpus < 0) throw badRequest("invalid NanoCpus: cannot be negative");
  const period = field(body, "CpuPeriod", "number", isNumber, 0);
  const quota = field(body, "CpuQuota", "number", isNumber, 0);
  // NanoCpus sets the period and quota itself: once one way is in use the other is refused, as moby's
  // Container.UpdateContainer refuses it (container/container_unix.go), instead of one replacing the other.
  if (nanoCpus > 0 && current.CpuPeriod > 0)
    throw badRequest("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
  if (nanoCpus > 0 && current.CpuQuota > 0)
    throw badRequest("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
  if (period > 0 && current.NanoCpus > 0)
    throw badRequest("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
  if (quota > 0 && current.NanoCpus > 0)
    throw badRequest("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
  if (nanoCpus > 0) next.NanoCpus = nanoCpus;
  for (const name of ["CpuShares", "CpuQuota", "CpuPeriod"] as const) {
    const value = field(body, name, "number", isNumber, 0);
    if (value < 0) throw badRequest(`invalid ${name}: cannot be negative`);
    if (value > 0) next[name] = value;
  }
  const pids = field(body, "PidsLimit", "number", isNumber, null);
  if (pids !== null) next.PidsLimit = pids;
  if (body.RestartPolicy !== undefined && body.RestartPolicy !== null) {
    const policy = parseRestartPolicy(body.RestartPolicy);
    if (policy.Name !== "") {
      if (current.AutoRemove && policy.Name !== "no")
        throw badRequest("Restart policy cannot be updated because AutoRemove is enabled for the container");
      next.RestartPolicy = policy;
    }
  }
  return next;
}

/** Go's path.Clean: a container path as dockerd keeps it (`/a/b/` → `/a/b`). */
export function cleanPath(path: string): string {
  return posix.normalize(path).replace(/(.)\/+$/, "$1");
}

export interface Bind {
  /** An absolute source is a host path (bind); anything else names a volume (none: an anonymous one). */
  type: "bind" | "volume";
  source: string;
  destination: string;
  readonly: boolean;
  /** The mode as given (`ro`, `rw,z`, `nocopy` …), shown as inspect's Mode. */
  mode: string;
  /** A new, empty volume gets what the image has at the destination (not with `nocopy`). */
  copyData: boolean;
}

const RW_MODES = new Set(["ro", "rw"]);
const LABEL_MODES = new Set(["z", "Z"]);
const PROPAGATION_MODES = new Set(["private", "rprivate", "shared", "rshared", "slave", "rslave"]);
const CONSISTENCY_MODES = new Set(["consistent", "cached", "delegated"]);
const COPY_MODES = new Set(["nocopy"]);

/** volume/mounts linuxValidMountMode: known options, at most one of each kind. */
function validMode(mode: string): boolean {
  if (mode === "") return true;
  const counts = new Map<Set<string>, number>();
  for (const option of mode.split(",")) {
    const kind = [RW_MODES, LABEL_MODES, PROPAGATION_MODES, CONSISTENCY_MODES, COPY_MODES].find((modes) =>
      modes.has(option),
    );
    if (!kind) return false;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts.values()].every((count) => count === 1);
}

/**
 * A Binds entry as moby's linuxParser.ParseMountRaw reads it: `HOST:CONTAINER[:MODE]` binds a host path,
 * `NAME:CONTAINER[:MODE]` mounts a volume (made if missing), `CONTAINER` alone a new anonymous volume.
 */
export function parseBind(spec: string): Bind {
  const parts = spec.split(":");
  const invalid = (): never => {
    throw badRequest(`invalid volume specification: '${spec}'`);
  };
  if (parts[0] === "" || parts.length > 3) invalid();
  // One part is the destination of an anonymous volume; two whose second is a mode (`/data:ro`) are invalid.
  const [source, destination, mode] =
    parts.length === 1 ? ["", parts[0] ?? "", ""] : [parts[0] ?? "", parts[1] ?? "", parts[2] ?? ""];
  if (parts.length === 2 && validMode(destination)) invalid();
  if (!validMode(mode)) throw badRequest(`invalid mode: ${mode}`);
  const type = source.startsWith("/") ? "bind" : "volume";
  const specError = (message: string): never => {
    throw badRequest(
      `invalid volume specification: '${spec}': invalid mount config for type "${type}": ${message}`,
    );
  };
  if (!destination.startsWith("/"))
    specError(`invalid mount path: '${destination}' mount path must be absolute`);
  if (posix.normalize(destination) === "/") specError("invalid specification: destination can't be '/'");
  const options = mode === "" ? [] : mode.split(",");
  if (type === "bind" && options.includes("nocopy")) specError("field VolumeOptions must not be specified");
  if (type === "volume" && source !== "") checkVolumeName(source);
  return {
    type,
    source,
    destination: cleanPath(destination),
    readonly: options.includes("ro"),
    mode,
    copyData: !options.includes("nocopy"),
  };
}

/** `CONTAINER[:MODE]` of --volumes-from, as moby's ParseVolumesFrom: a mode without propagation or nocopy. */
export function parseVolumesFrom(spec: string): { container: string; readonly: boolean } {
  if (spec === "") throw badRequest("volumes-from specification cannot be an empty string");
  const at = spec.indexOf(":");
  const container = at < 0 ? spec : spec.slice(0, at);
  const mode = at < 0 ? "" : spec.slice(at + 1);
  const options = mode === "" ? [] : mode.split(",");
  if (!validMode(mode) || options.some((option) => PROPAGATION_MODES.has(option) || COPY_MODES.has(option)))
    throw badRequest(`invalid mode: ${mode}`);
  return { container, readonly: options.includes("ro") };
}

export function parseCreateRequest(body: unknown): CreateRequest {
  if (!isObject(body)) throw badRequest("the request body must be a JSON object");
  const config = parseConfig(body);
  const hostConfig = parseHostConfig(body.HostConfig);
  // Config.Volumes (`-v /path`, as the docker CLI sends it): each a new anonymous volume at create.
  for (const path of Object.keys(config.Volumes ?? {}))
    if (path.includes(":") || parseBind(path).type !== "volume")
      throw badRequest(`invalid volume path: ${path}`);
  // Checked now, as dockerd does at create: HostConfig's privileges, devices, rlimits and the other limits.
  hostRunOptions(hostConfig, config.Hostname);
  checkNetContainerMode(config, hostConfig);
  checkResourceSettings(hostConfig);
  const endpoints: CreateRequest["endpoints"] = {};
  const networking = body.NetworkingConfig;
  if (isObject(networking) && isObject(networking.EndpointsConfig)) {
    for (const [name, settings] of Object.entries(networking.EndpointsConfig)) {
      const aliases = isObject(settings) && isStringArray(settings.Aliases) ? settings.Aliases : undefined;
      const ipam = isObject(settings) ? endpointIpamConfig(settings.IPAMConfig) : undefined;
      endpoints[name] = { ...(aliases ? { Aliases: aliases } : {}), ...(ipam ? { IPAMConfig: ipam } : {}) };
    }
  }
  return { config, hostConfig, endpoints };
}
