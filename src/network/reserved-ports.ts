/**
 * Published host ports are kept out of the kernel's own picks (net.ipv4.ip_local_reserved_ports) for as
 * long as they are published. Portmap's DNAT rules send every connection to a published port to the
 * container, so a host server that the kernel handed the same port (a `listen(0)`) would never see its
 * clients: they would reach the container. docker-proxy prevents that by holding the port open, which
 * needs a process for each container's lifetime; ctrd has none once `run -d` returns, and the kernel's
 * list needs none. A server that binds the port by number still can (as without docker-proxy), and
 * `allocateHostPorts` refuses a port some process has bound.
 *
 * The list is the host's (an administrator's entries are kept): this file records which entries ctrd
 * added, and removes only those, once no attachment publishes the port. Every change of the records
 * (attach, detach, GC) is followed by an update that reads them under the host lock, so the last one to
 * hold it writes what is published then; none is made under the ports lock, which would make every
 * attach wait behind another's wait for the host lock. Best effort: where the list cannot be written
 * (no root, a read-only /proc) ports are published without it.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { DeadlineExceededError } from "../errors.js";
import {
  HOST_RUN_DIR,
  isAlive,
  lockOwner,
  type ProcessIdentity,
  withLock,
  writeFileAtomic,
} from "./files.js";

/** The host's list, the lock every state dir takes to change it, and how long that lock is waited for. */
export interface ReservedPortsHost {
  /** The kernel's list. */
  sysctl: string;
  /** The list is the host's, shared by every state dir: one lock for all who change it. */
  lock: string;
  /**
   * Which state dirs hold each of ctrd's entries, host-wide (two publish one port number on different
   * host addresses: it stays listed until neither does): a state dir removed with entries still
   * listed (a test's temporary dir, a data root wiped while containers published ports) has no one left
   * to take them out, so the next update of any state dir does, once that dir no longer records them.
   */
  registry: string;
  /**
   * The list is best effort: its lock is held for a read and a write, so a wait this long means a holder
   * that is stuck (a stopped process), and publishing goes on without the list rather than waiting on
   * it. The next update (every attach, detach and GC) puts the list right.
   */
  lockWaitMs: number;
}

export const HOST_RESERVED_PORTS: ReservedPortsHost = {
  sysctl: "/proc/sys/net/ipv4/ip_local_reserved_ports",
  // Root's directory, not the world-writable /run/lock (see HOST_RUN_DIR).
  lock: `${HOST_RUN_DIR}/reserved-ports.lock`,
  registry: `${HOST_RUN_DIR}/reserved-ports.json`,
  lockWaitMs: 10_000,
};

export class ReservedPorts {
  constructor(
    /** Where the ports ctrd added are recorded (the network state dir). */
    private readonly stateDir: string,
    private readonly logger?: Logger,
    private readonly host: ReservedPortsHost = HOST_RESERVED_PORTS,
  ) {}

