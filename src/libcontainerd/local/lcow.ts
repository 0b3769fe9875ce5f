/**
 * Linux containers on Windows (LCOW, the 2017–2021 v1 design): a Hyper-V utility VM booted from
 * a kernel and initrd in a boot-files folder (opengcs client/config.go defaults).
 */
import path from "node:path";
import type { OciMount, OciProcess, OciSpec } from "../../oci/spec.js";
import { InvalidArgumentError, NotImplementedError } from "../types/errors.js";
import {
  dropUndefined,
  environmentMap,
  type ProcessParameters,
  type ProcessStdio,
  type Schema1ContainerConfig,
  type Schema1MappedDir,
} from "./schema1.js";
import { memoryLimitInMB, type ProcessorLimits } from "./windows-config.js";

const win32 = path.win32;

export const DEFAULT_LCOW_BOOT_FILES_PATH = "C:\\Program Files\\Linux Containers";
/** Newer opengcs images name the kernel `kernel`; early LinuxKit samples used `bootx64.efi`. */
export const DEFAULT_LCOW_KERNEL_FILES: readonly string[] = ["kernel", "bootx64.efi"];
export const DEFAULT_LCOW_INITRD_FILE = "initrd.img";

export interface LcowOptions {
  /** Kernel file name in `bootFilesPath`, or an absolute path. Default: `kernel`, else `bootx64.efi`. */
  kernel?: string;
  /** Initrd file name in `bootFilesPath`, or an absolute path. Default: `initrd.img`. */
  initrd?: string;
  /** Folder holding both. Default: `C:\Program Files\Linux Containers`. */
  bootFilesPath?: string;
  bootParameters?: string;
}

export interface LcowBootFiles {
  bootFilesPath: string;
  kernelFile: string;
  initrdFile: string;
  bootParameters?: string;
}

/**
 * Resolves and checks the boot files. Runs before any HCS call so a missing kernel is an
 * InvalidArgumentError naming the file, not an opaque HCS failure from inside the VM worker.
 */
export function resolveLcowBootFiles(
  options: LcowOptions | undefined,
  fileExists: (hostPath: string) => boolean,
): LcowBootFiles {
  const opts = options ?? {};
  const kernelDir = opts.kernel && win32.isAbsolute(opts.kernel) ? win32.dirname(opts.kernel) : undefined;
  const initrdDir = opts.initrd && win32.isAbsolute(opts.initrd) ? win32.dirname(opts.initrd) : undefined;
  if (kernelDir && initrdDir && !sameDir(kernelDir, initrdDir)) {
    throw new InvalidArgumentError(
      `LCOW kernel and initrd must be in one folder (HvRuntime has a single ImagePath): ${opts.kernel}, ${opts.initrd}`,
    );
  }
  const bootFilesPath = opts.bootFilesPath ?? kernelDir ?? initrdDir ?? DEFAULT_LCOW_BOOT_FILES_PATH;
  for (const [what, dir] of [
    ["kernel", kernelDir],
    ["initrd", initrdDir],
  ] as const) {
    if (dir && !sameDir(dir, bootFilesPath)) {
      throw new InvalidArgumentError(`LCOW ${what} ${dir} is outside bootFilesPath ${bootFilesPath}`);
    }
  }

  const kernelCandidates = opts.kernel ? [win32.basename(opts.kernel)] : DEFAULT_LCOW_KERNEL_FILES;
  const kernelFile = kernelCandidates.find((name) => fileExists(win32.join(bootFilesPath, name)));
  if (!kernelFile) {
    const tried = kernelCandidates.map((name) => win32.join(bootFilesPath, name)).join(" or ");
    throw new InvalidArgumentError(`LCOW kernel not found: ${tried}`);
  }
  const initrdFile = opts.initrd ? win32.basename(opts.initrd) : DEFAULT_LCOW_INITRD_FILE;
  const initrdPath = win32.join(bootFilesPath, initrdFile);
  if (!fileExists(initrdPath)) {
    throw new InvalidArgumentError(`LCOW initrd not found: ${initrdPath}`);
  }
  return { bootFilesPath, kernelFile, initrdFile, bootParameters: opts.bootParameters };
}

function sameDir(a: string, b: string): boolean {
  const norm = (p: string) => win32.normalize(p).replace(/\\+$/, "").toLowerCase();
  return norm(a) === norm(b);
}

export interface LcowDocument {
  config: Schema1ContainerConfig;
  /** The spec the guest gets with the init process: bind mounts point at their utility-VM paths. */
  guestSpec: OciSpec;
}

/** moby daemon/oci_windows.go (f63f73a4a8): `uvmpath=/tmp/gcs/<id>/binds` unless the mount names one. */
const defaultUvmPath = (id: string) => `/tmp/gcs/${id}/binds`;

/**
 * The v1 utility-VM document, as moby's LCOW createLinux built it (libcontainerd/local/local_windows.go
 * at f63f73a4a8): layers from `windows.layerFolders` as `<layer>\layer.vhd` (the last folder is
 * the scratch), resources, the network endpoints, and bind mounts as directories mapped into the
 * utility VM (`CreateInUtilityVM`, `LinuxMetadata` from RS4) under the mount's `uvmpath=`.
 */
