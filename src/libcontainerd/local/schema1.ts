/**
 * HCS schema v1 documents (hcsshim internal/hcs/schema1): the create document for Windows
 * builds before RS5, and the process parameters every build accepts.
 */
import type { OciProcess } from "../../oci/spec.js";
import { commandLineFor } from "./command-line.js";
import type { WindowsContainerConfig } from "./windows-config.js";

export interface Schema1Layer {
  ID: string;
  Path: string;
}

export interface Schema1MappedDir {
  HostPath: string;
  ContainerPath: string;
  ReadOnly: boolean;
  BandwidthMaximum: number;
  IOPSMaximum: number;
  CreateInUtilityVM: boolean;
  /** RS4+: Linux permissions and ownership on a directory mapped into an LCOW utility VM. */
  LinuxMetadata?: boolean;
}

export interface Schema1MappedPipe {
  HostPath: string;
  ContainerPipeName: string;
}

export interface Schema1HvRuntime {
  ImagePath?: string;
  SkipTemplate?: boolean;
  LinuxInitrdFile?: string;
  LinuxKernelFile?: string;
  LinuxBootParameters?: string;
  BootSource?: string;
  WritableBootSource?: boolean;
}

/** `schema1.ContainerConfig`. SystemType, Name, Layers and HvPartition are always present (no omitempty in Go). */
export interface Schema1ContainerConfig {
  SystemType: "Container";
  Name: string;
  Owner?: string;
  VolumePath?: string;
  IgnoreFlushesDuringBoot?: boolean;
  LayerFolderPath?: string;
  Layers: Schema1Layer[] | null;
  Credentials?: string;
  ProcessorCount?: number;
  ProcessorWeight?: number;
  ProcessorMaximum?: number;
  StorageIOPSMaximum?: number;
  StorageBandwidthMaximum?: number;
  StorageSandboxSize?: number;
  MemoryMaximumInMB?: number;
  HostName?: string;
  MappedDirectories?: Schema1MappedDir[];
  MappedPipes?: Schema1MappedPipe[];
  HvPartition: boolean;
  NetworkSharedContainerName?: string;
  EndpointList?: string[];
  HvRuntime?: Schema1HvRuntime;
  Servicing?: boolean;
  AllowUnqualifiedDNSQuery?: boolean;
  DNSSearchList?: string;
  ContainerType?: string;
  TerminateOnLastHandleClosed?: boolean;
}

/**
 * The v1 create document for a Windows container. `TerminateOnLastHandleClosed` is set so a
 * crashed or closed client never leaves an orphaned compute system behind (moby relied on
 * terminating leftovers at the next start instead).
 */
export function schema1ContainerConfig(
  id: string,
  owner: string,
  config: WindowsContainerConfig,
): Schema1ContainerConfig {
  const doc: Schema1ContainerConfig = {
    SystemType: "Container",
    Name: id,
    Owner: owner,
    VolumePath: config.volumePath?.replace(/\\$/, ""),
    IgnoreFlushesDuringBoot: config.ignoreFlushesDuringBoot,
    LayerFolderPath: config.scratchFolder,
    Layers: config.layers.length > 0 ? config.layers.map((l) => ({ ID: l.id, Path: l.path })) : null,
    Credentials: config.credentials,
    ProcessorCount: config.processorCount,
    ProcessorWeight: config.processorWeight,
    ProcessorMaximum: config.processorMaximum,
    StorageIOPSMaximum: config.storageIopsMaximum,
    StorageBandwidthMaximum: config.storageBandwidthMaximum,
    StorageSandboxSize: config.storageSandboxSize,
    MemoryMaximumInMB: config.memoryMaximumInMB,
    HostName: config.hostname,
    MappedDirectories: config.mappedDirectories.length
      ? config.mappedDirectories.map((d) => ({
          HostPath: d.hostPath,
          ContainerPath: d.containerPath,
          ReadOnly: d.readOnly,
          BandwidthMaximum: 0,
          IOPSMaximum: 0,
          CreateInUtilityVM: false,
        }))
      : undefined,
    MappedPipes: config.mappedPipes.length
      ? config.mappedPipes.map((p) => ({ HostPath: p.hostPath, ContainerPipeName: p.containerPipeName }))
      : undefined,
    HvPartition: config.hyperV,
    NetworkSharedContainerName: config.networkSharedContainerName,
    EndpointList: config.endpointList,
    HvRuntime: config.hyperV ? { ImagePath: config.utilityVmImagePath } : undefined,
    Servicing: config.servicing,
    AllowUnqualifiedDNSQuery: config.allowUnqualifiedDnsQuery,
    DNSSearchList: config.dnsSearchList,
    TerminateOnLastHandleClosed: true,
  };
  return dropUndefined(doc);
}

/** `schema1.ProcessConfig` (also valid as v2 ProcessParameters: same JSON names). */
export interface ProcessParameters {
  ApplicationName?: string;
  CommandLine?: string;
  CommandArgs?: string[];
  User?: string;
  WorkingDirectory?: string;
  Environment?: Record<string, string>;
  EmulateConsole?: boolean;
  CreateStdInPipe?: boolean;
  CreateStdOutPipe?: boolean;
  CreateStdErrPipe?: boolean;
  /** [Height, Width]; Go always emits it (a fixed-size array), as [0,0] when unset. */
  ConsoleSize: [number, number];
  CreateInUtilityVm?: boolean;
  OCISpecification?: unknown;
}

export interface ProcessStdio {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  terminal: boolean;
}

/** Process parameters for a Windows guest: one escaped CommandLine, like moby and hcsshim. */
export function windowsProcessParameters(process: OciProcess, stdio: ProcessStdio): ProcessParameters {
  return dropUndefined({
    CommandLine: commandLineFor(process),
    User: process.user?.username || undefined,
    WorkingDirectory: process.cwd || undefined,
    Environment: environmentMap(process.env),
    EmulateConsole: stdio.terminal || undefined,
    CreateStdInPipe: stdio.stdin || undefined,
    CreateStdOutPipe: stdio.stdout || undefined,
    // A console merges both streams into stdout.
    CreateStdErrPipe: (stdio.stderr && !stdio.terminal) || undefined,
    ConsoleSize: [process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0],
  });
}

/** `KEY=VALUE` strings to HCS's map; entries without a value are dropped, as hcsshim does. */
export function environmentMap(env: readonly string[] | undefined): Record<string, string> | undefined {
  if (!env || env.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const value = entry.slice(eq + 1);
    if (value === "") continue;
    out[entry.slice(0, eq)] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Go's omitempty for optional fields: keeps the JSON what hcsshim would send. */
export function dropUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}
