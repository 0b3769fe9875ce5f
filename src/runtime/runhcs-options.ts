import type { OptionField, OptionMessage } from "./option-fields.js";

/**
 * `containerd.runhcs.v1.Options`, hcsshim's `cmd/containerd-shim-runhcs-v1/options/runhcs.proto`
 * (fields 1–16 as vendored by moby; 17–20 from later hcsshim). There is no generated code for it:
 * the proto lives in hcsshim, not in containerd's API, so it is encoded from this table.
 */
export const RUNHCS_OPTIONS: OptionMessage = {
  typeUrl: "containerd.runhcs.v1.Options",
  fields: [
    { goName: "Debug", number: 1, kind: { type: "bool" } },
    { goName: "DebugType", number: 2, kind: { type: "enum", values: { NPIPE: 0, FILE: 1, ETW: 2 } } },
    { goName: "RegistryRoot", number: 3, kind: { type: "string" } },
    { goName: "SandboxImage", number: 4, kind: { type: "string" } },
    { goName: "SandboxPlatform", number: 5, kind: { type: "string" } },
    {
      goName: "SandboxIsolation",
      number: 6,
      kind: { type: "enum", values: { PROCESS: 0, HYPERVISOR: 1 } },
    },
    { goName: "BootFilesRootPath", number: 7, kind: { type: "string" } },
    { goName: "VmProcessorCount", number: 8, kind: { type: "int32" } },
    { goName: "VmMemorySizeInMb", number: 9, kind: { type: "int32" } },
    { goName: "GPUVHDPath", number: 10, kind: { type: "string" } },
    { goName: "ScaleCpuLimitsToSandbox", number: 11, kind: { type: "bool" } },
    { goName: "DefaultContainerScratchSizeInGb", number: 12, kind: { type: "int32" } },
    { goName: "DefaultVmScratchSizeInGb", number: 13, kind: { type: "int32" } },
    { goName: "ShareScratch", number: 14, kind: { type: "bool" } },
    { goName: "NCProxyAddr", number: 15, kind: { type: "string" } },
    { goName: "LogLevel", number: 16, kind: { type: "string" } },
    { goName: "IoRetryTimeoutInSec", number: 17, kind: { type: "int32" } },
    { goName: "DefaultContainerAnnotations", number: 18, kind: { type: "string-map" } },
    { goName: "NoInheritHostTimezone", number: 19, kind: { type: "bool" } },
    { goName: "ScrubLogs", number: 20, kind: { type: "bool" } },
  ] satisfies OptionField[],
};
