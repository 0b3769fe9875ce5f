import { InvalidArgumentError } from "../libcontainerd/types/errors.js";
import type { Platform } from "./media-types.js";

const ARCH_BY_NODE: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  mips: "mips",
  mipsel: "mipsle",
};

/** This host's platform in OCI terms (containerd's platforms.DefaultSpec). */
export function hostPlatform(): Platform {
  const architecture = ARCH_BY_NODE[process.arch] ?? process.arch;
  const os = process.platform === "win32" ? "windows" : process.platform;
  const platform: Platform = { os, architecture };
  if (architecture === "arm64") platform.variant = "v8";
  if (architecture === "arm") {
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
    platform.variant = `v${typeof armVersion === "string" || typeof armVersion === "number" ? armVersion : 7}`;
  }
  return platform;
}

/** A platform option as callers give it (text, a Platform, or nothing: the host's). */
export function platformOption(platform: string | Platform | undefined): Platform {
  if (platform === undefined) return hostPlatform();
  return typeof platform === "string" ? parsePlatform(platform) : platform;
}

/** `linux`, `linux/amd64`, `linux/arm/v7`, `amd64` (the host's OS) — as `--platform` takes it. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split("/");
  const bad = () =>
    new InvalidArgumentError(`invalid platform ${JSON.stringify(text)}: want OS[/ARCH[/VARIANT]]`);
  if (parts.some((p) => !/^[a-z0-9_.-]+$/.test(p)) || parts.length > 3) throw bad();
  const host = hostPlatform();
  const [first = "", second, third] = parts;
  const knownOs = ["linux", "windows", "darwin", "freebsd"].includes(first);
  if (parts.length === 1) {
    return knownOs ? { ...host, os: first } : normalize({ os: host.os, architecture: first });
  }
  return normalize({
    os: first,
    architecture: second ?? host.architecture,
    ...(third ? { variant: third } : {}),
  });
}

function normalize(p: Platform): Platform {
  const arch = { x86_64: "amd64", x86: "386", i386: "386", aarch64: "arm64", armhf: "arm", armel: "arm" }[
    p.architecture
  ];
  const out: Platform = { ...p, architecture: arch ?? p.architecture };
  if (out.architecture === "arm64" && (out.variant === undefined || out.variant === "8")) out.variant = "v8";
  return out;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** Whether an index entry's platform is what was asked for (a missing arm64 variant means v8). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const h = normalize({ ...have, os: have.os.toLowerCase(), architecture: have.architecture.toLowerCase() });
  const w = normalize(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return false;
  return w.variant === undefined || w.variant === h.variant;
}
