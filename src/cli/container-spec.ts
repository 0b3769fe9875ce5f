import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LinuxResources } from "../libcontainerd/types/resources.js";
import { defaultLinuxSpec } from "../oci/defaults.js";
import type { OciSpec } from "../oci/spec.js";
import { usageError } from "./errors.js";

/** Labels ctrd puts on its containers, so `ps` and `exec` can show and reuse what `run` was given. */
export const LABELS = {
  command: "io.ctrd/command",
  user: "io.ctrd/user",
  workdir: "io.ctrd/workdir",
} as const;

const MAX_LABEL_BYTES = 4000;

export interface ContainerFlags {
  args: string[];
  rootfs: string;
  id: string;
  namespace: string;
  /** The cgroup the container's own goes under; default `/<namespace>`. */
  cgroupParent?: string;
  env: string[];
  workdir?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  tty: boolean;
  resources?: LinuxResources;
}

export function containerSpec(flags: ContainerFlags): OciSpec {
  const spec = defaultLinuxSpec({
    args: flags.args,
    rootfs: flags.rootfs,
    env: [...flags.env, ...(flags.tty ? ["TERM=xterm"] : [])],
    ...(flags.workdir !== undefined ? { cwd: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    terminal: flags.tty,
    hostname: flags.id.slice(0, 63),
    cgroupsPath: `${cgroupParentPath(flags.cgroupParent ?? flags.namespace)}/${flags.id}`,
  });
  if (flags.tty && spec.process && process.stdout.isTTY && process.stdout.columns && process.stdout.rows) {
    spec.process.consoleSize = { width: process.stdout.columns, height: process.stdout.rows };
  }
  if (flags.resources && spec.linux) spec.linux.resources = { ...spec.linux.resources, ...flags.resources };
  return spec;
}

/** An absolute cgroup path without a trailing slash, as runc's cgroupfs driver wants it. */
function cgroupParentPath(parent: string): string {
  const trimmed = parent.replace(/\/+$/, "");
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

export function containerLabels(flags: ContainerFlags): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.command]: truncateUtf8(JSON.stringify(flags.args), MAX_LABEL_BYTES),
  };
  if (flags.user) labels[LABELS.user] = `${flags.user.uid}:${flags.user.gid}`;
  if (flags.workdir) labels[LABELS.workdir] = flags.workdir;
  return labels;
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text;
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, Math.floor(out.length * 0.9));
  return out;
}

/** The command a ctrd container runs, for display; `[]` for containers ctrd did not create. */
export function labelledCommand(labels: Record<string, string>): string[] {
  try {
    const parsed: unknown = JSON.parse(labels[LABELS.command] ?? "[]");
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

/** `K=V` as given; a bare `K` takes the value from ctrd's environment (or is dropped), as docker does. */
export function parseEnv(entries: readonly string[]): string[] {
  const env: string[] = [];
  for (const entry of entries) {
    if (entry === "" || entry.startsWith("="))
      throw usageError(`invalid --env ${JSON.stringify(entry)}: want KEY=VALUE`);
    if (entry.includes("=")) env.push(entry);
    else if (process.env[entry] !== undefined) env.push(`${entry}=${process.env[entry]}`);
  }
  return env;
}

function lookupId(file: string, name: string): number | undefined {
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
    }
  } catch {}
  return undefined;
}

function primaryGid(rootfs: string, uid: number): number | undefined {
  try {
    for (const line of readFileSync(join(rootfs, "etc/passwd"), "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[2] === String(uid) && fields[3] !== undefined && /^\d+$/.test(fields[3]))
        return Number(fields[3]);
    }
  } catch {}
  return undefined;
}

/** `UID[:GID]`, where names are looked up in the rootfs's /etc/passwd and /etc/group. */
export function parseUser(value: string, rootfs: string): { uid: number; gid: number } {
  const [userPart = "", groupPart] = value.split(":", 2);
  const resolve = (part: string, file: string, what: string): number => {
    if (/^\d+$/.test(part)) return Number(part);
    const found = lookupId(join(rootfs, file), part);
    if (found === undefined)
      throw usageError(`--user ${value}: no ${what} ${JSON.stringify(part)} in ${join(rootfs, file)}`);
    return found;
  };
  if (userPart === "") throw usageError(`invalid --user ${JSON.stringify(value)}: want UID[:GID]`);
  const uid = resolve(userPart, "etc/passwd", "user");
  const gid =
    groupPart !== undefined && groupPart !== ""
      ? resolve(groupPart, "etc/group", "group")
      : (primaryGid(rootfs, uid) ?? uid);
  return { uid, gid };
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** docker's sizes: `512m`, `1g`, `1.5GB`, `65536` (bytes). */
export function parseSize(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(value.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw usageError(`invalid ${flag} ${JSON.stringify(value)}: want a size like 512m or 1g`);
  return bytes;
}

const CPU_PERIOD_US = 100_000;

export function resourcesFromFlags(flags: {
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
}): LinuxResources | undefined {
  const resources: LinuxResources = {};
  if (flags.memory !== undefined) {
    const limit = parseSize(flags.memory, "--memory");
    // runc refuses a limit below what the container's own bookkeeping needs; say so before it does.
    if (limit < 6 * 1024 * 1024) throw usageError(`--memory ${flags.memory} is below the minimum of 6m`);
    resources.memory = { limit };
  }
  if (flags.cpus !== undefined) {
    const cpus = Number(flags.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0)
      throw usageError(`invalid --cpus ${JSON.stringify(flags.cpus)}: want a positive number like 0.5`);
    resources.cpu = { quota: Math.round(cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  }
  if (flags.pidsLimit !== undefined) {
    const limit = Number(flags.pidsLimit);
    if (!Number.isInteger(limit) || (limit <= 0 && limit !== -1))
      throw usageError(
        `invalid --pids-limit ${JSON.stringify(flags.pidsLimit)}: want a positive integer (or -1 for no limit)`,
      );
    resources.pids = { limit };
  }
  return Object.keys(resources).length > 0 ? resources : undefined;
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "fond",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "nimble",
  "proud",
  "quiet",
  "sharp",
  "swift",
  "witty",
];
const NOUNS = [
  "otter",
  "falcon",
  "badger",
  "heron",
  "lynx",
  "marten",
  "osprey",
  "panda",
  "raven",
  "seal",
  "tapir",
  "wren",
  "yak",
  "zebu",
  "koala",
  "ibis",
];

/** A name like `swift-otter-3f9a`: easy to type, unlikely to collide. */
export function generateName(): string {
  const [a = 0, b = 0] = randomBytes(2);
  return `${ADJECTIVES[a % ADJECTIVES.length]}-${NOUNS[b % NOUNS.length]}-${randomBytes(2).toString("hex")}`;
}
