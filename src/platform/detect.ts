import { platform as nodePlatform, release as nodeRelease } from "node:os";
import { type HcsSchemaVersion, hcsSchemaVersion, parseWindowsBuild } from "./windows-builds.js";

export type OperatingSystem = "linux" | "windows" | "other";

export type Environment = Readonly<Record<string, string | undefined>>;

export interface PlatformFacts {
  os: OperatingSystem;
  /** `process.platform` as detected (or injected), for messages. */
  nodePlatform: string;
  /** Windows only; undefined when the release string carries no build. */
  windowsBuild?: number;
  /** Windows only, derived from `windowsBuild`. */
  hcsSchema?: HcsSchemaVersion;
  env: Environment;
}

export interface DetectPlatformInputs {
  /** Defaults to `process.platform`. */
  platform?: string;
  /** Defaults to `os.release()`; on Windows it carries the build ("10.0.17763"). */
  release?: string;
  /** Defaults to `process.env`. */
  env?: Environment;
}

/** The OS facts the factory decides on. Everything is injectable so every platform is testable on Linux. */
export function detectPlatform(inputs: DetectPlatformInputs = {}): PlatformFacts {
  const detected = inputs.platform ?? nodePlatform();
  const env = inputs.env ?? process.env;
  const os: OperatingSystem =
    detected === "win32" || detected === "windows" ? "windows" : detected === "linux" ? "linux" : "other";
  if (os !== "windows") return { os, nodePlatform: detected, env };
  const windowsBuild = parseWindowsBuild(inputs.release ?? nodeRelease());
  return windowsBuild === undefined
    ? { os, nodePlatform: detected, env }
    : { os, nodePlatform: detected, windowsBuild, hcsSchema: hcsSchemaVersion(windowsBuild), env };
}
