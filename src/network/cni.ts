/**
 * CNI 1.0 plugin invocation, as libcni does it (containernetworking/cni, libcni/api.go): a plugin is
 * an executable given CNI_* variables and its JSON config on stdin; a list runs in order for ADD and
 * CHECK, each plugin getting the previous one's result as `prevResult`, and in reverse for DEL with
 * the cached ADD result. Runtime arguments (`runtimeConfig`) go only to plugins that declare the
 * capability.
 *
 * One liberty, for speed: consecutive plugins that only write firewall rules and hand their
 * prevResult on unchanged (portmap, firewall: both end in `types.PrintResult(conf.PrevResult)`) run
 * at once. Each gets the same prevResult it would get in order, and their DELs touch disjoint rules,
 * so the outcome is libcni's; the time is the slowest one's instead of the sum (their iptables
 * deletions each wait for the kernel).
 */
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { abortError } from "../libcontainerd/call.js";
import { FailedPreconditionError, InternalError } from "../libcontainerd/types/errors.js";
import { type ProgramOutcome, runProgram } from "./native.js";

export const CNI_VERSION = "1.0.0";
export const DEFAULT_PLUGIN_DIRS: readonly string[] = ["/usr/lib/cni", "/opt/cni/bin"];

export interface CniPluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  [field: string]: unknown;
}

export interface CniConfigList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConfig[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  [field: string]: unknown;
}

/** What one container's attachment is: the CNI_* variables and the capability arguments. */
export interface CniRuntime {
  containerId: string;
  /** The netns file; empty for a DEL whose namespace is already gone (the spec allows it). */
  netns: string;
  ifName: string;
  capabilityArgs?: Record<string, unknown>;
}

type CniCommand = "ADD" | "DEL" | "CHECK";

/** A plugin reported an error (the CNI error result: a code, a message, details). */
export class CniPluginError extends InternalError {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly cniCode: number | undefined,
    message: string,
  ) {
    super(
      `CNI plugin ${plugin} ${command} failed${cniCode !== undefined ? ` (code ${cniCode})` : ""}: ${message}`,
    );
  }
}

/**
 * How long an aborted ADD of an interface plugin may go on before it is killed after all: long enough
 * for any plugin that is working, so that one stuck (a lock it waits for, a netlink call that does not
 * return) does not hold the caller's abort for good, as libcni's context would not.
 */
export const ADD_ABORT_GRACE_MS = 10_000;

export class CniPlugins {
  constructor(
    readonly dirs: readonly string[] = DEFAULT_PLUGIN_DIRS,
    private readonly addAbortGraceMs = ADD_ABORT_GRACE_MS,
  ) {}

  /** The plugin's executable, or a FailedPreconditionError naming it and where it was looked for. */
  find(type: string): string {
    for (const dir of this.dirs) {
      const path = join(dir, type);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {}
    }
    throw new FailedPreconditionError(
      `CNI plugin ${JSON.stringify(type)} not found in ${this.dirs.join(", ")} (Debian: apt-get install containernetworking-plugins)`,
    );
  }

  /** Every plugin of the list is there, checked before anything is set up. */
  checkAll(list: CniConfigList): void {
    for (const plugin of list.plugins) {
      this.find(plugin.type);
      const ipam = plugin.ipam as { type?: unknown } | undefined;
      if (typeof ipam?.type === "string") this.find(ipam.type);
    }
  }

  /**
   * ADD in order. `between` runs after each step but the last, with the result so far: a caller's
   * chance to wait before the next plugins act on it.
   */
  async add(
    list: CniConfigList,
    runtime: CniRuntime,
    signal?: AbortSignal,
    between?: (result: CniResult) => Promise<void>,
    /** The result of plugins run before (a part of a chain run alone): the first step's prevResult. */
    earlier?: CniResult,
  ): Promise<CniResult> {
    let result: CniResult | undefined = earlier;
    for (const [index, group] of steps(list.plugins).entries()) {
      if (result && between && index > 0) await between(result);
      const prevResult = result;
      const outputs = await settleAll(
        group.map((plugin) => this.exec("ADD", list, plugin, runtime, prevResult, signal)),
      );
      result = parseResult(outputs.at(-1)!, group.at(-1)!.type);
    }
    if (!result) throw new InternalError(`CNI network ${list.name} has no plugins`);
    return result;
  }

  async check(
    list: CniConfigList,
    runtime: CniRuntime,
    prevResult: CniResult,
    signal?: AbortSignal,
  ): Promise<void> {
    for (const plugin of list.plugins) await this.exec("CHECK", list, plugin, runtime, prevResult, signal);
  }

