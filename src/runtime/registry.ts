import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../errors.js";
import { stateDirLayout } from "../platform/state-dir.js";
import { parseAddRuntime, validateRuntimes } from "./daemon-json.js";
import { createLookPath, type LookPath } from "./lookpath.js";
import {
  isPermissibleContainerdRuntimeName,
  RUNC_RUNTIME,
  RUNC_V1_SHIM,
  RUNC_V2_SHIM,
  RUNHCS_V1_SHIM,
} from "./names.js";
import {
  defaultRunhcsOptions,
  type RuncDerived,
  runcV1Options,
  runcV2Options,
  shimOptionsFor,
} from "./shim-options.js";
import type { ResolvedRuntime, RuntimeConfig, RuntimeInfo, RuntimeResolver, ShimOptions } from "./types.js";
import { ensureWrapperScript, wrapperScriptContent, wrapperScriptFileName } from "./wrapper-script.js";

export interface RuntimeRegistryOptions {
  /** The client's state dir; runc's state (`--root`) goes to `<stateDir>/runtime-runc`. */
  stateDir: string;
  /** daemon.json's `runtimes` map. */
  runtimes?: Record<string, RuntimeConfig>;
  /** `--add-runtime name=path` flags. */
  addRuntimes?: string[];
  defaultRuntime?: string;
  platform?: "linux" | "windows";
  /** Where wrapper scripts for `runtimeArgs` go; defaults to `<stateDir>/runtimes`. */
  wrapperDir?: string;
  lookPath?: LookPath;
  /**
   * dockerd's `native.cgroupdriver`: with `systemd`, runc-compatible runtimes get SystemdCgroup
   * (and cgroupsPath must then be `slice:prefix:name`). Default `cgroupfs`.
   */
  cgroupDriver?: "cgroupfs" | "systemd";
  /** Where `DOCKER_RAMDISK` is read (it turns on NoPivotRoot, as in dockerd). Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** `<runtime> features` (runtime-spec features.md), as far as this library reads it. */
export interface RuntimeFeatures {
  ociVersionMin?: string;
  ociVersionMax?: string;
  hooks?: string[];
  mountOptions?: string[];
  [field: string]: unknown;
}

interface RuntimeEntry {
  name: string;
  shim: string;
  options?: ShimOptions;
  source: "stock" | "configured";
  /** A runtime binary that must exist when a container is created with this runtime. */
  binary?: string;
  runtimeArgs?: readonly string[];
  wrapper?: { path: string; content: string };
}

/**
 * Resolves runtime names to containerd shims and their typed options, as dockerd does
 * (daemon/runtime_unix.go): stock runc runtimes, operator-configured ones, and containerd shim names
 * passed through as they are.
 */
export class RuntimeRegistry implements RuntimeResolver {
  readonly defaultRuntime: string;
  readonly platform: "linux" | "windows";
  private readonly entries = new Map<string, RuntimeEntry>();
  private readonly wrapperDir: string;
  private readonly lookPath: LookPath;
  private readonly derived: RuncDerived;
  private readonly features_ = new Map<string, Promise<RuntimeFeatures | undefined>>();

