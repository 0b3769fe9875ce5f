import { readFileSync } from "node:fs";
import { release } from "node:os";
import { InvalidArgumentError } from "../errors.js";

/**
 * A seccomp profile in docker's format (what `--security-opt seccomp=FILE` and podman's
 * /usr/share/containers/seccomp.json hold): rules that apply only for some capabilities, architectures
 * or kernels, which ociSeccomp resolves for one container into the OCI spec's linux.seccomp.
 */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  syscalls?: SeccompRule[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
}

interface SeccompRule {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

interface SeccompCondition {
  caps?: string[] | null;
  arches?: string[] | null;
  minKernel?: string;
}

/** The spec's linux.seccomp. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompRule["args"] }[];
}

/** Node's process.arch → the architecture names of a profile's conditions (moby's goToNative) and libseccomp's. */
const ARCHES: Record<string, { native: string; seccomp: string }> = {
  x64: { native: "amd64", seccomp: "SCMP_ARCH_X86_64" },
  ia32: { native: "x86", seccomp: "SCMP_ARCH_X86" },
  arm64: { native: "arm64", seccomp: "SCMP_ARCH_AARCH64" },
  arm: { native: "arm", seccomp: "SCMP_ARCH_ARM" },
  ppc64: { native: "ppc64le", seccomp: "SCMP_ARCH_PPC64LE" },
  s390x: { native: "s390x", seccomp: "SCMP_ARCH_S390X" },
  riscv64: { native: "riscv64", seccomp: "SCMP_ARCH_RISCV64" },
};

/** Where distributions keep the default profile (podman's, from docker's): an administrator's first. */
export const DEFAULT_SECCOMP_PROFILE_PATHS = [
  "/etc/containers/seccomp.json",
  "/usr/share/containers/seccomp.json",
];

/** The first default profile found (parsed), or undefined where none is installed. */
export function findDefaultSeccompProfile(
  paths: readonly string[] = DEFAULT_SECCOMP_PROFILE_PATHS,
): { path: string; profile: SeccompProfile } | undefined {
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    return { path, profile: parseSeccompProfile(text, path) };
  }
  return undefined;
}

/** A profile's JSON, checked for the shape ociSeccomp needs (InvalidArgumentError naming `source`). */
export function parseSeccompProfile(text: string, source = "seccomp profile"): SeccompProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${source}: not JSON: ${(err as Error).message}`);
  }
  const bad = (why: string) => new InvalidArgumentError(`${source}: ${why}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("want a JSON object");
  const profile = value as Partial<SeccompProfile>;
  if (typeof profile.defaultAction !== "string" || profile.defaultAction === "")
    throw bad("defaultAction is required");
  if (profile.architectures?.length && profile.archMap?.length)
    throw bad("'architectures' and 'archMap' cannot both be given");
  for (const rule of profile.syscalls ?? []) {
    if (typeof rule !== "object" || rule === null || typeof rule.action !== "string")
      throw bad("each syscalls entry needs an action");
    if (rule.name && rule.names?.length) throw bad("a syscalls entry takes 'name' or 'names', not both");
  }
  return profile as SeccompProfile;
}

/** `5.10.0-26-amd64` ≥ `4.8`? */
function kernelAtLeast(kernel: string, minimum: string): boolean {
  const [major = 0, minor = 0] = kernel.split(/[.-]/).map(Number);
  const [wantMajor = 0, wantMinor = 0] = minimum.split(".").map(Number);
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/**
 * The profile resolved for one container, as moby's setupSeccomp does: this architecture and its
 * sub-architectures, and the rules whose conditions hold for the container's capabilities, this
 * architecture and this kernel.
 */
export function ociSeccomp(
  profile: SeccompProfile,
  context: { capabilities: readonly string[]; arch?: string; kernel?: string },
): OciSeccomp {
  const arch = ARCHES[context.arch ?? process.arch];
  const kernel = context.kernel ?? release();
  const seccomp: OciSeccomp = { defaultAction: profile.defaultAction, syscalls: [] };
  if (profile.defaultErrnoRet !== undefined) seccomp.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.architectures?.length) seccomp.architectures = [...profile.architectures];
  else if (arch) {
    const entry = profile.archMap?.find((candidate) => candidate.architecture === arch.seccomp);
    if (entry) seccomp.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  if (profile.flags?.length) seccomp.flags = [...profile.flags];
  if (profile.listenerPath) seccomp.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) seccomp.listenerMetadata = profile.listenerMetadata;
  const has = (cap: string) => context.capabilities.includes(cap);
  for (const rule of profile.syscalls ?? []) {
    const includes = rule.includes ?? {};
    const excludes = rule.excludes ?? {};
    if (includes.arches?.length && !(arch && includes.arches.includes(arch.native))) continue;
    if (includes.caps?.length && !includes.caps.every(has)) continue;
    if (includes.minKernel && !kernelAtLeast(kernel, includes.minKernel)) continue;
    if (excludes.arches?.length && arch && excludes.arches.includes(arch.native)) continue;
    if (excludes.caps?.length && excludes.caps.some(has)) continue;
    if (excludes.minKernel && kernelAtLeast(kernel, excludes.minKernel)) continue;
    const names = rule.names?.length ? rule.names : rule.name ? [rule.name] : [];
    if (names.length === 0) continue;
    seccomp.syscalls.push({
      names: [...names],
      action: rule.action,
      ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
      ...(rule.args?.length ? { args: rule.args } : {}),
    });
  }
  return seccomp;
}