  /**
   * DEL in reverse order. Unlike libcni it goes on past a failing plugin, so one stubborn plugin does
   * not leave the others' resources behind; the first error is thrown at the end. `allAtOnce` runs
   * every plugin's DEL at the same time: the interface plugin then releases the address while the
   * rules about it are still being removed, so it is only for a caller that keeps the address from
   * being handed on to rules of another container until this returns (NetworkManager does).
   */
  async del(
    list: CniConfigList,
    runtime: CniRuntime,
    prevResult: CniResult | undefined,
    allAtOnce = false,
  ): Promise<void> {
    let first: unknown;
    for (const group of allAtOnce ? [list.plugins] : steps(list.plugins).reverse()) {
      const outcomes = await Promise.allSettled(
        group.map((plugin) => this.exec("DEL", list, plugin, runtime, prevResult, undefined)),
      );
      for (const outcome of outcomes) if (outcome.status === "rejected") first ??= outcome.reason;
    }
    if (first !== undefined) throw first;
  }

  private async exec(
    command: CniCommand,
    list: CniConfigList,
    plugin: CniPluginConfig,
    runtime: CniRuntime,
    prevResult: CniResult | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const path = this.find(plugin.type);
    const config: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    if (prevResult) config.prevResult = prevResult;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [capability, enabled] of Object.entries(plugin.capabilities ?? {})) {
      const value = runtime.capabilityArgs?.[capability];
      if (enabled && value !== undefined) runtimeConfig[capability] = value;
    }
    if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
    const env = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: runtime.containerId,
      CNI_NETNS: runtime.netns,
      CNI_IFNAME: runtime.ifName,
      CNI_PATH: this.dirs.join(":"),
    };
    const what = `CNI plugin ${plugin.type} ${command} for ${runtime.containerId}`;
    if (signal?.aborted) throw abortError(signal, what);
    // The interface plugin's ADD is not killed at once by an abort, which is seen when it is done (its
    // DEL undoes it): the bridge plugin killed between plugging the first veth into a new bridge and
    // fixing the bridge's MAC leaves a bridge whose MAC turns 00:00:00:00:00:00 once the veth goes,
    // and the next ADD on it fails ("could not set bridge's mac"). Only one still running
    // addAbortGraceMs after the abort is killed.
    const graceful = command === "ADD" && !PASS_THROUGH.has(plugin.type);
    const kill = graceful && signal ? delayedAbort(signal, this.addAbortGraceMs) : undefined;
    let outcome: ProgramOutcome;
    try {
      outcome = await runProgram(path, env, JSON.stringify(config), kill ? kill.signal : signal);
    } catch (err) {
      throw new InternalError(`${what}: ${(err as Error).message}`, { cause: err });
    } finally {
      kill?.dispose();
    }
    if (signal?.aborted) throw abortError(signal, what);
    if (outcome.code === 0) return outcome.stdout;
    throw pluginError(plugin.type, command, outcome.stdout, outcome.stderr, outcome.code ?? outcome.signal);
  }
}

/** A signal that aborts `delayMs` after `signal` does; dispose() when it is no longer needed. */
function delayedAbort(signal: AbortSignal, delayMs: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    timer = setTimeout(() => controller.abort(signal.reason), delayMs);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      signal.removeEventListener("abort", onAbort);
      clearTimeout(timer);
    },
  };
}

/** Plugins that write rules and pass their prevResult through unchanged (see the file's comment). */
const PASS_THROUGH: ReadonlySet<string> = new Set(["portmap", "firewall"]);

/** The list in steps: each plugin alone, but consecutive pass-through plugins together. */
function steps(plugins: readonly CniPluginConfig[]): CniPluginConfig[][] {
  const groups: CniPluginConfig[][] = [];
  for (const plugin of plugins) {
    const last = groups.at(-1);
    if (last && PASS_THROUGH.has(plugin.type) && PASS_THROUGH.has(last[0]!.type)) last.push(plugin);
    else groups.push([plugin]);
  }
  return groups;
}

/** Promise.all that waits for every run before it throws the first failure: nothing left running. */
export async function settleAll<T>(runs: Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(runs);
  const failed = outcomes.find((outcome) => outcome.status === "rejected");
  if (failed) throw failed.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}

function pluginError(
  plugin: string,
  command: CniCommand,
  stdout: string,
  stderr: string,
  exit: number | string | null,
): CniPluginError {
  try {
    const parsed = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof parsed.msg === "string") {
      const details =
        typeof parsed.details === "string" && parsed.details !== "" ? `: ${parsed.details}` : "";
      return new CniPluginError(
        plugin,
        command,
        typeof parsed.code === "number" ? parsed.code : undefined,
        `${parsed.msg}${details}`,
      );
    }
  } catch {}
  const text = (stderr || stdout).trim() || `exit status ${exit}`;
  return new CniPluginError(plugin, command, undefined, text);
}

function parseResult(output: string, plugin: string): CniResult {
  try {
    const parsed = JSON.parse(output) as CniResult;
    if (typeof parsed === "object" && parsed !== null) return parsed;
  } catch {}
  throw new CniPluginError(plugin, "ADD", undefined, `result is not CNI JSON: ${output.slice(0, 200)}`);
}
