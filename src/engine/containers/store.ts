import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { badRequest, conflict, notFound } from "../errors.js";
import type { ContainerConfig, HostConfig } from "./config.js";
import type { HealthState } from "./health.js";
import type { MountPoint } from "./volume-mounts.js";

export type ContainerStatus =
  | "created"
  | "running"
  | "paused"
  | "restarting"
  | "removing"
  | "exited"
  | "dead";

/** api/types.ContainerState, as inspect shows it. */
export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  /** With a healthcheck: its status, failing streak and last results. */
  Health?: HealthState;
}

/** What the engine remembers of a container, on disk as `<dir>/<id>/config.json` (dockerd's config.v2.json). */
export interface ContainerRecord {
  Id: string;
  /** With the leading slash, as Docker keeps it. */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  HostConfig: HostConfig;
  /** The image id (sha256:…). */
  Image: string;
  State: ContainerState;
  RestartCount: number;
  /** Stopped by a user (stop, kill): `unless-stopped` does not restart it, even after the engine restarts. */
  ManuallyStopped: boolean;
  LogPath: string;
  /** The environment the container's process got (image's and container's merged): exec adds to it. */
  ProcessEnv?: string[];
  /**
   * The user the container's process runs as (names resolved), its supplementary groups (GroupAdd's
   * too) with it: exec's default, as dockerd's getUser gives an exec the container's groups.
   */
  ProcessUser?: { uid: number; gid: number; additionalGids?: number[] };
  /** Limits were changed by an update after create: each start applies them to the new task. */
  ResourcesUpdated?: boolean;
  /** Endpoints by network name, as the network module attached them. */
  Networks: Record<string, EndpointRecord>;
  /** The host ports actually bound, by container port (`80/tcp`). */
  Ports: Record<string, { HostIp: string; HostPort: string }[]>;
  /** Its volumes (named, anonymous), as made at create: who uses a volume is read from these. */
  MountPoints?: MountPoint[];
}

export interface EndpointRecord {
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  Aliases: string[] | null;
  /** The addresses the container asked for on this network (`--ip`), as inspect shows them. */
  IPAMConfig?: { IPv4Address?: string };
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkName(name: string): string {
  if (!NAME.test(name))
    throw badRequest(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name.startsWith("/") ? name : `/${name}`;
}

/** Container records by id, found by id, unique id prefix or name as Docker finds them. */
export class ContainerStore {
  private readonly records = new Map<string, ContainerRecord>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Reads every record left by an earlier engine; unreadable ones are logged and skipped. */
  load(): ContainerRecord[] {
    for (const id of readdirSync(this.dir)) {
      try {
        const record = JSON.parse(readFileSync(join(this.dir, id, "config.json"), "utf8")) as ContainerRecord;
        if (record.Id === id) this.records.set(id, record);
      } catch (err) {
        this.logger.warn({ err, id }, "skipping an unreadable container record");
      }
    }
    return [...this.records.values()];
  }

  containerDir(id: string): string {
    return join(this.dir, id);
  }

  all(): ContainerRecord[] {
    return [...this.records.values()];
  }

  add(record: ContainerRecord): void {
    for (const other of this.records.values()) {
      if (other.Name === record.Name)
        throw conflict(
          `Conflict. The container name "${record.Name}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
    }
    mkdirSync(this.containerDir(record.Id), { recursive: true, mode: 0o700 });
    this.records.set(record.Id, record);
    this.save(record);
  }

  /** Writes the record atomically (a crash leaves the old or the new one, never half of one). */
  save(record: ContainerRecord): void {
    if (!this.records.has(record.Id)) return;
    const path = join(this.containerDir(record.Id), "config.json");
    const temporary = `${path}.tmp`;
    try {
      writeFileSync(temporary, JSON.stringify(record));
      renameSync(temporary, path);
    } catch (err) {
      this.logger.error({ err, id: record.Id }, "could not save the container record");
    }
  }

  remove(id: string): void {
    this.records.delete(id);
    rmSync(this.containerDir(id), { recursive: true, force: true });
  }

  rename(record: ContainerRecord, name: string): void {
    const wanted = checkName(name);
    for (const other of this.records.values()) {
      if (other.Name === wanted && other.Id !== record.Id)
        throw conflict(
          `Conflict. The container name "${wanted}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
    }
    record.Name = wanted;
    this.save(record);
  }

  /** Whether a container has this name (with the leading slash). */
  nameTaken(name: string): boolean {
    for (const record of this.records.values()) if (record.Name === name) return true;
    return false;
  }

  /** By full id, name (with or without the slash), or unique id prefix; 404 as Docker words it. */
  find(ref: string): ContainerRecord | undefined {
    const exact = this.records.get(ref);
    if (exact) return exact;
    const name = ref.startsWith("/") ? ref : `/${ref}`;
    for (const record of this.records.values()) if (record.Name === name) return record;
    if (ref === "" || !/^[0-9a-f]+$/.test(ref)) return undefined;
    const matches = [...this.records.values()].filter((record) => record.Id.startsWith(ref));
    if (matches.length > 1) throw badRequest(`multiple IDs found with provided prefix: ${ref}`);
    return matches[0];
  }

  get(ref: string): ContainerRecord {
    const record = this.find(ref);
    if (!record) throw notFound(`No such container: ${ref}`);
    return record;
  }
}
