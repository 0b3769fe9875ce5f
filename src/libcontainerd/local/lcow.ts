/**
 * Linux containers on Windows (LCOW, the 2017–2021 v1 design): a Hyper-V utility VM booted from
 * a kernel and initrd in a boot-files folder (opengcs client/config.go defaults).
 */
import path from "node:path";
import type { OciProcess, OciSpec } from "../../oci/spec.js";
import { InvalidArgumentError } from "../types/errors.js";
import {
  dropUndefined,
  type ProcessParameters,
  type ProcessStdio,
  type Schema1ContainerConfig,
} from "./schema1.js";

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

/**
 * The v1 utility-VM document. Layers come from `windows.layerFolders` when the spec has them,
 * as `<layer>\layer.vhd` (moby's LCOW layout); the scratch is the last one.
 */
export function lcowContainerConfig(
  id: string,
  owner: string,
  spec: OciSpec,
  boot: LcowBootFiles,
  layerId: (folderName: string) => string,
): Schema1ContainerConfig {
  if (!spec.linux) throw new InvalidArgumentError(`container ${id}: an LCOW spec needs a linux section`);
  const folders = spec.windows?.layerFolders ?? [];
  const readOnly = folders.slice(0, -1);
  return dropUndefined<Schema1ContainerConfig>({
    SystemType: "Container",
    Name: id,
    Owner: owner,
    LayerFolderPath: folders.length > 0 ? folders[folders.length - 1] : undefined,
    Layers: readOnly.length
      ? readOnly.map((folder) => ({
          ID: layerId(win32.basename(folder)),
          Path: win32.join(folder, "layer.vhd"),
        }))
      : null,
    HostName: spec.hostname || undefined,
    HvPartition: true,
    HvRuntime: dropUndefined({
      ImagePath: boot.bootFilesPath,
      LinuxKernelFile: boot.kernelFile,
      LinuxInitrdFile: boot.initrdFile,
      LinuxBootParameters: boot.bootParameters,
    }),
    ContainerType: "Linux",
    TerminateOnLastHandleClosed: true,
  });
}

/** LCOW processes go to the guest (GCS) as argv plus the OCI process, not as a command line. */
export function lcowProcessParameters(process: OciProcess, stdio: ProcessStdio): ProcessParameters {
  if (!process.args || process.args.length === 0) {
    throw new InvalidArgumentError("an LCOW process needs args");
  }
  return dropUndefined({
    CommandArgs: [...process.args],
    WorkingDirectory: process.cwd || undefined,
    Environment: undefined,
    EmulateConsole: stdio.terminal || undefined,
    CreateStdInPipe: stdio.stdin || undefined,
    CreateStdOutPipe: stdio.stdout || undefined,
    CreateStdErrPipe: (stdio.stderr && !stdio.terminal) || undefined,
    ConsoleSize: [process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0],
    OCISpecification: process,
  });
}