  constructor(options: RuntimeRegistryOptions) {
    const env = options.env ?? process.env;
    this.derived = {
      ...(options.cgroupDriver === "systemd" ? { systemdCgroup: true } : {}),
      ...(env.DOCKER_RAMDISK ? { noPivotRoot: true } : {}),
    };
    this.platform = options.platform ?? (process.platform === "win32" ? "windows" : "linux");
    this.wrapperDir = options.wrapperDir ?? stateDirLayout(options.stateDir).runtimeWrappers;
    this.lookPath = options.lookPath ?? createLookPath();
    for (const entry of this.stockEntries(options.stateDir)) this.entries.set(entry.name, entry);

    const configured = validateRuntimes(options.runtimes ?? {});
    const fromFlags = new Set<string>();
    for (const flag of options.addRuntimes ?? []) {
      const { name, config } = parseAddRuntime(flag);
      if (configured.has(name)) {
        const elsewhere = fromFlags.has(name) ? "by another --add-runtime" : "in runtimes";
        throw new InvalidArgumentError(
          `runtime '${name}' is defined twice (by --add-runtime and ${elsewhere})`,
        );
      }
      fromFlags.add(name);
      configured.set(name, config);
    }
    for (const [name, config] of configured) {
      this.entries.set(name, this.configuredEntry(name, config, options.stateDir));
    }

    // An empty default means "not set", as dockerd's --default-runtime "" does.
    const defaultName =
      options.defaultRuntime || (this.platform === "windows" ? RUNHCS_V1_SHIM : RUNC_RUNTIME);
    if (!this.entries.has(defaultName.toLowerCase()) && !isPermissibleContainerdRuntimeName(defaultName)) {
      throw new InvalidArgumentError(
        `specified default runtime '${defaultName}' does not exist (known runtimes: ${this.knownNames()})`,
      );
    }
    this.defaultRuntime = this.entries.has(defaultName.toLowerCase())
      ? defaultName.toLowerCase()
      : defaultName;
  }

  private stockEntries(stateDir: string): RuntimeEntry[] {
    if (this.platform === "windows") {
      return [
        { name: RUNHCS_V1_SHIM, shim: RUNHCS_V1_SHIM, options: defaultRunhcsOptions(), source: "stock" },
      ];
    }
    // One runc root for every runc-compatible runtime, as dockerd has done since 2020.
    const root = runcRoot(stateDir);
    const v2 = runcV2Options({ binaryName: "runc", root, ...this.derived });
    return [
      { name: RUNC_RUNTIME, shim: RUNC_V2_SHIM, options: v2, source: "stock" },
      { name: RUNC_V2_SHIM, shim: RUNC_V2_SHIM, options: v2, source: "stock" },
      {
        name: RUNC_V1_SHIM,
        shim: RUNC_V1_SHIM,
        options: runcV1Options({ runtime: "runc", runtimeRoot: root, ...this.derived }),
        source: "stock",
      },
    ];
  }

  private configuredEntry(name: string, config: RuntimeConfig, stateDir: string): RuntimeEntry {
    if (config.runtimeType !== undefined) {
      const entry: RuntimeEntry = { name, shim: config.runtimeType, source: "configured" };
      if (config.options !== undefined)
        entry.options = shimOptionsFor(name, config.runtimeType, config.options);
      return entry;
    }
    const path = config.path ?? "";
    if (this.platform === "windows") {
      throw new InvalidArgumentError(
        `runtime '${name}': 'path' runtimes run under the runc shim, which Windows does not have; use 'runtimeType'`,
      );
    }
    const entry: RuntimeEntry = { name, shim: RUNC_V2_SHIM, source: "configured", binary: path };
    let binaryName = path;
    if (config.runtimeArgs && config.runtimeArgs.length > 0) {
      const content = wrapperScriptContent(path, config.runtimeArgs);
      const wrapperPath = join(this.wrapperDir, wrapperScriptFileName(name, content));
      entry.runtimeArgs = [...config.runtimeArgs];
      entry.wrapper = { path: wrapperPath, content };
      binaryName = wrapperPath;
    }
    entry.options = runcV2Options({ binaryName, root: runcRoot(stateDir), ...this.derived });
    return entry;
  }

  private knownNames(): string {
    return [...this.entries.keys()].join(", ");
  }

