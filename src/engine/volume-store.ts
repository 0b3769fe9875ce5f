import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";
import type { CallOptions } from "../libcontainerd/types/client.js";
import { isMounted } from "../network/netns.js";
import { directorySize } from "./containers/changes.js";
import { badRequest, conflict, EngineError, notFound } from "./errors.js";
import type { EventBus } from "./events.js";

const execFileAsync = promisify(execFile);

/** The one volume driver this engine has (dockerd's default, volume/local). */
export const LOCAL_DRIVER = "local";

/** Set on volumes made without a name (moby's volume/service AnonymousLabel): prune takes only these by default. */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

/** What the engine keeps of a volume, as `<dir>/<name>/volume.json` beside its `_data`. */
export interface VolumeRecord {
  Name: string;
  Driver: typeof LOCAL_DRIVER;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
}

/** api/types/volume.Volume. */
export interface VolumeView extends VolumeRecord {
  Mountpoint: string;
  Scope: "local";
  UsageData?: { Size: number; RefCount: number };
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A local volume's name, checked as volume/local's validateName words its refusals (wrapped as its store's). */
export function checkVolumeName(name: string): string {
  const refuse = (reason: string): never => {
    throw badRequest(`create ${name}: ${reason}`);
  };
  if (name.length === 1)
    refuse("volume name is too short, names should be at least two alphanumeric characters");
  if (!NAME.test(name))
    refuse(
      `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  return name;
}

/** A driver other than `local`: dockerd looks for a plugin of that name and finds none. */
export function checkVolumeDriver(driver: string | undefined): void {
  if (driver !== undefined && driver !== "" && driver !== LOCAL_DRIVER)
    throw notFound(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
}

/** The local driver's options (volume/local validateOpts): `type`, `device`, `o`; each needs its partners. */
function checkOptions(options: Record<string, string>): void {
  for (const key of Object.keys(options)) {
    if (key === "size") throw badRequest("quota size requested but no quota support");
    if (!["type", "device", "o"].includes(key)) throw badRequest(`invalid option: "${key}"`);
  }
  const required: Record<string, string[]> = { device: ["type"], type: ["device"], o: ["device", "type"] };
  for (const [key, needs] of Object.entries(required))
    if (key in options)
      for (const need of needs)
        if (!(need in options)) throw badRequest(`missing required option: "${need}"`);
}

/**
 * A volume with driver options: dockerd's df and prune leave such volumes out (typically not local data even
 * with the local driver: a tmpfs, an NFS export).
 */
export function hasOptions(record: VolumeRecord): boolean {
  return Object.keys(record.Options ?? {}).length > 0;
}

/** A volume whose options say what to mount on its `_data` (a tmpfs, an NFS export): mounted while in use. */
function needsMount(record: VolumeRecord): boolean {
  return record.Options?.type !== undefined || record.Options?.device !== undefined;
}

function rfc3339(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The local volumes: one directory per volume under `dir` (`<name>/_data` and `<name>/volume.json`), as
 * dockerd's volume/local keeps them. Every change to the set is synchronous, so two requests never see
 * half of one: a volume is made in a hidden directory and renamed into place, and a removal renames it
 * away before its data is deleted; what a crash leaves of either is cleared at the next start. Who uses a
 * volume is asked of the containers (`usersOf`), never counted apart, so the two cannot disagree.
 */
export class VolumeStore {
  private readonly volumes = new Map<string, VolumeRecord>();
  /** Volumes with mount options: the containers that have them mounted, by volume name. */
  private readonly mounts = new Map<string, Set<string>>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
    private readonly events: EventBus,
    private readonly usersOf: (name: string) => string[],
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o701 });
  }

  /** Reads the volumes an earlier engine left; what a crash left half made or half removed goes. */
  async load(): Promise<void> {
    for (const entry of readdirSync(this.dir)) {
      const path = join(this.dir, entry);
      if (entry.startsWith(".")) {
        await rm(path, { recursive: true, force: true }).catch((err: unknown) =>
          this.logger.warn({ err, path }, "could not clear a volume left half made or half removed"),
        );
        continue;
      }
      try {
        const record = JSON.parse(readFileSync(join(path, "volume.json"), "utf8")) as VolumeRecord;
        if (record.Name === entry) this.volumes.set(entry, record);
      } catch (err) {
        this.logger.warn({ err, volume: entry }, "skipping an unreadable volume");
      }
    }
  }

  mountpoint(name: string): string {
    return join(this.dir, name, "_data");
  }

  find(name: string): VolumeRecord | undefined {
    return this.volumes.get(name);
  }

  /** GET /volumes/{name}: 404 worded as dockerd's. */
  get(name: string): VolumeRecord {
    const record = this.volumes.get(name);
    if (!record) throw notFound(`get ${name}: no such volume`);
    return record;
  }

  all(): VolumeRecord[] {
    return [...this.volumes.values()];
  }

  view(record: VolumeRecord): VolumeView {
    return { ...record, Mountpoint: this.mountpoint(record.Name), Scope: "local" };
  }

  /**
   * The volume of this name, made when there is none (an empty name: a new anonymous one, labelled so);
   * an existing one is given back as it is, as dockerd's store does (its labels and options unchanged).
   */
  create(
    name: string,
    request: {
      driver?: string;
      labels?: Record<string, string> | null;
      options?: Record<string, string> | null;
    } = {},
  ): { volume: VolumeRecord; created: boolean } {
    checkVolumeDriver(request.driver);
    const anonymous = name === "";
    const wanted = anonymous ? randomBytes(32).toString("hex") : checkVolumeName(name);
    const existing = this.volumes.get(wanted);
    if (existing) return { volume: existing, created: false };
    const options = request.options && Object.keys(request.options).length > 0 ? request.options : null;
    if (options) checkOptions(options);
    const labels = anonymous ? { ...request.labels, [ANONYMOUS_LABEL]: "" } : (request.labels ?? null);
    const record: VolumeRecord = {
      Name: wanted,
      Driver: LOCAL_DRIVER,
      CreatedAt: rfc3339(new Date()),
      Labels: labels,
      Options: options ?? (request.options === undefined || request.options === null ? null : {}),
    };
    const staging = join(this.dir, `.creating-${randomBytes(8).toString("hex")}`);
    try {
      mkdirSync(staging, { mode: 0o701 });
      mkdirSync(join(staging, "_data"), { mode: 0o755 });
      const fd = openSync(join(staging, "volume.json"), "wx", 0o600);
      try {
        writeSync(fd, JSON.stringify(record));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(staging, join(this.dir, wanted));
    } catch (err) {
      void rm(staging, { recursive: true, force: true });
      throw new EngineError(500, `create ${wanted}: ${(err as Error).message}`, { cause: err });
    }
    this.volumes.set(wanted, record);
    this.events.publish("volume", "create", wanted, { driver: LOCAL_DRIVER });
    return { volume: record, created: true };
  }

  /**
   * DELETE /volumes/{name}: a 409 naming the containers that use it (`force` does not change that, as in
   * dockerd; it only makes a missing volume no error). Gone from the set at once, its data deleted after.
   */
  async remove(name: string, options: { force?: boolean } = {}, opts: CallOptions = {}): Promise<void> {
    // Only before anything is done: once begun, a removal is not left half way.
    opts.signal?.throwIfAborted();
    const record = this.volumes.get(name);
    const gone = (): void => {
      if (!options.force) throw notFound(`get ${name}: no such volume`);
    };
    if (!record) return gone();
    const inUse = (): void => {
      const users = this.usersOf(name);
      if (users.length > 0) throw conflict(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    };
    inUse();
    // Mounted for a container that exited while the engine was down, too: never deleted through its mount
    // (a bind of a host directory would lose the host's files), so a mount that stays is an error. The
    // mount table escapes a space in the path (a data root's): isMounted compares it escaped.
    if (this.mounts.has(name) || isMounted(this.mountpoint(name))) {
      await this.unmountData(record);
      // Meanwhile another removal may have taken it, or a container: checked again, then gone in this tick.
      if (this.volumes.get(name) !== record) return gone();
      inUse();
    }
    const doomed = join(this.dir, `.removing-${randomBytes(8).toString("hex")}`);
    renameSync(join(this.dir, name), doomed);
    this.volumes.delete(name);
    this.events.publish("volume", "destroy", name, { driver: LOCAL_DRIVER });
    await rm(doomed, { recursive: true, force: true }).catch((err: unknown) =>
      this.logger.warn(
        { err, volume: name },
        "could not delete a removed volume's data (cleared at the next start)",
      ),
    );
  }

  /** Bytes in the volume's data (hard links once), -1 when it cannot be read, as dockerd's df shows it. */
  async size(name: string): Promise<number> {
    return directorySize(this.mountpoint(name)).catch(() => -1);
  }

  /** Whether the volume holds nothing yet (copy-up fills only an empty one). */
  async isEmpty(name: string): Promise<boolean> {
    return (await readdir(this.mountpoint(name))).length === 0;
  }

  /** The volume with its usage (df). */
  async usage(record: VolumeRecord): Promise<VolumeView> {
    return {
      ...this.view(record),
      UsageData: { Size: await this.size(record.Name), RefCount: this.usersOf(record.Name).length },
    };
  }

  users(name: string): string[] {
    return this.usersOf(name);
  }

  /**
   * A container starts with the volume: one with mount options is mounted (`mount -t TYPE -o O DEVICE`)
   * for its first user, as volume/local's Mount. `ref` is the container.
   */
  async mount(name: string, ref: string, opts: CallOptions = {}): Promise<void> {
    const record = this.volumes.get(name);
    if (!record || !needsMount(record)) return;
    const refs = this.mounts.get(name) ?? new Set<string>();
    // Mounted already when the engine restarted under a running container that has it: kept as it is.
    if (refs.size === 0 && !isMounted(this.mountpoint(name))) {
      const { type = "", device = "", o = "" } = record.Options ?? {};
      const args = ["-t", type, ...(o ? ["-o", o] : []), device, this.mountpoint(name)];
      try {
        await execFileAsync("mount", args, opts.signal ? { signal: opts.signal } : {});
      } catch (err) {
        throw new EngineError(
          500,
          `error while mounting volume '${this.mountpoint(name)}': failed to mount local volume: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`,
          { cause: err },
        );
      }
    }
    refs.add(ref);
    this.mounts.set(name, refs);
  }

  /** The container is done with the volume: a mounted one is unmounted after its last user. */
  async unmount(name: string, ref: string): Promise<void> {
    const record = this.volumes.get(name);
    const refs = this.mounts.get(name);
    if (!record || !refs) return;
    refs.delete(ref);
    if (refs.size === 0)
      await this.unmountData(record).catch((err: unknown) =>
        this.logger.warn({ err, volume: name }, "could not unmount the volume"),
      );
  }

  /**
   * Unmounts the volume's `_data`; an error when something is still mounted there. Lazily, as moby's
   * mount.Unmount (MNT_DETACH): a bind of a host tree with mounts in it (o=rbind), or a file a host
   * process holds open, would make a plain umount fail with EBUSY, and the volume could never be removed.
   */
  private async unmountData(record: VolumeRecord): Promise<void> {
    this.mounts.delete(record.Name);
    const path = this.mountpoint(record.Name);
    await execFileAsync("umount", ["--lazy", path]).catch(() => {});
    if (isMounted(path)) throw new EngineError(500, `remove ${record.Name}: could not unmount ${path}`);
  }
}
