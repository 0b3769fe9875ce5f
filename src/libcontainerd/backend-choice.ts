import { DEFAULT_WINDOWS_CONTAINERD_ADDRESS } from "../platform/addresses.js";
import type { Environment, OperatingSystem } from "../platform/detect.js";
import {
  type HcsSchemaVersion,
  hcsSchemaVersion,
  WindowsBuild,
  windowsBuildName,
} from "../platform/windows-builds.js";
import { type ContainerdAddress, formatAddress, parseAddress } from "./grpc/address.js";
import { InvalidArgumentError } from "./types/errors.js";

export type BackendName = "local" | "remote";

/** Environment variables that opt a Windows host into containerd (the second is the name in Docker's code). */
export const WINDOWS_CONTAINERD_ENV = [
  "DOCKER_WINDOWS_CONTAINERD",
  "DOCKER_WINDOWS_CONTAINERD_RUNTIME",
] as const;

/** The Windows build a local backend on a non-Windows host (the fake vmcompute) pretends to be by default. */
export const DEFAULT_EMULATED_WINDOWS_BUILD = WindowsBuild.LTSC2022;

/** What is at a unix socket address. */
export type SocketProbe = "socket" | "missing" | "not-socket";

export interface BackendInputs {
  os: OperatingSystem;
  /** Needed for the local backend on Windows; on other hosts the build the vmcompute library emulates. */
  windowsBuild?: number;
  env: Environment;
  experimental?: boolean;
  containerdAddress?: string;
  backend?: BackendName;
  vmcomputeLibrary?: string;
  /**
   * Looks at a unix socket path. The decision itself touches nothing; the factory passes a stat, tests
   * pass a table. Without it, socket paths are not checked.
   */
  probeSocket?: (path: string) => SocketProbe;
}

export type BackendChoice =
  | { backend: "remote"; containerd: "external"; address: string; reason: string }
  | { backend: "remote"; containerd: "managed"; reason: string }
  | {
      backend: "local";
      windowsBuild: number;
      hcsSchema: HcsSchemaVersion;
      /** Unset on Windows: vmcompute.dll from the system. */
      vmcomputeLibrary?: string;
      reason: string;
    };

function windowsContainerdEnv(env: Environment): string | undefined {
  return WINDOWS_CONTAINERD_ENV.find((name) => (env[name] ?? "") !== "");
}

function describeBuild(build: number): string {
  const name = windowsBuildName(build);
  return name ? `${build} (${name})` : String(build);
}

/** A pipe only exists on Windows; containerd on Windows listens on a pipe (or tcp), never a unix socket. */
function checkAddressForOs(address: ContainerdAddress, raw: string, os: OperatingSystem): void {
  if (address.kind === "pipe" && os !== "windows") {
    throw new InvalidArgumentError(
      `containerd address ${JSON.stringify(raw)} is a Windows named pipe, but this is ${os}: use a unix socket path or tcp://HOST:PORT`,
    );
  }
  if (address.kind === "unix" && os === "windows") {
    throw new InvalidArgumentError(
      `containerd address ${JSON.stringify(raw)} is a unix socket, but containerd on Windows listens on a named pipe (e.g. ${DEFAULT_WINDOWS_CONTAINERD_ADDRESS})`,
    );
  }
}

function external(
  address: ContainerdAddress,
  raw: string,
  inputs: BackendInputs,
  why: string,
): BackendChoice & { containerd: "external" } {
  checkAddressForOs(address, raw, inputs.os);
  let note = "";
  if (address.kind === "unix" && inputs.probeSocket) {
    const found = inputs.probeSocket(address.path);
    if (found === "not-socket") {
      throw new InvalidArgumentError(
        `containerd address ${address.path} exists but is not a socket: is it containerd's config or state dir instead of its socket?`,
      );
    }
    // containerd may simply not be up yet; the client connects (and reconnects) on its own.
    if (found === "missing") note = " (no socket there yet)";
  }
  const formatted = formatAddress(address);
  return {
    backend: "remote",
    containerd: "external",
    address: formatted,
    reason: `${why}: containerd at ${formatted}${note}`,
  };
}

