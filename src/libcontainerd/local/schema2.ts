/**
 * HCS schema v2 (`hcsschema.ComputeSystem`, SchemaVersion 2.1) for process-isolated (Argon)
 * Windows containers on RS5 and later, as hcsshim's hcsoci/hcsdoc_wcow.go builds it.
 */
import { NotImplementedError } from "../types/errors.js";
import { dropUndefined } from "./schema1.js";
import type { WindowsContainerConfig } from "./windows-config.js";

export interface Schema2Version {
  Major: number;
  Minor: number;
}

export interface Schema2Container {
  GuestOs?: { HostName?: string };
  Storage?: {
    Layers?: { Id: string; Path: string }[];
    Path?: string;
    QoS?: { IopsMaximum?: number; BandwidthMaximum?: number };
  };
  MappedDirectories?: { HostPath: string; ContainerPath: string; ReadOnly?: boolean }[];
  MappedPipes?: { ContainerPipeName: string; HostPath: string }[];
  Memory?: { SizeInMB: number };
  Processor?: { Count?: number; Maximum?: number; Weight?: number };
  Networking?: {
    Namespace?: string;
    AllowUnqualifiedDnsQuery?: boolean;
    DnsSearchList?: string;
    NetworkSharedContainerName?: string;
  };
  RegistryChanges?: {
    AddValues: {
      Key: { Hive: "System" | "Software"; Name: string };
      Name: string;
      Type: "String";
      StringValue: string;
    }[];
  };
}

export interface Schema2ComputeSystem {
  Owner?: string;
  SchemaVersion: Schema2Version;
  ShouldTerminateOnLastHandleClosed?: boolean;
  Container: Schema2Container;
}

export const SCHEMA_V2_1: Readonly<Schema2Version> = { Major: 2, Minor: 1 };

/**
 * hcsshim internal/hcsoci/hcsdoc_wcow.go sets this in every v2 Windows container: servercore otherwise kills
 * a process 5 s (its default WaitToKillServiceTimeout) after a CtrlShutdown, so a graceful stop with a longer
 * timeout was cut short (hcsshim's Bug36689012). With it, the caller's stop timeout decides.
 */
const WAIT_TO_KILL_SERVICE_TIMEOUT = {
  Key: { Hive: "System", Name: "ControlSet001\\Control" },
  Name: "WaitToKillServiceTimeout",
  Type: "String",
  StringValue: String(2 ** 31 - 1),
} as const;

/**
 * The v2.1 document. Only process isolation: a v2 Hyper-V container lives inside a utility VM
 * that hcsshim drives through its own guest bridge, which this backend does not implement, so
 * Hyper-V isolation stays on the v1 document (still accepted on RS5+).
 *
 * Networking: v2 has no EndpointList; a container joins an HNS namespace that holds the endpoints
 * (hcsshim internal/hcsoci/hcsdoc_wcow.go sets `Networking.Namespace`; create.go / network.go make
 * the namespace through HNS and add each endpoint, at 7c9ff7f48). This backend does not bind HNS
 * (computenetwork.dll), so it carries a namespace the caller made (`windows.network.networkNamespace`)
 * and refuses endpoints without one rather than start the container without its network.
 */
export function schema2ComputeSystem(
  id: string,
  owner: string,
  config: WindowsContainerConfig,
): Schema2ComputeSystem {
  if (config.endpointList?.length && !config.networkNamespace) {
    throw new NotImplementedError(
      `container ${id}: on schema v2 (RS5+) endpoints join through an HNS namespace, which this backend cannot create; put them in a namespace and pass its id as windows.network.networkNamespace`,
    );
  }
  // v1 took the credential spec as one field (Credentials); v2 has none. hcsshim makes a Container Credential
  // Guard instance first (HcsModifyServiceSettings AddInstance, then HcsGetServiceProperties) and puts its state
  // in Container.ContainerCredentialGuard (internal/credentials/credentials.go CreateCredentialGuard: "Can no
  // longer be enabled just through a single property"). This backend does not; refused, never dropped.
  if (config.credentials) {
    throw new NotImplementedError(
      `container ${id}: a gMSA credential spec on schema v2 (RS5+) needs a Container Credential Guard instance, which this backend cannot create`,
    );
  }
  // v1's StorageSandboxSize has no v2 field: the scratch layer is expanded before create (vmcompute
  // ExpandSandboxSize, hcsshim internal/wclayer/expandscratchsize.go; moby's graphdriver), not by the document.
  if (config.storageSandboxSize) {
    throw new NotImplementedError(
      `container ${id}: windows.resources.storage.sandboxSize has no schema v2 (RS5+) field; expand the scratch layer before creating the container`,
    );
  }
  const qos = dropUndefined({
    IopsMaximum: config.storageIopsMaximum,
    BandwidthMaximum: config.storageBandwidthMaximum,
  });
  const processor = dropUndefined({
    Count: config.processorCount,
    Maximum: config.processorMaximum,
    Weight: config.processorWeight,
  });
  const networking = dropUndefined({
    Namespace: config.networkNamespace,
    AllowUnqualifiedDnsQuery: config.allowUnqualifiedDnsQuery,
    DnsSearchList: config.dnsSearchList,
    NetworkSharedContainerName: config.networkSharedContainerName,
  });
  const container: Schema2Container = dropUndefined({
    GuestOs: config.hostname ? { HostName: config.hostname } : undefined,
    Storage: dropUndefined({
      Layers: config.layers.map((l) => ({ Id: l.id, Path: l.path })),
      Path: config.volumePath,
      QoS: Object.keys(qos).length ? qos : undefined,
    }),
    MappedDirectories: config.mappedDirectories.length
      ? config.mappedDirectories.map((d) => ({
          HostPath: d.hostPath,
          ContainerPath: d.containerPath,
          ReadOnly: d.readOnly || undefined,
        }))
      : undefined,
    MappedPipes: config.mappedPipes.length
      ? config.mappedPipes.map((p) => ({ ContainerPipeName: p.containerPipeName, HostPath: p.hostPath }))
      : undefined,
    Memory: config.memoryMaximumInMB ? { SizeInMB: config.memoryMaximumInMB } : undefined,
    Processor: Object.keys(processor).length ? processor : undefined,
    Networking: Object.keys(networking).length ? networking : undefined,
    RegistryChanges: { AddValues: [WAIT_TO_KILL_SERVICE_TIMEOUT] },
  });
  return {
    Owner: owner,
    SchemaVersion: { ...SCHEMA_V2_1 },
    ShouldTerminateOnLastHandleClosed: true,
    Container: container,
  };
}