  /**
   * The shim and options for `name` (empty → the default). A configured runtime's binary is
   * looked up now, so a missing one fails the container create with a clear message instead of
   * crashing the shim later; its wrapper script, if any, is written now.
   */
  async resolve(name?: string): Promise<ResolvedRuntime> {
    const requested = name === undefined || name === "" ? this.defaultRuntime : name;
    const entry = this.entries.get(requested.toLowerCase());
    if (!entry) {
      if (isPermissibleContainerdRuntimeName(requested)) return { name: requested, shim: requested };
      throw new InvalidArgumentError(
        `unknown or invalid runtime name '${requested}' (known runtimes: ${this.knownNames()}; ` +
          `or a containerd shim name like io.containerd.kata.v2)`,
      );
    }
    if (entry.binary !== undefined && (await this.lookPath(entry.binary)) === undefined) {
      throw new InvalidArgumentError(
        `runtime '${entry.name}': its binary '${entry.binary}' was not found or is not executable` +
          (entry.binary.includes("/") ? "" : " (searched PATH)"),
      );
    }
    if (entry.wrapper) await ensureWrapperScript(entry.wrapper.path, this.wrapperDir, entry.wrapper.content);
    const resolved: ResolvedRuntime = { name: entry.name, shim: entry.shim };
    if (entry.options) resolved.options = entry.options;
    return resolved;
  }

  /**
   * Removes the wrapper scripts that no runtime of this registry writes and no container still
   * runs with (`inUse`: the binary every container's runtime options name, in every namespace).
   * Scripts are named by their content, so a changed `runtimeArgs` leaves the old script for the
   * containers created with it; this is where it goes once they are gone. Returns what it removed.
   */
  async removeUnusedWrapperScripts(inUse: ReadonlySet<string>): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.wrapperDir);
    } catch {
      return []; // no scripts were ever written
    }
    const current = new Set(
      [...this.entries.values()].flatMap((entry) => (entry.wrapper ? [entry.wrapper.path] : [])),
    );
    const removed: string[] = [];
    for (const name of names) {
      const path = join(this.wrapperDir, name);
      // A .tmp- file is a write in progress (or one that died): never a script a shim runs.
      if (name.startsWith(".tmp-") || current.has(path) || inUse.has(path)) continue;
      await rm(path, { force: true });
      removed.push(path);
    }
    return removed;
  }

  /** Whether wrapper scripts may exist (their directory does): only then is a collection worth its calls. */
  hasWrapperScripts(): boolean {
    return existsSync(this.wrapperDir);
  }

  /**
   * What `<binary> features` says (runtime-spec features.md; runc 1.1+), probed once per runtime,
   * as dockerd does for runc-compatible runtimes. Undefined for a shim-only runtime, or when the
   * binary does not answer with a JSON document (older runc: no `features` command).
   */
  features(name?: string): Promise<RuntimeFeatures | undefined> {
    const entry = this.entries.get((name || this.defaultRuntime).toLowerCase());
    const binary =
      entry?.binary ?? (entry?.shim === RUNC_V2_SHIM || entry?.shim === RUNC_V1_SHIM ? "runc" : undefined);
    if (!entry || binary === undefined) return Promise.resolve(undefined);
    let probe = this.features_.get(entry.name);
    if (!probe) {
      probe = probeFeatures(binary, entry.runtimeArgs ?? []);
      this.features_.set(entry.name, probe);
    }
    return probe;
  }

  /** Every stock and configured runtime, stock first (for `ctrd info`). */
  list(): RuntimeInfo[] {
    return [...this.entries.values()].map((entry) => {
      const info: RuntimeInfo = {
        name: entry.name,
        shim: entry.shim,
        source: entry.source,
        isDefault: entry.name === this.defaultRuntime,
      };
      if (entry.options) info.optionsTypeUrl = entry.options.typeUrl;
      if (entry.binary !== undefined) info.path = entry.binary;
      if (entry.runtimeArgs) info.runtimeArgs = [...entry.runtimeArgs];
      if (entry.wrapper) info.wrapperScript = entry.wrapper.path;
      return info;
    });
  }
}

export function runcRoot(stateDir: string): string {
  return stateDirLayout(stateDir).runcRoot;
}

function probeFeatures(binary: string, runtimeArgs: readonly string[]): Promise<RuntimeFeatures | undefined> {
  return new Promise((resolve) => {
    execFile(binary, [...runtimeArgs, "features"], { timeout: 10_000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      try {
        const parsed: unknown = JSON.parse(stdout);
        resolve(parsed !== null && typeof parsed === "object" ? (parsed as RuntimeFeatures) : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}
