/**
 * Validates an OCI Windows spec once and reduces it to what both HCS schemas need, following
 * moby's local backend (daemon/internal/libcontainerd/local/local_windows.go: NewContainer).
 */
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import type { OciMount, OciSpec } from "../../oci/spec.js";
import { InvalidArgumentError } from "../types/errors.js";
import type { WindowsResources } from "../types/resources.js";

const win32 = path.win32;

/** What a document builder needs from the host besides the spec; injectable so tests run on Linux. */
export interface DocumentContext {
  id: string;
  /** HCS `Owner`; the namespace, so listContainers can filter on it. */
  owner: string;
  /** The GUID HCS expects for a layer folder name (vmcompute's NameToGuid on Windows). */
  layerId: (folderName: string) => string;
  pathExists: (hostPath: string) => boolean;
  /** The host's logical processors (default: this machine's); a larger `cpu.count` is lowered to it. */
  hostProcessors?: number;
  /** Told what was adjusted (a `cpu.count` above the host's processors). */
  warn?: (message: string) => void;
}

export interface LayerRef {
  id: string;
  path: string;
}

export interface MappedDirectory {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface MappedPipe {
  hostPath: string;
  containerPipeName: string;
}

export interface WindowsContainerConfig {
  hostname?: string;
  /** Read-only layers, in the spec's order. */
  layers: LayerRef[];
  /** The writable (scratch) layer folder: the last entry of layerFolders. */
  scratchFolder: string;
  /** Process isolation: `\\?\Volume{GUID}\`, with its trailing backslash. */
  volumePath?: string;
  hyperV: boolean;
  /** Hyper-V isolation: `<layer>\UtilityVM`. */
  utilityVmImagePath?: string;
  mappedDirectories: MappedDirectory[];
  mappedPipes: MappedPipe[];
  processorCount?: number;
  processorWeight?: number;
  processorMaximum?: number;
  memoryMaximumInMB?: number;
  storageIopsMaximum?: number;
  storageBandwidthMaximum?: number;
  storageSandboxSize?: number;
  endpointList?: string[];
  allowUnqualifiedDnsQuery?: boolean;
  dnsSearchList?: string;
  networkSharedContainerName?: string;
  /** An existing HNS namespace holding the endpoints (schema v2's way to attach them). */
  networkNamespace?: string;
  credentials?: string;
  ignoreFlushesDuringBoot?: boolean;
  servicing?: boolean;
}

/**
 * `\\?\Volume{GUID}`, with or without its trailing backslash (hcsshim hcsdoc_wcow.go appends it "for
 * back-compat"), always with its braces (hcsshim's regular expression requires the closing one).
 */
const VOLUME_GUID_PATH =
  /^\\\\\?\\Volume\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}\\?$/;
const PIPE_PREFIX = /^\\\\\.\\pipe\\/i;
const MIB = 1024 * 1024;

export function windowsContainerConfig(spec: OciSpec, ctx: DocumentContext): WindowsContainerConfig {
  const windows = spec.windows;
  if (!windows) throw new InvalidArgumentError(`container ${ctx.id}: spec has no windows section`);
  if (spec.root?.readonly) {
    throw new InvalidArgumentError(`container ${ctx.id}: a read-only root is not supported on Windows`);
  }
  const folders = windows.layerFolders ?? [];
  if (folders.length < 2) {
    throw new InvalidArgumentError(
      `container ${ctx.id}: windows.layerFolders needs at least a base layer and the scratch layer (got ${folders.length})`,
    );
  }
  const scratchFolder = folders[folders.length - 1]!;
  const readOnlyFolders = folders.slice(0, -1);
  const layers = readOnlyFolders.map((folder) => ({ id: ctx.layerId(win32.basename(folder)), path: folder }));

  // Go's nil: a spec read from JSON may say `"hyperv": null` for process isolation.
  const hyperV = windows.hyperv != null;
  let volumePath: string | undefined;
  let utilityVmImagePath: string | undefined;
  if (hyperV) {
    utilityVmImagePath = windows.hyperv?.utilityVMPath || findUtilityVm(readOnlyFolders, ctx);
  } else {
    const root = spec.root?.path ?? "";
    if (!VOLUME_GUID_PATH.test(root)) {
      throw new InvalidArgumentError(
        `container ${ctx.id}: process isolation needs root.path as a volume GUID path \\\\?\\Volume{GUID}\\ (got ${JSON.stringify(root)})`,
      );
    }
    volumePath = root.endsWith("\\") ? root : `${root}\\`;
  }

  const mappedDirectories: MappedDirectory[] = [];
  const mappedPipes: MappedPipe[] = [];
  for (const mount of spec.mounts ?? []) {
    classifyMount(ctx.id, mount, mappedDirectories, mappedPipes);
  }

  const resources = windows.resources;
  const network = windows.network;
  return {
    ...processorLimits(resources?.cpu, ctx, hyperV),
    hostname: spec.hostname || undefined,
    layers,
    scratchFolder,
    volumePath,
    hyperV,
    utilityVmImagePath,
    mappedDirectories,
    mappedPipes,
    memoryMaximumInMB: memoryLimitInMB(ctx.id, resources?.memory?.limit),
    storageIopsMaximum: resources?.storage?.iops || undefined,
    storageBandwidthMaximum: resources?.storage?.bps || undefined,
    storageSandboxSize: resources?.storage?.sandboxSize || undefined,
    endpointList: network?.endpointList?.length ? [...network.endpointList] : undefined,
    allowUnqualifiedDnsQuery: network?.allowUnqualifiedDNSQuery || undefined,
    dnsSearchList: network?.DNSSearchList?.length ? network.DNSSearchList.join(",") : undefined,
    networkSharedContainerName: network?.networkSharedContainerName || undefined,
    networkNamespace: network?.networkNamespace || undefined,
    credentials: typeof windows.credentialSpec === "string" ? windows.credentialSpec : undefined,
    ignoreFlushesDuringBoot: windows.ignoreFlushesDuringBoot || undefined,
    servicing: windows.servicing || undefined,
  };
}