function local(inputs: BackendInputs, why: string): BackendChoice & { backend: "local" } {
  if (inputs.os === "windows") {
    const build = inputs.windowsBuild;
    if (build === undefined) {
      throw new InvalidArgumentError(
        "cannot tell this Windows build (os.release() carried none): pass platform.windowsBuild",
      );
    }
    if (build < WindowsBuild.RS1) {
      throw new InvalidArgumentError(
        `Windows build ${build} has no containers: the local backend needs ${WindowsBuild.RS1} (RS1, Windows Server 2016) or later`,
      );
    }
    const schema = hcsSchemaVersion(build);
    return {
      backend: "local",
      windowsBuild: build,
      hcsSchema: schema,
      ...(inputs.vmcomputeLibrary ? { vmcomputeLibrary: inputs.vmcomputeLibrary } : {}),
      reason: `${why}: HCS in-process on Windows build ${describeBuild(build)}, schema ${schema.major}.${schema.minor}`,
    };
  }
  if (!inputs.vmcomputeLibrary) {
    throw new InvalidArgumentError(
      `backend "local" runs containers through Windows HCS (vmcompute.dll), which ${inputs.os} does not have: ` +
        'use backend "remote", or pass vmcomputeLibrary (a library with vmcompute\'s exports, e.g. native/fake-vmcompute)',
    );
  }
  const build = inputs.windowsBuild ?? DEFAULT_EMULATED_WINDOWS_BUILD;
  const schema = hcsSchemaVersion(build);
  return {
    backend: "local",
    windowsBuild: build,
    hcsSchema: schema,
    vmcomputeLibrary: inputs.vmcomputeLibrary,
    reason: `${why}: HCS through ${inputs.vmcomputeLibrary}, emulating Windows build ${describeBuild(build)}, schema ${schema.major}.${schema.minor}`,
  };
}

/**
 * Which backend a client gets, and why. Pure: platform, environment and the socket probe are inputs,
 * so every row of the rules is a unit test. Throws InvalidArgumentError for combinations that cannot
 * work, before anything connects.
 *
 * - Linux: remote; an address → that containerd, none → a managed one.
 * - Windows: remote over the address only with experimental, an address and DOCKER_WINDOWS_CONTAINERD
 *   (moby's 2019 rule); otherwise local.
 * - `backend` given: that one.
 */
export function chooseBackend(inputs: BackendInputs): BackendChoice {
  const raw = inputs.containerdAddress?.trim() ? inputs.containerdAddress : undefined;
  const address = raw === undefined ? undefined : parseAddress(raw);

  if (inputs.backend === "local") {
    if (raw !== undefined) {
      throw new InvalidArgumentError(
        `containerdAddress ${JSON.stringify(raw)} is for the remote backend; backend "local" talks to no containerd`,
      );
    }
    return local(inputs, 'backend "local" requested');
  }

  if (inputs.backend === "remote") {
    if (address && raw !== undefined) return external(address, raw, inputs, 'backend "remote" requested');
    if (inputs.os === "windows") {
      return external(
        parseAddress(DEFAULT_WINDOWS_CONTAINERD_ADDRESS),
        DEFAULT_WINDOWS_CONTAINERD_ADDRESS,
        inputs,
        'backend "remote" requested, no address: the default pipe',
      );
    }
  }

  if (inputs.os === "windows" && inputs.backend === undefined) {
    const envName = windowsContainerdEnv(inputs.env);
    if (inputs.experimental && address && raw !== undefined && envName) {
      return external(address, raw, inputs, `Windows with experimental, containerdAddress and ${envName}`);
    }
    const missing = [
      inputs.experimental ? undefined : "experimental",
      raw === undefined ? "containerdAddress" : undefined,
      envName ? undefined : WINDOWS_CONTAINERD_ENV[0],
    ].filter((item): item is string => item !== undefined);
    const ignored = raw === undefined ? "" : `; containerdAddress ${JSON.stringify(raw)} ignored`;
    return local(inputs, `Windows without ${missing.join(", ")} (remote needs all three)${ignored}`);
  }

  const why = inputs.backend === "remote" ? 'backend "remote" requested' : `${inputs.os} runs containerd`;
  if (address && raw !== undefined) return external(address, raw, inputs, why);
  if (inputs.os !== "linux") {
    throw new InvalidArgumentError(
      `no containerdAddress, and a managed containerd only runs on Linux (this is ${inputs.os}): pass containerdAddress`,
    );
  }
  return {
    backend: "remote",
    containerd: "managed",
    reason: `${why}: no containerdAddress, so a managed containerd`,
  };
}
