/**
 * The parts of the OCI runtime spec (runtime-spec 1.0.2, config.md) this library reads or writes.
 * Unknown fields pass through untouched: the spec goes to the runtime as JSON.
 */
import type { LinuxResources, WindowsResources } from "./resources.js";

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  /** Windows */
  username?: string;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args?: string[];
  /** Windows: the whole command line, used instead of args when set. */
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: {
    bounding?: string[];
    effective?: string[];
    inheritable?: string[];
    permitted?: string[];
    ambient?: string[];
  };
  /** Unsigned 64-bit: RLIM_INFINITY (2^64-1, docker's -1) is a bigint, which the spec's JSON carries exactly. */
  rlimits?: { type: string; hard: number | bigint; soft: number | bigint }[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciLinux {
  namespaces?: { type: string; path?: string }[];
  uidMappings?: { containerID: number; hostID: number; size: number }[];
  gidMappings?: { containerID: number; hostID: number; size: number }[];
  devices?: {
    path: string;
    type: string;
    major: number;
    minor: number;
    fileMode?: number;
    uid?: number;
    gid?: number;
  }[];
  cgroupsPath?: string;
  resources?: LinuxResources & {
    devices?: { allow: boolean; type?: string; major?: number; minor?: number; access?: string }[];
  };
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: unknown;
  sysctl?: Record<string, string>;
}

export interface OciWindows {
  layerFolders?: string[];
  resources?: WindowsResources;
  network?: {
    endpointList?: string[];
    allowUnqualifiedDNSQuery?: boolean;
    DNSSearchList?: string[];
    networkSharedContainerName?: string;
    /** An existing HNS namespace (a GUID) that already holds the endpoints. */
    networkNamespace?: string;
  };
  hyperv?: { utilityVMPath?: string };
  credentialSpec?: unknown;
  servicing?: boolean;
  ignoreFlushesDuringBoot?: boolean;
}

export interface OciSpec {
  ociVersion: string;
  process?: OciProcess;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  hooks?: unknown;
  annotations?: Record<string, string>;
  linux?: OciLinux;
  windows?: OciWindows;
  [extra: string]: unknown;
}
