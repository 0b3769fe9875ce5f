/**
 * Subnets are host-wide, state dirs are not: two `ctrd serve` instances, or two CLIs with different
 * state dirs, each see only their own networks, and a network's bridge (with its address, which the
 * host check sees) is made only at its first attach. Both would pick the same free /24, and routing
 * breaks for whichever attaches second. dockerd picks against the host's routes and interfaces and has
 * one daemon per host; ctrd keeps a host-wide record of every state dir's networks instead, beside the
 * reserved ports' (see reserved-ports.ts), and reads the host's interfaces down ones included (a bridge
 * with no carrier is down, and os.networkInterfaces skips it) and its routes.
 *
 * Crash-safe: an entry names its network's definition file and id, and is written before the
 * definition and removed after it, both under the host lock; an entry whose definition is gone (its
 * network removed by a crashed process, its data dir wiped) is taken out by the next claim of any state
 * dir. The host lock is taken under a state dir's networks lock and nothing is taken under it.
 */
import { execFile } from "node:child_process";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { abortError } from "../libcontainerd/call.js";
import { InternalError } from "../libcontainerd/types/errors.js";
import { HOST_RUN_DIR, withLock } from "./files.js";
import { type Ipv4Subnet, parseSubnet, subnetOf } from "./subnet.js";

const run = promisify(execFile);

/** The record every state dir's networks are in, and the lock every state dir takes to change it. */
export interface HostSubnetsFiles {
  lock: string;
  registry: string;
}

export const HOST_SUBNETS: HostSubnetsFiles = {
  lock: `${HOST_RUN_DIR}/subnets.lock`,
  registry: `${HOST_RUN_DIR}/subnets.json`,
};

/** A subnet that a new network must not overlap, and what holds it (for the error). */
export interface TakenSubnet {
  subnet: Ipv4Subnet;
  what: string;
  /**
   * A host route, not an address: it keeps a pool's pick off its subnets, and refuses no subnet given
   * (--subnet, the default network's), as dockerd checks routes only when it picks from its pools
   * (ipam's getPredefinedPool, netutils.CheckRouteOverlaps). A VPN's 10.0.0.0/8 covers the default
   * 10.210.0.0/16, and the bridge's own more specific route wins for its subnet anyway.
   */
  route?: true;
}

/** One network of some state dir: its definition file (networks/NAME.json) and its id. */
export interface Holder {
  definition: string;
  id: string;
  subnet: string;
}

/** What `claim`'s caller decided: the network to define, its definition file and its content. */
export interface Claim {
  definition: string;
  id: string;
  subnet: string;
  write: () => Promise<void>;
}

export class HostSubnets {
  constructor(private readonly files: HostSubnetsFiles = HOST_SUBNETS) {}

  /**
   * Under the host lock: `decide` gets every subnet other definitions than `ours` hold (ours are the
   * caller's own to check), then its network is recorded and its definition written (by `claim.write`).
   */
  async claim(
    ours: { isOurs: (definition: string) => boolean; defined: Holder[] },
    signal: AbortSignal | undefined,
    decide: (held: TakenSubnet[]) => Claim,
  ): Promise<void> {
    await withLock(this.files.lock, signal, async () => {
      const holders = this.liveHolders().filter((holder) => !ours.isOurs(holder.definition));
      const claim = decide(
        holders.map((holder) => ({
          subnet: parseSubnet(holder.subnet),
          what: `network ${holder.id.slice(0, 12)} of another ctrd state dir (${holder.definition})`,
        })),
      );
      const { definition, id, subnet } = claim;
      // The record first: a crash before the definition leaves an entry the next claim finds orphaned.
      // Ours are written again from our definitions: the record lives in /run (gone at each boot) and
      // older builds kept none, while definitions stay; a network not attached since has no bridge
      // address either, and another state dir would pick its subnet.
      this.write([
        ...holders,
        ...ours.defined.filter((holder) => holder.definition !== definition),
        { definition, id, subnet },
      ]);
      await claim.write();
    });
  }

  /** After the definition is removed: its entry (and any orphan) out of the record. */
  async release(definition: string, signal: AbortSignal | undefined): Promise<void> {
    await withLock(this.files.lock, signal, async () => {
      const holders = this.liveHolders();
      this.write(holders.filter((holder) => holder.definition !== definition));
    });
  }

  /** The record's entries whose definition still exists with the same id. */
  private liveHolders(): Holder[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.files.registry, "utf8"));
    } catch {
      return [];
    }
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (entry): entry is Holder => isHolder(entry) && definitionId(entry.definition) === entry.id,
    );
  }

  /** Whole or not at all: a torn record would lose every state dir's entries. */
  private write(holders: Holder[]): void {
    const temporary = `${this.files.registry}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(holders));
    renameSync(temporary, this.files.registry);
  }
}

function isHolder(value: unknown): value is Holder {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry.definition === "string" &&
    typeof entry.id === "string" &&
    typeof entry.subnet === "string" &&
    subnetOf(entry.subnet) !== undefined
  );
}

function definitionId(path: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
    const id = (parsed as { id?: unknown } | null)?.id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

interface IpAddressLink {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

interface IpRoute {
  dst?: string;
  dev?: string;
}

/**
 * The subnets of the host's IPv4 addresses, on every interface up or down, and of its routes but the
 * default one, as dockerd checks a pool against (netutils.CheckRouteOverlaps); none on `skip`'s devices.
 */
export async function hostSubnets(skip: ReadonlySet<string>, signal?: AbortSignal): Promise<TakenSubnet[]> {
  const [links, routes] = await Promise.all([
    ipJson<IpAddressLink[]>(["-j", "-4", "addr", "show"], signal),
    ipJson<IpRoute[]>(["-j", "-4", "route", "show", "table", "all"], signal),
  ]);
  const taken: TakenSubnet[] = [];
  for (const link of links) {
    if (link.ifname === undefined || skip.has(link.ifname)) continue;
    for (const address of link.addr_info ?? []) {
      const cidr = `${address.local}/${address.prefixlen}`;
      const subnet = address.family === "inet" ? subnetOf(cidr) : undefined;
      if (subnet) taken.push({ subnet, what: `host interface ${link.ifname} (${cidr})` });
    }
  }
  for (const route of routes) {
    if (route.dst === undefined || route.dst === "default" || (route.dev && skip.has(route.dev))) continue;
    const cidr = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
    const subnet = subnetOf(cidr);
    // Local and broadcast routes (table local) are the addresses above, /32 each.
    if (subnet && subnet.prefix < 32)
      taken.push({ subnet, what: `host route ${cidr}${route.dev ? ` dev ${route.dev}` : ""}`, route: true });
  }
  return taken;
}

async function ipJson<T>(args: string[], signal: AbortSignal | undefined): Promise<T> {
  try {
    const { stdout } = await run("ip", args, { ...(signal ? { signal } : {}), maxBuffer: 64 << 20 });
    return JSON.parse(stdout || "[]") as T;
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, "reading the host's addresses and routes");
    throw new InternalError(`ip ${args.join(" ")}: ${(err as Error).message}`, { cause: err });
  }
}
