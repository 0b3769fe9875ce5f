import type { Command } from "commander";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import { detectPlatform } from "../platform/detect.js";
import { windowsBuildName } from "../platform/windows-builds.js";
import { RuntimeRegistry } from "../runtime/registry.js";
import type { RuntimeInfo } from "../runtime/types.js";
import {
  addGlobalOptions,
  type GlobalSettings,
  globalFlags,
  resolveSettings,
  withClient,
} from "./options.js";
import { printJson } from "./output.js";

export interface InfoReport {
  backend: string;
  reason: string;
  containerd?: { address: string; managed: boolean; pid?: number; version: string; revision: string };
  namespace: string;
  stateDir: string;
  root?: string;
  defaultRuntime: string;
  /** The default runtime's `features` (runc 1.1+): the OCI versions it accepts; null when it does not say. */
  defaultRuntimeOci: { min: string; max: string } | null;
  runtimes: RuntimeInfo[];
  platform: {
    os: string;
    nodePlatform: string;
    /** null off Windows (and not emulated by the local backend's fake). */
    windowsBuild: number | null;
    windowsRelease: string | null;
    hcsSchema: string | null;
  };
}

/** The registry the client resolves with, so `info` shows exactly what a new container would get. */
function runtimeRegistry(client: LibcontainerdClient, settings: GlobalSettings): RuntimeRegistry {
  return (
    client.runtimes ??
    new RuntimeRegistry({
      stateDir: settings.stateDir,
      addRuntimes: settings.addRuntimes,
      ...(settings.runtimes ? { runtimes: settings.runtimes } : {}),
      ...(settings.defaultRuntime ? { defaultRuntime: settings.defaultRuntime } : {}),
    })
  );
}

async function gather(client: LibcontainerdClient, settings: GlobalSettings): Promise<InfoReport> {
  const facts = detectPlatform();
  const registry = runtimeRegistry(client, settings);
  const choice = client.choice;
  const report: InfoReport = {
    backend: choice.backend,
    reason: choice.reason,
    namespace: client.namespace,
    stateDir: settings.stateDir,
    defaultRuntime: registry.defaultRuntime,
    defaultRuntimeOci: null,
    runtimes: registry.list(),
    platform: {
      os: facts.os,
      nodePlatform: facts.nodePlatform,
      windowsBuild: null,
      windowsRelease: null,
      hcsSchema: null,
    },
  };
  const features = await registry.features();
  if (features?.ociVersionMin && features.ociVersionMax)
    report.defaultRuntimeOci = { min: features.ociVersionMin, max: features.ociVersionMax };
  if (choice.backend === "remote") {
    const version = await client.version();
    const managed = client.managedContainerd;
    report.containerd = {
      address: choice.containerd === "external" ? choice.address : (managed?.address ?? ""),
      managed: choice.containerd === "managed",
      ...(managed && managed.pid > 0 ? { pid: managed.pid } : {}),
      ...version,
    };
    if (managed) report.root = managed.layout.root;
  }
  const build = choice.backend === "local" ? choice.windowsBuild : facts.windowsBuild;
  const schema = choice.backend === "local" ? choice.hcsSchema : facts.hcsSchema;
  if (build !== undefined) {
    report.platform.windowsBuild = build;
    const release = windowsBuildName(build);
    if (release) report.platform.windowsRelease = release;
  }
  if (schema) report.platform.hcsSchema = `${schema.major}.${schema.minor}`;
  return report;
}

/** Names and paths come from the user's config: a newline or escape in one must not forge lines of output. */
function escapeControlCharacters(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  return line.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function print(report: InfoReport): void {
  const lines = [`Backend:         ${report.backend}`, `  Why:           ${report.reason}`];
  if (report.containerd) {
    const c = report.containerd;
    lines.push(
      `Containerd:      ${c.address}${c.managed ? ` (managed by ctrd${c.pid ? `, pid ${c.pid}` : ""})` : ""}`,
      `  Version:       ${c.version} (revision ${c.revision || "unknown"})`,
    );
  }
  lines.push(`Namespace:       ${report.namespace}`, `State dir:       ${report.stateDir}`);
  if (report.root) lines.push(`Root dir:        ${report.root}`);
  lines.push(`Default runtime: ${report.defaultRuntime}`);
  if (report.defaultRuntimeOci)
    lines.push(`  OCI versions:  ${report.defaultRuntimeOci.min} to ${report.defaultRuntimeOci.max}`);
  lines.push("Runtimes:");
  for (const runtime of report.runtimes) {
    const extra = [
      runtime.source,
      runtime.path ? `path ${runtime.path}` : "",
      runtime.runtimeArgs?.length ? `args ${runtime.runtimeArgs.join(" ")}` : "",
      runtime.optionsTypeUrl ? `options ${runtime.optionsTypeUrl}` : "",
    ].filter((part) => part !== "");
    lines.push(
      `  ${runtime.isDefault ? "*" : " "} ${runtime.name.padEnd(32)} shim ${runtime.shim} (${extra.join(", ")})`,
    );
  }
  const p = report.platform;
  lines.push("Platform:", `  OS:            ${p.os} (node: ${p.nodePlatform})`);
  lines.push(
    `  Windows build: ${p.windowsBuild === null ? "-" : `${p.windowsBuild}${p.windowsRelease ? ` (${p.windowsRelease})` : ""}`}`,
    `  HCS schema:    ${p.hcsSchema ?? "-"}`,
  );
  process.stdout.write(`${lines.map(escapeControlCharacters).join("\n")}\n`);
}

export function registerInfo(program: Command): void {
  const command = program
    .command("info")
    .description("the backend and why, containerd, runtimes, and platform facts")
    .option("--json", "print JSON");
  addGlobalOptions(command).action(async (flags: { json?: boolean }, self: Command) => {
    const settings = resolveSettings(globalFlags(self));
    await withClient(settings, async (client) => {
      const report = await gather(client, settings);
      if (flags.json) printJson(report);
      else print(report);
    });
  });
}