  /** The update running now, and the one queued behind it that every caller meanwhile shares. */
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  /**
   * Makes the list hold exactly the ports `published` reads (every attachment's, read under the host
   * lock) of those ctrd adds: adds the new ones, removes the others. Never fails: a list that cannot be
   * changed is logged. Callers while one update runs share the one after it: their records were written
   * before they called, so a run that starts later reads them.
   */
  update(published: () => Promise<Iterable<number>>): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start(published);
    const queued = this.running.then(() => {
      this.queued = undefined;
      return this.start(published);
    });
    this.queued = queued;
    return queued;
  }

  private start(published: () => Promise<Iterable<number>>): Promise<void> {
    const run = this.run(published).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async run(published: () => Promise<Iterable<number>>): Promise<void> {
    let holder: ProcessIdentity | undefined;
    try {
      // The network GC calls this at the start of every run and rm: with nothing published and nothing
      // of ours listed (the usual case), it neither takes the host-wide lock nor reads the list.
      if (new Set(await published()).size === 0 && this.ours().size === 0) return;
      // A holder this state dir or another already waited for in vain, still holding the lock: stopped,
      // not busy. Waited for again, it would cost every attach the whole wait.
      holder = await lockOwner(this.host.lock);
      if (holder && isAlive(holder) && sameProcess(holder, await lockOwner(this.stuckPath()))) {
        this.logger?.debug(
          { holder },
          "the reserved ports' host lock is held by a stuck process: not waited for",
        );
        return;
      }
      await withLock(this.host.lock, AbortSignal.timeout(this.host.lockWaitMs), async () => {
        this.updateLocked(new Set(await published()));
        rmSync(this.stuckPath(), { force: true });
      });
    } catch (err) {
      if (err instanceof DeadlineExceededError) {
        // Stuck only if it held the lock the whole wait: one that took it since (the stuck one let go)
        // is busy, and named stuck, its updates from then on would be skipped.
        const after = await lockOwner(this.host.lock).catch(() => undefined);
        if (after && holder && sameProcess(after, holder))
          await writeFileAtomic(this.stuckPath(), JSON.stringify(after)).catch(() => {});
      }
      this.logger?.warn({ err }, "could not keep published ports out of the kernel's ephemeral ports");
    }
  }

  /** The holder of the host lock that was waited for in vain (host-wide, beside the lock). */
  private stuckPath(): string {
    return `${this.host.lock}.stuck`;
  }

  private updateLocked(wanted: Set<number>): void {
    const registry = this.registry();
    const ours = this.ours(registry);
    let list: Set<number>;
    try {
      list = parsePortList(readFileSync(this.host.sysctl, "utf8"));
    } catch (err) {
      this.logger?.debug({ err }, "the kernel's reserved ports cannot be read");
      return;
    }
    const before = formatPortList(list);
    // The state dirs each entry of ctrd's is held for: this one if it still publishes the port, the
    // others while they record it (one removed, or that crashed between list and record, no longer does).
    const holders = new Map<number, string[]>();
    const records = new Map<string, Set<number>>();
    const recordOf = (owner: string): Set<number> =>
      records.get(owner) ?? records.set(owner, recordedBy(owner)).get(owner) ?? new Set();
    for (const [port, owners] of Object.entries(registry)) {
      const number = Number(port);
      const others = owners.filter((owner) => owner !== this.stateDir && recordOf(owner).has(number));
      holders.set(number, ours.has(number) && wanted.has(number) ? [this.stateDir, ...others] : others);
    }
    for (const port of ours) {
      if (wanted.has(port)) continue;
      ours.delete(port);
      // Another state dir publishing the same port number (on another host address) still holds it.
      if ((holders.get(port) ?? []).length === 0) list.delete(port);
    }
    for (const port of wanted) {
      // A port the administrator reserved stays theirs: not recorded, so never removed. One another state
      // dir added is held for this one too, so that it stays listed while either publishes it.
      const others = holders.get(port) ?? [];
      if (!list.has(port) || others.length > 0) {
        list.add(port);
        ours.add(port);
      }
    }
    for (const port of ours) {
      const owners = holders.get(port) ?? [];
      if (!owners.includes(this.stateDir)) holders.set(port, [...owners, this.stateDir]);
    }
    const written: Record<string, string | string[]> = {};
    for (const [port, owners] of holders) {
      if (owners.length === 0) {
        // Its state dirs no longer record it (removed, or it crashed between list and record): an orphan.
        list.delete(port);
        continue;
      }
      // One owner as a string, the form that earlier versions read.
      written[String(port)] = owners.length === 1 ? (owners[0] as string) : owners;
    }
    // The registry first: a crash after it leaves an entry the next update finds unrecorded and takes out
    // (and re-adds, if this state dir still publishes it), where one after the list would leave it for good.
    writeFileSync(this.host.registry, JSON.stringify(written));
    const after = formatPortList(list);
    if (after !== before) writeFileSync(this.host.sysctl, `${after}\n`);
    writeFileSync(this.recordPath(), JSON.stringify([...ours].sort((a, b) => a - b)));
  }

  /** Each registered port's state dirs (a string for one, as earlier versions wrote it, or a list). */
  private registry(): Record<string, string[]> {
    const registry: Record<string, string[]> = {};
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.host.registry, "utf8"));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
        for (const [port, owners] of Object.entries(parsed)) {
          const dirs = (Array.isArray(owners) ? owners : [owners]).filter(
            (owner): owner is string => typeof owner === "string",
          );
          if (isPort(Number(port)) && dirs.length > 0) registry[port] = dirs;
        }
    } catch {}
    return registry;
  }

  /**
   * The entries this state dir added: its record's, and those the registry names it for. The registry
   * is written before the kernel's list and the record after it, so an update that died between the
   * two left an entry only the registry attributes to it; read as the administrator's, it would stay
   * listed for good.
   */
  private ours(registry = this.registry()): Set<number> {
    const ours = recordedBy(this.stateDir);
    for (const [port, owners] of Object.entries(registry))
      if (owners.includes(this.stateDir)) ours.add(Number(port));
    return ours;
  }

  private recordPath(): string {
    return recordPathOf(this.stateDir);
  }
}

const sameProcess = (a: ProcessIdentity, b: ProcessIdentity | undefined): boolean =>
  b !== undefined && a.pid === b.pid && a.startTime === b.startTime;

const recordPathOf = (stateDir: string): string => join(stateDir, "reserved-ports.json");

/** The ports a state dir records as added by it (none when its record, or the dir, is gone). */
function recordedBy(stateDir: string): Set<number> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(recordPathOf(stateDir), "utf8"));
    if (Array.isArray(parsed)) return new Set(parsed.filter((port): port is number => isPort(port)));
  } catch {}
  return new Set();
}

const isPort = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value > 0 && value < 65536;

/** `8080,9000-9002` → {8080, 9000, 9001, 9002}. */
export function parsePortList(text: string): Set<number> {
  const ports = new Set<number>();
  for (const item of text.trim().split(",")) {
    const [low, high = low] = item.trim().split("-").map(Number);
    if (!isPort(low) || !isPort(high) || high < low) continue;
    for (let port = low; port <= high; port++) ports.add(port);
  }
  return ports;
}

/** The kernel's form: ascending, runs as ranges. */
export function formatPortList(ports: Set<number>): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const items: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    items.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return items.join(",");
}