/**
 * `windows.resources.memory.limit` (bytes) as HCS's whole MiB (MemoryMaximumInMB, Memory.SizeInMB), rounded
 * down as moby does. A limit under 1 MiB would round to 0, which HCS reads as "no limit": refused instead.
 */
export function memoryLimitInMB(id: string, limit: unknown): number | undefined {
  if (limit === undefined || limit === null || limit === 0) return undefined;
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < MIB) {
    throw new InvalidArgumentError(
      `container ${id}: windows.resources.memory.limit must be a whole number of bytes, at least 1 MiB (HCS limits memory in MiB), not ${JSON.stringify(limit)}`,
    );
  }
  return Math.floor(limit / MIB);
}

export interface ProcessorLimits {
  processorCount?: number;
  processorWeight?: number;
  processorMaximum?: number;
}

/** HCS's processor weight and maximum run from 1 to 10000; 0 (left out) means none (hcsshim internal/hcs/schema1/schema1.go). */
const MAX_PROCESSOR_WEIGHT = 10_000;
const MAX_PROCESSOR_MAXIMUM = 10_000;

/**
 * `windows.resources.cpu` as HCS takes it (ProcessorCount/Weight/Maximum in v1, Processor.Count/Weight/Maximum
 * in v2), checked as the references check it before HCS sees it:
 * - shares and maximum are 0–10000 (schema1.go: "Range is from 1 to 10000"; moby daemon_windows.go
 *   verifyPlatformContainerResources: windowsMaxCPUShares 10000, CPUPercent ≤ 100 → maximum ≤ 10000);
 * - a count above the host's processors is lowered to them, with a warning (moby local_windows.go
 *   extractResourcesFromSpec, hcsshim internal/hcsoci/hcsdoc_wcow.go NormalizeProcessorCount);
 * - a process-isolated container's job object takes one of count, shares and maximum: they are mutually
 *   exclusive (OCI config-windows.md; hcsshim hcsdoc_wcow.go ConvertCPULimits refuses more than one; moby
 *   drops all but one). A Hyper-V utility VM takes a count with a maximum (moby oci_windows.go sends both).
 */
export function processorLimits(
  cpu: WindowsResources["cpu"],
  ctx: Pick<DocumentContext, "id" | "hostProcessors" | "warn">,
  hyperV: boolean,
): ProcessorLimits {
  if (!cpu) return {};
  const field = (name: "count" | "shares" | "maximum", max: number): number | undefined => {
    const value: unknown = cpu[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
      throw new InvalidArgumentError(
        `container ${ctx.id}: windows.resources.cpu.${name} must be an integer from 0 to ${max}, not ${JSON.stringify(value)}`,
      );
    }
    return value || undefined;
  };
  let count = field("count", Number.MAX_SAFE_INTEGER);
  const weight = field("shares", MAX_PROCESSOR_WEIGHT);
  const maximum = field("maximum", MAX_PROCESSOR_MAXIMUM);
  const host = ctx.hostProcessors ?? os.availableParallelism();
  if (count !== undefined && count > host) {
    ctx.warn?.(
      `windows.resources.cpu.count ${count} is more than the host's ${host} processors; using ${host}`,
    );
    count = host;
  }
  const set = [count, weight, maximum].filter((v) => v !== undefined).length;
  if (!hyperV && set > 1) {
    throw new InvalidArgumentError(
      `container ${ctx.id}: windows.resources.cpu count, shares and maximum are mutually exclusive for a process-isolated container; give one`,
    );
  }
  return { processorCount: count, processorWeight: weight, processorMaximum: maximum };
}

function findUtilityVm(folders: readonly string[], ctx: DocumentContext): string {
  for (const folder of folders) {
    const candidate = win32.join(folder, "UtilityVM");
    if (ctx.pathExists(candidate)) return candidate;
  }
  throw new InvalidArgumentError(
    `container ${ctx.id}: Hyper-V isolation needs a utility VM image, but no layer has a UtilityVM folder (looked in ${folders.join(", ")})`,
  );
}

function classifyMount(id: string, mount: OciMount, dirs: MappedDirectory[], pipes: MappedPipe[]): void {
  if (mount.type && mount.type !== "bind") {
    throw new InvalidArgumentError(`container ${id}: mount type ${mount.type} is not supported on Windows`);
  }
  if (!mount.source) {
    throw new InvalidArgumentError(`container ${id}: mount ${mount.destination} has no source`);
  }
  if (PIPE_PREFIX.test(mount.destination)) {
    pipes.push({ hostPath: mount.source, containerPipeName: mount.destination.replace(PIPE_PREFIX, "") });
    return;
  }
  dirs.push({
    hostPath: mount.source,
    containerPath: mount.destination,
    // moby compares lower-cased (local_windows.go createWindows at f63f73a4a8): "RO" is read-only too.
    readOnly: mount.options?.some((o) => o.toLowerCase() === "ro") ?? false,
  });
}

/**
 * A stable GUID for a layer folder name when vmcompute's NameToGuid is unavailable (the Linux
 * fake). A name-based UUID (v5, SHA-1), so the same folder always gets the same id. Real HCS
 * must get NameToGuid's value: this one is not it.
 */
export function nameBasedLayerId(folderName: string): string {
  const namespace = Buffer.from("6ba7b8119dad11d180b400c04fd430c8", "hex");
  const hash = createHash("sha1").update(namespace).update(folderName, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