export function lcowContainerConfig(
  id: string,
  owner: string,
  spec: OciSpec,
  boot: LcowBootFiles,
  layerId: (folderName: string) => string,
  processors: ProcessorLimits,
): LcowDocument {
  if (!spec.linux) throw new InvalidArgumentError(`container ${id}: an LCOW spec needs a linux section`);
  const folders = spec.windows?.layerFolders ?? [];
  if (folders.length === 0) {
    throw new InvalidArgumentError(
      `container ${id}: an LCOW spec needs windows.layerFolders (at least the scratch layer), as moby required`,
    );
  }
  const readOnly = folders.slice(0, -1);
  const { mappedDirectories, guestMounts } = lcowMounts(id, spec.mounts ?? []);
  const network = spec.windows?.network;
  if (network?.networkNamespace) {
    throw new NotImplementedError(
      `container ${id}: an LCOW v1 document has no network namespace field; give windows.network.endpointList instead`,
    );
  }
  const config = dropUndefined<Schema1ContainerConfig>({
    SystemType: "Container",
    Name: id,
    Owner: owner,
    LayerFolderPath: folders[folders.length - 1],
    Layers: readOnly.length
      ? readOnly.map((folder) => ({
          ID: layerId(win32.basename(folder)),
          Path: win32.join(folder, "layer.vhd"),
        }))
      : null,
    HostName: spec.hostname || undefined,
    ProcessorCount: processors.processorCount,
    ProcessorWeight: processors.processorWeight,
    ProcessorMaximum: processors.processorMaximum,
    MemoryMaximumInMB: memoryLimitInMB(id, spec.windows?.resources?.memory?.limit),
    MappedDirectories: mappedDirectories.length ? mappedDirectories : undefined,
    HvPartition: true,
    EndpointList: network?.endpointList?.length ? [...network.endpointList] : undefined,
    AllowUnqualifiedDNSQuery: network?.allowUnqualifiedDNSQuery || undefined,
    DNSSearchList: network?.DNSSearchList?.length ? network.DNSSearchList.join(",") : undefined,
    NetworkSharedContainerName: network?.networkSharedContainerName || undefined,
    HvRuntime: dropUndefined({
      ImagePath: boot.bootFilesPath,
      LinuxKernelFile: boot.kernelFile,
      LinuxInitrdFile: boot.initrdFile,
      LinuxBootParameters: boot.bootParameters,
    }),
    ContainerType: "Linux",
    TerminateOnLastHandleClosed: true,
  });
  return { config, guestSpec: { ...spec, mounts: guestMounts } };
}

/** Bind mounts become directories mapped into the utility VM; other mounts go to the guest as they are. */
function lcowMounts(id: string, mounts: readonly OciMount[]) {
  const mappedDirectories: Schema1MappedDir[] = [];
  const guestMounts: OciMount[] = [];
  for (const mount of mounts) {
    if (mount.type !== "bind") {
      guestMounts.push(mount);
      continue;
    }
    if (!mount.source)
      throw new InvalidArgumentError(`container ${id}: mount ${mount.destination} has no source`);
    let uvmPath = defaultUvmPath(id);
    let readOnly = false;
    const options: string[] = [];
    for (const option of mount.options ?? []) {
      const [key, value] = option.split("=", 2) as [string, string | undefined];
      if (key === "uvmpath" && value) {
        uvmPath = value;
        continue;
      }
      if (key === "ro") readOnly = true;
      else if (key !== "rw" && key !== "rbind" && key !== "bind") {
        throw new InvalidArgumentError(
          `container ${id}: mount ${mount.destination}: option ${JSON.stringify(option)} is not supported for LCOW bind mounts`,
        );
      }
      options.push(option);
    }
    const inVm = path.posix.join(uvmPath, mount.destination);
    mappedDirectories.push({
      HostPath: mount.source,
      ContainerPath: inVm,
      ReadOnly: readOnly,
      BandwidthMaximum: 0,
      IOPSMaximum: 0,
      CreateInUtilityVM: true,
      // RS4+ (moby); LCOW itself needs RS5, so always.
      LinuxMetadata: true,
    });
    guestMounts.push({ ...mount, source: inVm, options });
  }
  return { mappedDirectories, guestMounts };
}

/**
 * LCOW processes (opengcs service/gcs/prot/protocol.go ProcessParameters, and moby's Start/Exec):
 * the container's first process carries the whole OCI spec in OCISpecification (the guest runs
 * its `process`); every later one (an exec) must leave it out and give CommandArgs, Environment
 * and WorkingDirectory itself. `initSpec` is given for the first process only.
 */
export function lcowProcessParameters(
  process: OciProcess,
  stdio: ProcessStdio,
  initSpec?: OciSpec,
): ProcessParameters {
  if (!process.args || process.args.length === 0) {
    throw new InvalidArgumentError("an LCOW process needs args");
  }
  return dropUndefined({
    CommandArgs: [...process.args],
    WorkingDirectory: process.cwd || undefined,
    Environment: environmentMap(process.env),
    EmulateConsole: stdio.terminal || undefined,
    CreateStdInPipe: stdio.stdin || undefined,
    CreateStdOutPipe: stdio.stdout || undefined,
    CreateStdErrPipe: (stdio.stderr && !stdio.terminal) || undefined,
    ConsoleSize: [process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0],
    OCISpecification: initSpec ? { ...initSpec, process } : undefined,
  });
}
