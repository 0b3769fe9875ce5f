/** Chooses the create document by guest OS and Windows build (hcsshim schemaversion.DetermineSchemaVersion). */
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import { FailedPreconditionError, NotImplementedError } from "../types/errors.js";
import {
  type LcowOptions,
  lcowContainerConfig,
  lcowProcessParameters,
  resolveLcowBootFiles,
} from "./lcow.js";
import {
  type ProcessParameters,
  type ProcessStdio,
  type Schema1ContainerConfig,
  schema1ContainerConfig,
  windowsProcessParameters,
} from "./schema1.js";
import { type Schema2ComputeSystem, schema2ComputeSystem } from "./schema2.js";
import { type DocumentContext, processorLimits, windowsContainerConfig } from "./windows-config.js";

export const WINDOWS_BUILD_RS1 = 14393;
export const WINDOWS_BUILD_RS3 = 16299;
export const WINDOWS_BUILD_RS4 = 17134;
export const WINDOWS_BUILD_RS5 = 17763;
/** 20H2: HCS takes processor updates of a running container (hcsshim task_hcs.go updateWCOWContainerCPU). */
export const WINDOWS_BUILD_V20H2 = 19042;

export type GuestOs = "windows" | "linux";

export type CreateDocument =
  | { schema: "v1"; guestOs: "windows"; document: Schema1ContainerConfig }
  /** `guestSpec` goes to the guest with the init process (LCOW). */
  | { schema: "v1"; guestOs: "linux"; document: Schema1ContainerConfig; guestSpec: OciSpec }
  | { schema: "v2.1"; guestOs: "windows"; document: Schema2ComputeSystem };

export interface CreateDocumentContext extends DocumentContext {
  windowsBuild: number;
  lcow?: LcowOptions;
}

/** A spec with a `linux` section is an LCOW container; everything else is a Windows container. */
export function guestOsOf(spec: OciSpec): GuestOs {
  return spec.linux ? "linux" : "windows";
}

/**
 * v1 before RS5; v2.1 from RS5 for process isolation. Hyper-V and LCOW stay on v1: their v2
 * forms need hcsshim's utility-VM guest bridge.
 */
export function createDocument(spec: OciSpec, ctx: CreateDocumentContext): CreateDocument {
  if (ctx.windowsBuild < WINDOWS_BUILD_RS1) {
    throw new FailedPreconditionError(
      `HCS needs Windows build ${WINDOWS_BUILD_RS1} (RS1) or later, this is ${ctx.windowsBuild}`,
    );
  }
  if (guestOsOf(spec) === "linux") {
    // moby allowed LCOW only from RS5 (pkg/system/lcow.go InitLCOW, e0b528fe08 "LCOW: Require RS5+ builds").
    if (ctx.windowsBuild < WINDOWS_BUILD_RS5) {
      throw new NotImplementedError(
        `Linux containers (LCOW) need Windows build ${WINDOWS_BUILD_RS5} (RS5) or later, this is ${ctx.windowsBuild}`,
      );
    }
    const boot = resolveLcowBootFiles(ctx.lcow, ctx.pathExists);
    // The utility VM is a Hyper-V partition: a count goes with a maximum there.
    const processors = processorLimits(spec.windows?.resources?.cpu, ctx, true);
    const { config, guestSpec } = lcowContainerConfig(ctx.id, ctx.owner, spec, boot, ctx.layerId, processors);
    return { schema: "v1", guestOs: "linux", document: config, guestSpec };
  }
  const config = windowsContainerConfig(spec, ctx);
  // moby's createWindows (libcontainerd/local/local_windows.go at f63f73a4a8).
  if (config.mappedPipes.length > 0 && ctx.windowsBuild < WINDOWS_BUILD_RS3) {
    throw new NotImplementedError(
      `named pipe mounts need Windows build ${WINDOWS_BUILD_RS3} (RS3) or later, this is ${ctx.windowsBuild}`,
    );
  }
  if (ctx.windowsBuild >= WINDOWS_BUILD_RS5 && !config.hyperV) {
    return { schema: "v2.1", guestOs: "windows", document: schema2ComputeSystem(ctx.id, ctx.owner, config) };
  }
  if (config.networkNamespace) {
    throw new NotImplementedError(
      `container ${ctx.id}: a schema v1 document has no network namespace; give windows.network.endpointList instead`,
    );
  }
  return { schema: "v1", guestOs: "windows", document: schema1ContainerConfig(ctx.id, ctx.owner, config) };
}

/** `initSpec`: the container's (guest) spec when this is its first process; LCOW sends it whole. */
export function processParameters(
  guestOs: GuestOs,
  process: OciProcess,
  stdio: ProcessStdio,
  initSpec?: OciSpec,
): ProcessParameters {
  return guestOs === "linux"
    ? lcowProcessParameters(process, stdio, initSpec)
    : windowsProcessParameters(process, stdio);
}
