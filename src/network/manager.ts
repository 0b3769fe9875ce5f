/**
 * Container networking beside the backends, as Docker keeps libnetwork beside libcontainerd: callers
 * (ctrd, the engine, `run`) attach a container before creating it, put the attachment into its spec,
 * and detach it after deleting it. The drivers never call this.
 *
 * On disk, under `stateDir` (runtime state, gone with a reboot as the namespaces are):
 *   attachments/NS/ID.json      the record of one container's attachment: written first, removed last,
 *                               holding the CNI config and ADD result (libcni's cache) so DEL works
 *                               after a crash. It owns the container's netns and files (its sandbox,
 *                               in libnetwork's words) and is its eth0; disconnected from its network it
 *                               stays, as network `none`, for as long as the container does
 *   attachments/NS/ID@ethN.json each network connected later (`connect`): its own interface in the same
 *                               netns, its own CNI config, result and record; no default route
 *   containers/NS/ID/           its netns file, hosts and resolv.conf
 *   ipam/                       host-local's reservations
 *   locks/                      cross-process locks (ctrd commands run concurrently)
 * and under `dataDir` (kept): networks/NAME.json, the network definitions.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { callSignal, delay } from "../libcontainerd/call.js";
import type { CallOptions } from "../libcontainerd/types/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
} from "../libcontainerd/types/errors.js";
import {
  CNI_VERSION,
  type CniConfigList,
  CniPluginError,
  CniPlugins,
  type CniResult,
  DEFAULT_PLUGIN_DIRS,
  settleAll,
} from "./cni.js";
import {
  checkDnsServers,
  HOST_GATEWAY,
  type HostsEntry,
  hostsFile,
  hostsLines,
  resolvConf,
  withHostGateway,
} from "./dns.js";
import {
  acquireLock,
  isAlive,
  type ProcessIdentity,
  readJson,
  removeOrphanTemporaries,
  rewriteInPlace,
  thisProcess,
  withLock,
  writeFileAtomic,
} from "./files.js";
import { allocateHostPorts } from "./host-ports.js";
import { HostSubnets, type HostSubnetsFiles, hostSubnets, type TakenSubnet } from "./host-subnets.js";
import {
  deleteLink,
  ensureHostPortMasquerade,
  ensureMasquerade,
  HOSTPORT_SETMARK_CHAIN,
  linkExists,
  removeMasquerade,
  setDefaultRoute,
} from "./links.js";
import { createNetns, isNetns, removeNetns } from "./netns.js";
import { type PortMapping, type PortRequest, parsePortSpec } from "./ports.js";
import { ReservedPorts, type ReservedPortsHost } from "./reserved-ports.js";
import { isolatedAttachment } from "./spec.js";
import {
  AddressInUseError,
  checkGateway,
  defaultGateway,
  formatSubnet,
  type Ipv4Subnet,
  overlaps,
  parseSubnet,
  staticAddressRefusal,
  subnetsOf,
} from "./subnet.js";
import {
  type AttachOptions,
  type ConnectOptions,
  type CreateNetworkOptions,
  DEFAULT_BRIDGE,
  DEFAULT_NETWORK,
  DEFAULT_SUBNET,
  HOST_NETWORK,
  type NetworkAttachment,
  type NetworkDetails,
  type NetworkInfo,
  NO_NETWORK,
  type PendingAttachment,
  USER_SUBNET_POOL,
} from "./types.js";

export interface NetworkManagerOptions {
  /** Runtime state: netns files, attachment records, IPAM reservations. */
  stateDir: string;
  /** Network definitions, kept across reboots. */
  dataDir: string;
  /** Where the CNI plugins are; default /usr/lib/cni (Debian), then /opt/cni/bin. */
  pluginDirs?: readonly string[];
  /** The default network's settings when it is first created (later: `removeNetwork` and use it again). */
  defaultNetwork?: { subnet?: string; gateway?: string; bridge?: string };
  /** The host's resolv.conf (default /etc/resolv.conf). */
  hostResolvConf?: string;
  /** The kernel's reserved ports, their host-wide lock and registry (default: the host's; see reserved-ports.ts). */
  reservedPorts?: ReservedPortsHost;
  /** The host-wide record of every state dir's subnets and its lock (default: the host's; see host-subnets.ts). */
  hostSubnets?: HostSubnetsFiles;
  logger?: Logger;
}

interface AttachmentRecord extends NetworkAttachment {
  version: 1;
  /** The CNI_CONTAINERID: random, so that state dirs sharing a host never meet in iptables or IPAM. */
  cniContainerId: string;
  owner: ProcessIdentity;
  state: "attaching" | "attached";
  hostname: string;
  aliases: string[];
  extraHosts?: HostsEntry[];
  createdAt: string;
  /** The container's interface (CNI_IFNAME); absent means eth0 (records from before `connect`). */
  ifName?: string;
  /** The default route was moved onto this interface when the network that gave it was disconnected. */
  defaultRoute?: boolean;
  /** libcni's cache: the config list ADD ran with, its capability arguments and its result. */
  config?: CniConfigList;
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
  /** Ports taken at each start rather than at attach (publishWhileRunning); `ports` holds them while taken. */
  portRequests?: PortRequest[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DEVICE = /^[A-Za-z0-9_.-]{1,15}$/;
const ADDRESS = /^[0-9a-fA-F.:]{2,45}$/;
const IFNAME = "eth0";
/** The interfaces of networks connected later: eth1, eth2, ... as Docker names them. */
const INTERFACE = /^eth[0-9]{1,4}$/;
const DEFAULT_ROUTE = "0.0.0.0/0";
const LOOPBACK: CniConfigList = {
  cniVersion: CNI_VERSION,
  name: "loopback",
  plugins: [{ type: "loopback" }],
};

function checkName(value: string, what: string): void {
  if (!NAME.test(value)) {
    throw new InvalidArgumentError(
      `invalid ${what} ${JSON.stringify(value)}: want letters, digits, '_', '.', '-' (64 at most, starting with a letter or digit)`,
    );
  }
}

export class NetworkManager {
  private readonly plugins: CniPlugins;
  /** Published ports kept out of the kernel's ephemeral picks (see reserved-ports.ts). */
  private readonly reservedPorts: ReservedPorts;
  /** Every state dir's networks' subnets, host-wide (see host-subnets.ts). */
  private readonly hostSubnets: HostSubnets;

  constructor(private readonly options: NetworkManagerOptions) {
    this.plugins = new CniPlugins(options.pluginDirs ?? DEFAULT_PLUGIN_DIRS);
    this.reservedPorts = new ReservedPorts(options.stateDir, options.logger, options.reservedPorts);
    this.hostSubnets = new HostSubnets(options.hostSubnets);
  }

  // ---- networks -------------------------------------------------------------------------------

  async createNetwork(opts: CreateNetworkOptions): Promise<NetworkInfo> {
    checkName(opts.name, "network name");
    if (opts.name === NO_NETWORK || opts.name === HOST_NETWORK) {
      throw new InvalidArgumentError(
        `network name ${opts.name} is reserved for the ${opts.name} network mode`,
      );
    }
    const signal = callSignal(opts);
    return withLock(this.lockPath("networks"), signal, async () => {
      if (await this.readDefinition(opts.name)) {
        throw new AlreadyExistsError(`network ${opts.name} already exists`);
      }
      return this.define(opts, signal);
    });
  }

  async listNetworks(opts?: CallOptions): Promise<NetworkInfo[]> {
    void opts;
    const dir = join(this.options.dataDir, "networks");
    const names = existsSync(dir) ? (await readdir(dir)).filter((n) => n.endsWith(".json")) : [];
    const networks: NetworkInfo[] = [];
    for (const file of names) {
      const network = await this.readDefinition(file.slice(0, -".json".length));
      if (network) networks.push(network);
    }
    return networks.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The network and the containers on it; NotFoundError for an unknown name. */
  async inspectNetwork(name: string, opts?: CallOptions): Promise<NetworkDetails> {
    void opts;
    const network = await this.readDefinition(name);
    if (!network) throw this.unknownNetwork(name);
    const containers = (await this.allRecords())
      .filter((record) => record.network === name && record.state === "attached")
      .map((record) => ({
        namespace: record.namespace,
        containerId: record.containerId,
        address: record.addresses[0] ?? "",
        ports: record.ports,
      }));
    return { ...network, containers };
  }

  /** Refused while a container is attached; removes the bridge device and its IPAM state too. */
  async removeNetwork(name: string, opts?: CallOptions): Promise<void> {
    const signal = callSignal(opts);
    await withLock(this.lockPath("networks"), signal, async () => {
      const network = await this.readDefinition(name);
      if (!network) throw this.unknownNetwork(name);
      const users = (await this.allRecords()).filter((record) => record.network === name);
      if (users.length > 0) {
        const ids = users.map((record) => `${record.namespace}/${record.containerId}`).join(", ");
        throw new FailedPreconditionError(
          `network ${name} is in use by ${users.length} container(s): ${ids}`,
        );
      }
      await removeMasquerade(network.subnet, network.bridge, name, signal);
      if (linkExists(network.bridge)) await deleteLink(network.bridge, signal);
      await rm(join(this.options.stateDir, "ipam", name), { recursive: true, force: true });
      await rm(join(this.options.stateDir, "releasing", name), { recursive: true, force: true });
      await rm(this.definitionPath(name), { force: true });
      // After the definition: a crash between leaves an entry the next claim finds orphaned.
      await this.hostSubnets.release(resolve(this.definitionPath(name)), signal);
    });
  }

  /**
   * The host as containers reach it, for `--add-host NAME:host-gateway`: the default network's
   * gateway, as dockerd's default host-gateway-ip is the default bridge's IPv4 gateway. Before the
   * default network is first used, the gateway it will have (nothing is created for asking).
   */
  async hostGateway(opts?: CallOptions): Promise<string> {
    return (await this.defaultNetworkAddresses(opts)).gateway;
  }

  /** The default network's subnet and gateway: its definition's, or before its first use the ones it will have. */
  async defaultNetworkAddresses(opts?: CallOptions): Promise<{ subnet: string; gateway: string }> {
    void opts;
    const defined = await this.readDefinition(DEFAULT_NETWORK);
    if (defined) return { subnet: defined.subnet, gateway: defined.gateway };
    const settings = this.options.defaultNetwork ?? {};
    const subnet = parseSubnet(settings.subnet ?? DEFAULT_SUBNET);
    return { subnet: formatSubnet(subnet), gateway: settings.gateway ?? defaultGateway(subnet) };
  }

  // ---- containers -----------------------------------------------------------------------------

  /**
   * Sets up the container's network before it is created: nothing for `none`; for `host`, the host's
   * files; for a named network, a netns file with the CNI chain run in it, published ports, and
   * generated hosts and resolv.conf. On any failure what was set up is torn down before the error.
   */
  async attach(opts: AttachOptions): Promise<NetworkAttachment> {
    return (await this.prepare(opts)).ready;
  }

  /**
   * `attach` in two steps, so that the CNI plugins run while containerd creates the container and its
   * task: the attachment returned at once has the paths the spec needs (the netns file exists, the
   * host ports are taken); `ready` settles when the plugins are done, and must have resolved before
   * the task starts. If `ready` rejects, everything was already undone; if the caller gives up
   * before, `detach` waits for the set-up to finish and then removes it.
   */
  async prepare(opts: AttachOptions): Promise<PendingAttachment> {
    checkName(opts.namespace, "namespace");
    checkName(opts.containerId, "container id");
    const network = opts.network ?? NO_NETWORK;
    const requests = (opts.ports ?? []).map((port) =>
      typeof port === "string" ? parsePortSpec(port) : port,
    );
    const dns = [...(opts.dns ?? [])];
    checkDnsServers(dns);
    if ((network === NO_NETWORK || network === HOST_NETWORK) && requests.length > 0) {
      throw new InvalidArgumentError(
        `ports cannot be published with --network ${network}: ${network === HOST_NETWORK ? "the container uses the host's ports directly" : "it has no network"}`,
      );
    }
    // host-gateway resolved now, as dockerd does when it builds the sandbox: the record keeps addresses.
    const extraHosts = opts.extraHosts?.some((entry) => entry.address === HOST_GATEWAY)
      ? withHostGateway(opts.extraHosts, await this.hostGateway(opts))
      : [...(opts.extraHosts ?? [])];
    if (
      network === NO_NETWORK &&
      dns.length === 0 &&
      extraHosts.length === 0 &&
      opts.ipv4Address === undefined
    )
      return isolatedAttachment(opts.namespace, opts.containerId);
    const signal = callSignal(opts);
    const definition =
      network === NO_NETWORK || network === HOST_NETWORK ? undefined : await this.network(network, signal);
    checkStaticAddress(network, definition, opts.ipv4Address);
    const config = definition
      ? this.configList(definition, requests.length > 0, true, opts.ipv4Address !== undefined)
      : undefined;
    if (config) {
      this.plugins.checkAll(config);
      this.plugins.find(LOOPBACK.plugins[0]!.type);
    }
    const release = await acquireLock(
      this.lockPath(`container-${opts.namespace}-${opts.containerId}`),
      signal,
    );
    let record: AttachmentRecord | undefined;
    const undo = async (err: unknown): Promise<never> => {
      const failed = record;
      if (failed) {
        await this.tearDown(failed)
          .then(() =>
            failed.state === "attached" && failed.network !== DEFAULT_NETWORK
              ? this.refreshHosts([failed.network], undefined, undefined)
              : undefined,
          )
          .catch((cleanup: unknown) =>
            this.options.logger?.warn(
              { err: cleanup, container: opts.containerId },
              "undoing a failed network attach",
            ),
          );
      }
      await release();
      throw err;
    };
    try {
      if (await readJson(this.recordPath(opts.namespace, opts.containerId))) {
        throw new AlreadyExistsError(
          `container ${opts.containerId} (namespace ${opts.namespace}) is already attached to a network; delete it first`,
        );
      }
      record = await this.reserve({ ...opts, extraHosts }, definition, requests, config, dns, signal);
      await this.createFiles(record, dns, signal);
    } catch (err) {
      return undo(err);
    }
    const prepared = record;
    const ready = this.runPlugins(prepared, signal).then(async () => {
      await release();
      return publicView(prepared);
    }, undo);
    // Whoever prepared may fail before awaiting `ready` (and then detach): not an unhandled rejection.
    ready.catch(() => {});
    return { attachment: publicView(prepared), ready };
  }

  /** The container's attachment, or undefined when it has none (or `none`). */
  async attachment(namespace: string, containerId: string): Promise<NetworkAttachment | undefined> {
    const record = await this.readRecord(namespace, containerId);
    return record?.state === "attached" ? publicView(record) : undefined;
  }

  /** Every network the container is on, in the order of its interfaces (eth0 first). */
  async attachments(namespace: string, containerId: string): Promise<NetworkAttachment[]> {
    if (!NAME.test(namespace) || !NAME.test(containerId)) return [];
    return (await this.containerRecords(namespace, containerId))
      .filter((record) => record.state === "attached" && record.config)
      .map(publicView);
  }

  /**
   * Connects an attached container to one more network, as `docker network connect` does, whether its
   * task runs or not: a new interface in its netns (eth0 when its first network was disconnected, else
   * the first free ethN), the CNI chain run for it alone, its names in the network's hosts files and
   * the network's containers in its own. The default route stays where it is (the first network's);
   * only a container with none gets it here. On failure the interface is removed before the error.
   */
  async connect(opts: ConnectOptions): Promise<NetworkAttachment> {
    checkName(opts.namespace, "namespace");
    checkName(opts.containerId, "container id");
    if (opts.network === NO_NETWORK || opts.network === HOST_NETWORK) {
      throw new InvalidArgumentError(`a container cannot be connected to the ${opts.network} network`);
    }
    const signal = callSignal(opts);
    const definition = await this.network(opts.network, signal);
    checkStaticAddress(opts.network, definition, opts.ipv4Address);
    const release = await acquireLock(
      this.lockPath(`container-${opts.namespace}-${opts.containerId}`),
      signal,
    );
    let record: AttachmentRecord | undefined;
    try {
      let current = await this.containerRecords(opts.namespace, opts.containerId);
      if (await this.undoAbandonedConnects(current))
        current = await this.containerRecords(opts.namespace, opts.containerId);
      const sandbox = current.find((other) => interfaceOf(other) === IFNAME);
      if (!sandbox) {
        throw new NotFoundError(
          `container ${opts.containerId} (namespace ${opts.namespace}) has no network attachment`,
        );
      }
      if (!sandbox.netnsPath || sandbox.state !== "attached") {
        throw new FailedPreconditionError(
          `container ${opts.containerId} (namespace ${opts.namespace}) has no network namespace of its own (network ${sandbox.network}): it cannot be connected to another network`,
        );
      }
      if (current.some((other) => other.network === opts.network)) {
        throw new AlreadyExistsError(
          `container ${opts.containerId} (namespace ${opts.namespace}) is already connected to network ${opts.network}`,
        );
      }
      // The sandbox on no network (all disconnected): this one becomes eth0, and the ports its own.
      const requests = sandbox.config
        ? []
        : (opts.ports ?? []).map((port) => (typeof port === "string" ? parsePortSpec(port) : port));
      const config = this.configList(
        definition,
        requests.length > 0,
        !current.some(hasDefaultRoute),
        opts.ipv4Address !== undefined,
      );
      this.plugins.checkAll(config);
      const fresh: AttachmentRecord = {
        version: 1,
        namespace: opts.namespace,
        containerId: opts.containerId,
        network: opts.network,
        ifName: sandbox.config ? freeInterface(current) : IFNAME,
        cniContainerId: randomBytes(32).toString("hex"),
        owner: thisProcess(),
        state: "attaching",
        hostname: sandbox.hostname,
        aliases: [...(opts.aliases ?? [])],
        ...(sandbox.extraHosts ? { extraHosts: sandbox.extraHosts } : {}),
        createdAt: new Date().toISOString(),
        addresses: [],
        ports: [],
        config,
        netnsPath: sandbox.netnsPath,
        ...(sandbox.hostsPath ? { hostsPath: sandbox.hostsPath } : {}),
        ...(sandbox.resolvConfPath ? { resolvConfPath: sandbox.resolvConfPath } : {}),
        ...(opts.ipv4Address !== undefined
          ? { capabilityArgs: staticAddressArgs(definition, opts.ipv4Address) }
          : {}),
        ...(requests.length > 0 ? { portRequests: requests } : {}),
      };
      // Recorded before the plugins run, as an attach's record is: a crash from here on is found by the GC.
      // Undone (its DEL) only once written: before, no plugin ran, and a DEL for a network removed
      // meanwhile would make host-local's dir of it again, left for good.
      await this.writeNewRecord(fresh, definition, signal);
      record = fresh;
      await this.runPlugins(record, signal, false);
      return publicView(record);
    } catch (err) {
      const failed = record;
      if (failed) {
        await this.leave(failed)
          .then(() =>
            failed.state === "attached" ? this.refreshHosts([failed.network], failed, undefined) : undefined,
          )
          .catch((cleanup: unknown) =>
            this.options.logger?.warn(
              { err: cleanup, container: opts.containerId, network: opts.network },
              "undoing a failed network connect",
            ),
          );
      }
      throw err;
    } finally {
      await release();
    }
  }

  /**
   * Takes the container off one of its networks, as `docker network disconnect` does: CNI DEL for that
   * interface alone (it goes from the netns, its address and rules with it), its names gone from the
   * network's hosts files and the network's containers from its own. The netns stays with the container,
   * even with no network left, so that it can be connected again. NotFoundError when it is not on it.
   */
  async disconnect(
    namespace: string,
    containerId: string,
    network: string,
    opts?: CallOptions,
  ): Promise<void> {
    checkName(namespace, "namespace");
    checkName(containerId, "container id");
    const signal = callSignal(opts);
    await withLock(this.lockPath(`container-${namespace}-${containerId}`), signal, async () => {
      const record = (await this.containerRecords(namespace, containerId)).find(
        (other) => other.network === network && other.config,
      );
      if (!record) {
        throw new NotFoundError(
          `container ${containerId} (namespace ${namespace}) is not connected to network ${network}`,
        );
      }
      await this.leave(record);
      if (record.ports.length > 0) await this.updateReservedPorts();
      if (record.state === "attached") await this.refreshHosts([network], record, signal);
    });
  }

  /** CNI CHECK on the container's network: an error when something of its set-up has gone. */
  async check(namespace: string, containerId: string, opts?: CallOptions): Promise<void> {
    const record = await this.readRecord(namespace, containerId);
    if (!record)
      throw new NotFoundError(`container ${containerId} (namespace ${namespace}) has no network attachment`);
    if (!record.config || !record.result || !record.netnsPath) return;
    try {
      await this.plugins.check(
        record.config,
        this.runtime(record, record.netnsPath),
        record.result,
        callSignal(opts),
      );
    } catch (err) {
      // portmap before CNI plugins 1.2 checks IPv6 rules it never wrote for an IPv4-only container
      // (containernetworking/plugins#819): its IPv4 rules were checked before that, so this is a pass.
      const ipv6Bug =
        err instanceof CniPluginError && err.plugin === "portmap" && /could not check ipv6/.test(err.message);
      if (!ipv6Bug) throw err;
    }
  }

  /**
   * After the container is deleted: CNI DEL on every network it is on (those connected later first),
   * the netns and files removed, its names gone from the networks' other hosts files. Idempotent; a DEL
   * that fails keeps its record, so a later detach or the start-up GC tries again.
   */
  async detach(namespace: string, containerId: string, opts?: CallOptions): Promise<void> {
    await this.detachIf(namespace, containerId, () => true, callSignal(opts));
  }

  /**
   * Removes what crashed callers left: attachments of `namespace` whose owner process is gone and whose
   * container no longer exists (`existingContainers` is asked only when there is such a record), and
   * container dirs with no record. Returns the container ids cleaned up.
   */
  async gc(
    namespace: string,
    existingContainers: () => Promise<Iterable<string>>,
    opts?: CallOptions,
  ): Promise<string[]> {
    const signal = callSignal(opts);
    // Records are read before the containers are listed: a container whose owner was already gone when
    // its record was read cannot be created afterwards, so "absent from the list" then means gone.
    const orphans = (await this.records(namespace)).filter((record) => !isAlive(record.owner));
    const cleaned: string[] = [];
    if (orphans.length > 0) {
      const live = new Set(await existingContainers());
      // A container's records (one per network) are cleaned up together: the netns goes with the last.
      const orphanIds = new Set(orphans.map((record) => record.cniContainerId));
      for (const containerId of new Set(orphans.map((record) => record.containerId))) {
        if (live.has(containerId)) {
          // The container stays with its networks, but not with a connect its killed process left half made.
          await withLock(this.lockPath(`container-${namespace}-${containerId}`), signal, async () =>
            this.undoAbandonedConnects(await this.containerRecords(namespace, containerId)),
          ).catch((err: unknown) =>
            this.options.logger?.warn({ err, container: containerId }, "network GC could not undo a connect"),
          );
          continue;
        }
        try {
          await this.detachIf(namespace, containerId, (now) => orphanIds.has(now.cniContainerId), signal);
          cleaned.push(containerId);
        } catch (err) {
          this.options.logger?.warn({ err, container: containerId }, "network GC could not clean up");
        }
      }
    }
    await removeOrphanTemporaries(join(this.options.stateDir, "attachments", namespace));
    await this.removeStaleReleasing();
    await this.updateReservedPorts();
    const dir = join(this.options.stateDir, "containers", namespace);
    for (const id of existsSync(dir) ? readdirSync(dir) : []) {
      if (existsSync(this.recordPath(namespace, id))) continue;
      await withLock(this.lockPath(`container-${namespace}-${id}`), signal, async () => {
        if (existsSync(this.recordPath(namespace, id))) return;
        await removeNetns(join(dir, id, "netns"));
        await rm(join(dir, id), { recursive: true, force: true });
      });
    }
    return cleaned;
  }

  // ---- internals ------------------------------------------------------------------------------

  private async detachIf(
    namespace: string,
    containerId: string,
    matches: (record: AttachmentRecord) => boolean,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await withLock(this.lockPath(`container-${namespace}-${containerId}`), signal, async () => {
      const records = (await this.containerRecords(namespace, containerId)).filter(matches);
      // The networks connected later first: their DELs find the netns, which goes with eth0's record.
      let first: unknown;
      for (const record of records.reverse()) {
        try {
          if (interfaceOf(record) === IFNAME) await this.tearDown(record);
          else await this.removeConnected(record);
        } catch (err) {
          first ??= err;
        }
      }
      const networks = records
        .filter((record) => record.state === "attached")
        .map((record) => record.network);
      if (networks.some((network) => network !== DEFAULT_NETWORK && network !== NO_NETWORK)) {
        await this.refreshHosts(networks, undefined, undefined).catch((err: unknown) =>
          this.options.logger?.warn({ err, networks }, "updating the networks' hosts files"),
        );
      }
      if (first !== undefined) throw first;
    });
  }

  /**
   * Under the container's lock: the connects whose process was killed before they ended (their record
   * still attaching, its owner gone) undone as their own failure would have undone them. Left, such a
   * record would keep its address, interface and rules for as long as the container, and refuse every
   * later connect to its network ("already connected") or, on eth0, to any ("no network namespace").
   * Only `connect`'s records (they name their interface): an attach's is its container's to finish.
   * True when there was one.
   */
  private async undoAbandonedConnects(records: readonly AttachmentRecord[]): Promise<boolean> {
    const abandoned = records.filter(
      (record) => record.ifName !== undefined && record.state === "attaching" && !isAlive(record.owner),
    );
    for (const record of abandoned) await this.leave(record);
    return abandoned.length > 0;
  }

  /** The record first (so a crash from here on is found by the GC), with the host ports taken. */
  private async reserve(
    opts: AttachOptions,
    definition: NetworkInfo | undefined,
    requests: PortRequest[],
    config: CniConfigList | undefined,
    dns: string[],
    signal: AbortSignal | undefined,
  ): Promise<AttachmentRecord> {
    const record: AttachmentRecord = {
      version: 1,
      namespace: opts.namespace,
      containerId: opts.containerId,
      network: opts.network ?? NO_NETWORK,
      cniContainerId: randomBytes(32).toString("hex"),
      owner: thisProcess(),
      state: "attaching",
      hostname: opts.hostname ?? opts.containerId,
      aliases: [...(opts.aliases ?? [])],
      ...(opts.extraHosts?.length ? { extraHosts: [...opts.extraHosts] } : {}),
      createdAt: new Date().toISOString(),
      addresses: [],
      ports: [],
    };
    if (config) record.config = config;
    if (definition && opts.ipv4Address !== undefined)
      record.capabilityArgs = staticAddressArgs(definition, opts.ipv4Address);
    this.assignPaths(record, dns);
    if (requests.length > 0 && opts.publishWhileRunning) record.portRequests = requests;
    if (requests.length === 0 || opts.publishWhileRunning) {
      await this.writeNewRecord(record, definition, signal);
      return record;
    }
    await this.takePorts(record, requests, signal, () => this.writeNewRecord(record, definition, signal));
    return record;
  }

  /**
   * Under the ports lock: the host ports for `requests` checked against every other record's and
   * allocated into the record (and portmap's runtime argument), then `save`d before the lock goes.
   */
  private async takePorts(
    record: AttachmentRecord,
    requests: readonly PortRequest[],
    signal: AbortSignal | undefined,
    save: () => Promise<void>,
  ): Promise<void> {
    await withLock(this.lockPath("ports"), signal, async () => {
      const published = (await this.allRecords()).flatMap((other) =>
        other.ports.map((port) => ({ port, owner: `${other.namespace}/${other.containerId}` })),
      );
      record.ports = await allocateHostPorts(requests, published);
      record.capabilityArgs = {
        ...record.capabilityArgs,
        portMappings: record.ports.map((port) => ({
          hostPort: port.hostPort,
          containerPort: port.containerPort,
          protocol: port.protocol,
          hostIP: port.hostIp,
        })),
      };
      await save();
    });
    // After the ports lock, not under it: the host-wide list may have to wait for its lock.
    await this.updateReservedPorts();
  }

  /**
   * For an attachment made with publishWhileRunning, before its task starts: its host ports taken
   * (the same checks as attach's, against what other containers hold now) and portmap's rules added
   * (its ADD alone, with the bridge's cached result). Nothing when they are taken already or none were
   * asked for. On failure nothing stays taken. Returns the ports as published.
   */
  async publishPorts(namespace: string, containerId: string, opts?: CallOptions): Promise<PortMapping[]> {
    const signal = callSignal(opts);
    return withLock(this.lockPath(`container-${namespace}-${containerId}`), signal, async () => {
      const record = await this.readRecord(namespace, containerId);
      const requests = record?.portRequests ?? [];
      if (!record || requests.length === 0 || record.ports.length > 0) return record?.ports ?? [];
      const portmap = portmapOf(record);
      if (!portmap || !record.result || !record.netnsPath) return [];
      await this.takePorts(record, requests, signal, () =>
        writeFileAtomic(this.pathOf(record), JSON.stringify(record)),
      );
      try {
        await this.plugins.add(
          portmap,
          this.runtime(record, record.netnsPath),
          signal,
          undefined,
          record.result,
        );
      } catch (err) {
        await this.givePortsBack(record, portmap).catch((cleanup: unknown) =>
          this.options.logger?.warn(
            { err: cleanup, container: containerId },
            "undoing a failed port publish",
          ),
        );
        throw err;
      }
      return record.ports.map((port) => ({ ...port }));
    });
  }

  /**
   * When the task of an attachment made with publishWhileRunning has ended: portmap's rules removed
   * (its DEL alone), the host ports and their reserved-ports entries given back. Idempotent.
   */
  async unpublishPorts(namespace: string, containerId: string, opts?: CallOptions): Promise<void> {
    const signal = callSignal(opts);
    await withLock(this.lockPath(`container-${namespace}-${containerId}`), signal, async () => {
      const record = await this.readRecord(namespace, containerId);
      if (!record?.portRequests || record.ports.length === 0) return;
      const portmap = portmapOf(record);
      if (portmap) await this.givePortsBack(record, portmap);
    });
  }

  /** portmap's DEL, then the record without the ports (kept when the DEL fails, to be tried again). */
  private async givePortsBack(record: AttachmentRecord, portmap: CniConfigList): Promise<void> {
    const netns = record.netnsPath && isNetns(record.netnsPath) ? record.netnsPath : "";
    await this.plugins.del(portmap, this.runtime(record, netns), record.result);
    record.ports = [];
    if (record.capabilityArgs) {
      const { portMappings: _released, ...rest } = record.capabilityArgs;
      if (Object.keys(rest).length > 0) record.capabilityArgs = rest;
      else delete record.capabilityArgs;
    }
    await writeFileAtomic(this.pathOf(record), JSON.stringify(record));
    await this.updateReservedPorts();
  }

  /**
   * The first write of a new record. On a named network it is made under the networks lock, and only
   * while the network is still the one its config was made from: removeNetwork takes that lock and
   * refuses a network with records, so once this is written the network stays until the record goes,
   * and a network removed since the caller read it (without the lock, as every attach does) fails the
   * attach here. Written regardless, the bridge plugin would make the removed network's bridge again,
   * and nothing would ever remove it.
   */
  private async writeNewRecord(
    record: AttachmentRecord,
    definition: NetworkInfo | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (!definition) {
      await writeFileAtomic(this.pathOf(record), JSON.stringify(record));
      return;
    }
    await withLock(this.lockPath("networks"), signal, async () => {
      if ((await this.readDefinition(definition.name))?.id !== definition.id)
        throw this.unknownNetwork(definition.name);
      await writeFileAtomic(this.pathOf(record), JSON.stringify(record));
    });
  }

  /** Where the record's files go, recorded before any of them exists, so that a crash from then on finds them. */
  private assignPaths(record: AttachmentRecord, dns: string[]): void {
    const dir = this.containerDir(record.namespace, record.containerId);
    if (record.network === HOST_NETWORK) record.hostsPath = "/etc/hosts";
    if (record.config) {
      record.netnsPath = join(dir, "netns");
      record.hostsPath = join(dir, "hosts");
    } else if (record.extraHosts?.length) {
      // `none` and `host` with --add-host: a file of its own, as docker writes one for every container.
      record.hostsPath = join(dir, "hosts");
    }
    record.resolvConfPath =
      record.network === HOST_NETWORK && dns.length === 0 ? this.hostResolvConf() : join(dir, "resolv.conf");
  }

  private hostResolvConf(): string {
    return this.options.hostResolvConf ?? "/etc/resolv.conf";
  }

  /** The record's files: the netns (named networks), resolv.conf and hosts, before the container exists. */
  private async createFiles(
    record: AttachmentRecord,
    dns: string[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const dir = this.containerDir(record.namespace, record.containerId);
    await mkdir(dir, { recursive: true });
    const files: Promise<void>[] = [];
    if (record.netnsPath) files.push(createNetns(record.netnsPath, signal));
    if (record.hostsPath?.startsWith(dir)) {
      const hostsPath = record.hostsPath;
      const extra = record.extraHosts ?? [];
      // On the host's network, the host's own file with the extra lines after it (as docker's copy).
      const content =
        record.network === HOST_NETWORK
          ? readFile("/etc/hosts", "utf8")
              .catch(() => "")
              .then((host) => `${host}${host === "" || host.endsWith("\n") ? "" : "\n"}${hostsLines(extra)}`)
          : Promise.resolve(hostsFile(extra));
      files.push(content.then((text) => writeFile(hostsPath, text, { mode: 0o644 })));
    }
    if (record.resolvConfPath?.startsWith(dir)) {
      const resolvConfPath = record.resolvConfPath;
      files.push(
        readFile(this.hostResolvConf(), "utf8")
          .catch(() => "")
          .then((hostResolv) => writeFile(resolvConfPath, resolvConf(hostResolv, dns), { mode: 0o644 })),
      );
    }
    const outcomes = await Promise.allSettled(files);
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
  }

  /**
   * CNI ADD (loopback beside the chain, for a new netns), then the record says attached and the
   * network's hosts files are redone.
   */
  private async runPlugins(
    record: AttachmentRecord,
    signal: AbortSignal | undefined,
    newNetns = true,
  ): Promise<void> {
    if (record.config && record.netnsPath) {
      await this.ensureNetworkRules(record.network, signal);
      // Both ended before either's failure is thrown: the loopback's ADD killed by an abort must not
      // have the attachment undone (its netns removed) under the bridge plugin's ADD, which runs to
      // its end (CniPlugins.exec) and, cut off from its netns, would leave a new bridge half made.
      const [, attached] = await settleAll<CniResult | undefined>([
        newNetns
          ? this.plugins.add(LOOPBACK, this.runtime(record, record.netnsPath, "lo"), signal)
          : Promise.resolve(undefined),
        this.plugins
          .add(record.config, this.runtime(record, record.netnsPath), signal, async (bridged) => {
            // Recorded before the rule plugins run: a crash during theirs leaves a DEL that knows the
            // address (firewall's DEL removes nothing without it), as libcni's cache would not.
            record.result = bridged;
            await writeFileAtomic(this.pathOf(record), JSON.stringify(record));
            await this.awaitRulesRemoved(record.network, bridged, signal);
          })
          .catch((err: unknown) => {
            throw addressTaken(err) ?? err;
          }),
      ]);
      const result = attached as CniResult;
      record.result = result;
      record.addresses = (result.ips ?? []).map((ip) => ip.address);
      const gateway = result.ips?.find((ip) => ip.gateway)?.gateway;
      if (gateway) record.gateway = gateway;
      const mac = result.interfaces?.find((link) => link.sandbox)?.mac;
      if (mac) record.macAddress = mac;
    }
    record.state = "attached";
    await writeFileAtomic(this.pathOf(record), JSON.stringify(record));
    if (!record.netnsPath || !record.hostsPath) return;
    // On the default network a container knows only itself: a new one (no other network yet) has no
    // other container's file to redo, and its own is its line alone.
    if (record.network === DEFAULT_NETWORK && newNetns)
      await rewriteInPlace(record.hostsPath, hostsFile([hostsEntry(record), ...(record.extraHosts ?? [])]));
    else await this.refreshHosts([record.network], record, signal);
  }

  /**
   * Everything of a container's eth0 attachment (its sandbox), in reverse; the record goes last, and
   * stays if DEL failed. The hosts files of others are the caller's to redo.
   */
  private async tearDown(record: AttachmentRecord): Promise<void> {
    await this.removeEndpoint(record);
    if (record.netnsPath) await removeNetns(record.netnsPath);
    await rm(this.containerDir(record.namespace, record.containerId), { recursive: true, force: true });
    await rm(this.pathOf(record), { force: true });
    if (record.ports.length > 0) await this.updateReservedPorts();
  }

  /** A network connected later: its DEL, then its record. */
  private async removeConnected(record: AttachmentRecord): Promise<void> {
    await this.removeEndpoint(record);
    await rm(this.pathOf(record), { force: true });
    if (record.ports.length > 0) await this.updateReservedPorts();
  }

  /**
   * One network off a container that stays: its DEL; eth0's record then stays as the sandbox (network
   * `none`: the netns and files, no interface), another's goes. When it had the default route, the
   * container's next network (by interface) gets it, as Docker moves its gateway endpoint.
   */
  private async leave(record: AttachmentRecord): Promise<void> {
    await this.removeEndpoint(record);
    if (interfaceOf(record) !== IFNAME) await rm(this.pathOf(record), { force: true });
    else await writeFileAtomic(this.pathOf(record), JSON.stringify(sandboxOf(record)));
    if (!hasDefaultRoute(record) || !record.netnsPath) return;
    const next = (await this.containerRecords(record.namespace, record.containerId)).find(
      (other) => other.config && other.state === "attached" && other.gateway,
    );
    if (!next?.gateway) return;
    try {
      await setDefaultRoute(record.netnsPath, next.gateway, interfaceOf(next));
      next.defaultRoute = true;
      await writeFileAtomic(this.pathOf(next), JSON.stringify(next));
    } catch (err) {
      this.options.logger?.warn(
        { err, container: record.containerId, network: next.network },
        "moving the default route to the container's next network",
      );
    }
  }

  /** CNI DEL of one attachment; nothing for one without a CNI config. */
  private async removeEndpoint(record: AttachmentRecord): Promise<void> {
    if (!record.config) return;
    // No namespace (a crash before its mount, an umount behind our back): DEL without one, as the spec allows.
    const netns = record.netnsPath && isNetns(record.netnsPath) ? record.netnsPath : "";
    // With the addresses marked as releasing, the bridge's DEL (which frees them) runs beside the
    // rules' DELs instead of after them: awaitRulesRemoved holds back rules for a new holder.
    const releasing = await this.markReleasing(record);
    try {
      await this.plugins.del(record.config, this.runtime(record, netns), record.result, releasing.length > 0);
    } catch (err) {
      throw new InternalError(
        `removing the network of container ${record.containerId} (namespace ${record.namespace}) from ${record.network}: ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      await Promise.all(releasing.map((path) => rm(path, { force: true })));
    }
  }

  /**
   * Marks the record's addresses as being released (`releasing/NETWORK/ADDRESS`, naming this process)
   * for as long as its DEL runs; returns the marker files, none when the addresses are not known.
   */
  private async markReleasing(record: AttachmentRecord): Promise<string[]> {
    const addresses = (record.result?.ips ?? []).map((ip) => ip.address.split("/")[0] ?? "");
    if (addresses.length === 0 || addresses.some((address) => !ADDRESS.test(address))) return [];
    const dir = join(this.options.stateDir, "releasing", record.network);
    await mkdir(dir, { recursive: true });
    const owner = JSON.stringify(thisProcess());
    const paths = addresses.map((address) => join(dir, address));
    await Promise.all(paths.map((path) => writeFile(path, owner)));
    return paths;
  }

  /**
   * The kernel's reserved ports follow what every attachment publishes now: called after each change of
   * the records; the records are read under the host lock (see reserved-ports.ts), so no lock of ours
   * is needed, and none is held while it is waited for.
   */
  private async updateReservedPorts(): Promise<void> {
    await this.reservedPorts.update(async () =>
      (await this.allRecords()).flatMap((record) => record.ports.map((port) => port.hostPort)),
    );
  }

  /** Release markers whose process died during its DEL (each ADD also skips and removes such a one). */
  private async removeStaleReleasing(): Promise<void> {
    const root = join(this.options.stateDir, "releasing");
    for (const network of existsSync(root) ? await readdir(root) : []) {
      for (const address of await readdir(join(root, network)).catch(() => [])) {
        const path = join(root, network, address);
        const owner = (await readJson(path).catch(() => undefined)) as ProcessIdentity | undefined;
        if (owner && typeof owner.pid === "number" && !isAlive(owner)) await rm(path, { force: true });
      }
    }
  }

  /**
   * Between the bridge's ADD and the rule plugins': while the address just given is still marked as
   * releasing by a live process (a DEL that freed it runs its rules' DELs yet), wait, so that its
   * firewall DEL cannot remove the same rules the new container's firewall ADD found in place.
   */
  private async awaitRulesRemoved(
    network: string,
    result: CniResult,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    for (const ip of result.ips ?? []) {
      const address = ip.address.split("/")[0] ?? "";
      if (!ADDRESS.test(address)) continue;
      const path = join(this.options.stateDir, "releasing", network, address);
      for (let attempt = 0; existsSync(path); attempt++) {
        const owner = (await readJson(path).catch(() => undefined)) as ProcessIdentity | undefined;
        if (owner && typeof owner.pid === "number" && !isAlive(owner)) {
          await rm(path, { force: true });
          break;
        }
        await delay(
          Math.min(2 + attempt, 20),
          signal,
          `waiting for the rules of ${address}'s last holder to go`,
        );
      }
    }
  }

  /**
   * Rewrites the hosts file of every container on the user networks given, and of `also`'s container.
   * A container's file lists itself (a line for each network it is on) and the containers on each of
   * its user networks, with the names (aliases) they have there: on user networks containers find each
   * other by name (as on Docker's user-defined networks); on the default network each knows only itself.
   * One lock for all networks: a container on two is rewritten from both.
   */
  private async refreshHosts(
    networks: readonly string[],
    also: AttachmentRecord | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await withLock(this.lockPath("hosts"), signal, async () => {
      const containers = new Map<string, AttachmentRecord[]>();
      for (const record of await this.allRecords()) {
        if (record.state !== "attached" || !record.hostsPath || !record.netnsPath) continue;
        const key = `${record.namespace}/${record.containerId}`;
        containers.set(key, [...(containers.get(key) ?? []), record]);
      }
      const user = (network: string): boolean => network !== DEFAULT_NETWORK && network !== NO_NETWORK;
      const members = new Map<string, AttachmentRecord[]>();
      for (const record of [...containers.values()].flat()) {
        if (record.config && user(record.network))
          members.set(record.network, [...(members.get(record.network) ?? []), record]);
      }
      const alsoKey = also ? `${also.namespace}/${also.containerId}` : undefined;
      for (const [key, records] of containers) {
        const own = records
          .filter((record) => record.config)
          .sort((a, b) => interfaceIndex(a) - interfaceIndex(b));
        if (
          key !== alsoKey &&
          !own.some((record) => user(record.network) && networks.includes(record.network))
        )
          continue;
        const others = own.flatMap((record) =>
          (members.get(record.network) ?? []).filter(
            (other) => `${other.namespace}/${other.containerId}` !== key,
          ),
        );
        const content = hostsFile([
          ...own.map(hostsEntry),
          ...others.map(hostsEntry),
          ...(records[0]?.extraHosts ?? []),
        ]);
        await rewriteInPlace(records[0]!.hostsPath!, content).catch((err: unknown) => {
          // Torn down meanwhile by its own detach, which waits for this lock to refresh the others.
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        });
      }
    });
  }

  private runtime(record: AttachmentRecord, netns: string, ifName = interfaceOf(record)) {
    return {
      containerId: record.cniContainerId,
      netns,
      ifName,
      ...(record.capabilityArgs && ifName !== "lo" ? { capabilityArgs: record.capabilityArgs } : {}),
    };
  }

  /**
   * The network's own rules, before its first container since the bridge device appeared (at boot, or
   * after the network was removed): the device's absence is the cheap test, so later attaches run no iptables.
   */
  private async ensureNetworkRules(name: string, signal: AbortSignal | undefined): Promise<void> {
    const network = await this.readDefinition(name);
    if (!network || linkExists(network.bridge)) return;
    await withLock(this.lockPath(`rules-${name}`), signal, async () => {
      await ensureMasquerade(network.subnet, network.bridge, name, signal);
      await ensureHostPortMasquerade(signal);
    });
  }

  /**
   * The chain: bridge with host-local IPAM, portmap when ports are published, firewall. The default
   * route is the first network's: a network connected later gives only its subnet's route.
   */
  private configList(
    network: NetworkInfo,
    withPorts: boolean,
    defaultRoute = true,
    staticAddress = false,
  ): CniConfigList {
    return {
      cniVersion: CNI_VERSION,
      name: network.name,
      plugins: [
        {
          type: "bridge",
          // The container's own address (--ip) reaches host-local as the `ips` runtime argument.
          ...(staticAddress ? { capabilities: { ips: true } } : {}),
          bridge: network.bridge,
          isGateway: true,
          // Masquerading is one rule per network (ensureMasquerade), not the plugin's chain per container.
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: network.subnet, gateway: network.gateway }]],
            ...(defaultRoute ? { routes: [{ dst: DEFAULT_ROUTE }] } : {}),
            dataDir: join(this.options.stateDir, "ipam"),
          },
        },
        ...(withPorts
          ? [
              {
                type: "portmap",
                capabilities: { portMappings: true },
                snat: true,
                // Made once per network (ensureNetworkRules) instead of checked on every ADD.
                externalSetMarkChain: HOSTPORT_SETMARK_CHAIN,
              },
            ]
          : []),
        { type: "firewall", backend: "iptables" },
      ],
    };
  }

  /** A defined network; the default one is created on first use. */
  private async network(name: string, signal: AbortSignal | undefined): Promise<NetworkInfo> {
    const existing = await this.readDefinition(name);
    if (existing) return existing;
    if (name !== DEFAULT_NETWORK) throw this.unknownNetwork(name);
    return withLock(this.lockPath("networks"), signal, async () => {
      const raced = await this.readDefinition(name);
      if (raced) return raced;
      const settings = this.options.defaultNetwork ?? {};
      return this.define(
        {
          name,
          subnet: settings.subnet ?? DEFAULT_SUBNET,
          bridge: settings.bridge ?? DEFAULT_BRIDGE,
          ...(settings.gateway !== undefined ? { gateway: settings.gateway } : {}),
        },
        signal,
      );
    });
  }

  /**
   * Under the networks lock: checks the subnet and device against every other network, this state
   * dir's and (under the host lock, see host-subnets.ts) every other's, and the host's addresses and routes.
   */
  private async define(opts: CreateNetworkOptions, signal: AbortSignal | undefined): Promise<NetworkInfo> {
    const others = await this.listNetworks();
    const taken: TakenSubnet[] = others.map((other) => ({
      subnet: parseSubnet(other.subnet),
      what: `network ${other.name}`,
    }));
    if (opts.name !== DEFAULT_NETWORK && !others.some((other) => other.name === DEFAULT_NETWORK)) {
      const subnet = this.options.defaultNetwork?.subnet ?? DEFAULT_SUBNET;
      taken.push({
        subnet: parseSubnet(subnet),
        what: `the default network ${DEFAULT_NETWORK} (created on first use)`,
      });
    }
    const ourBridges = new Set(others.map((other) => other.bridge));
    taken.push(...(await hostSubnets(ourBridges, signal)));
    const definition = resolve(this.definitionPath(opts.name));
    const ourDefinitions = dirname(definition);
    let network: NetworkInfo | undefined;
    await this.hostSubnets.claim(
      {
        isOurs: (path) => dirname(path) === ourDefinitions,
        defined: others.map((other) => ({
          definition: resolve(this.definitionPath(other.name)),
          id: other.id,
          subnet: other.subnet,
        })),
      },
      signal,
      (held) => {
        const defined = this.networkOf(opts, [...taken, ...held], ourBridges);
        network = defined;
        return {
          definition,
          id: defined.id,
          subnet: defined.subnet,
          write: () => writeFileAtomic(definition, `${JSON.stringify(defined, null, 2)}\n`),
        };
      },
    );
    if (!network) throw new InternalError(`network ${opts.name} was not defined`);
    return network;
  }

  /** The definition of a new network: its subnet (given, or the first free /24 of the pool) and bridge. */
  private networkOf(
    opts: CreateNetworkOptions,
    taken: TakenSubnet[],
    ourBridges: ReadonlySet<string>,
  ): NetworkInfo {
    let subnet: Ipv4Subnet;
    if (opts.subnet !== undefined) {
      subnet = parseSubnet(opts.subnet);
      const clash = taken.find((other) => !other.route && overlaps(subnet, other.subnet));
      if (clash) {
        throw new FailedPreconditionError(
          `subnet ${opts.subnet} overlaps ${clash.what} (${formatSubnet(clash.subnet)})`,
        );
      }
    } else {
      const free = [...subnetsOf(parseSubnet(USER_SUBNET_POOL), 24)].find(
        (candidate) => !taken.some((other) => overlaps(candidate, other.subnet)),
      );
      if (!free) throw new FailedPreconditionError(`no free /24 left in ${USER_SUBNET_POOL}; give --subnet`);
      subnet = free;
    }
    const gateway = opts.gateway ?? defaultGateway(subnet);
    checkGateway(subnet, gateway);
    const id = randomBytes(32).toString("hex");
    const bridge = opts.bridge ?? `ctrd-${id.slice(0, 10)}`;
    if (!DEVICE.test(bridge)) {
      throw new InvalidArgumentError(
        `invalid bridge device name ${JSON.stringify(bridge)}: 15 characters at most, no '/' or spaces`,
      );
    }
    if (ourBridges.has(bridge)) {
      throw new FailedPreconditionError(`bridge device ${bridge} is already used by another network`);
    }
    if (linkExists(bridge)) {
      throw new FailedPreconditionError(
        `a device named ${bridge} exists on the host and is not one of this state dir's networks (another ctrd state dir's?); remove it (ip link del ${bridge}) or choose another bridge name${opts.name === DEFAULT_NETWORK ? ` for the default network (ctrd network create --bridge DEV --subnet CIDR ${DEFAULT_NETWORK})` : ""}`,
      );
    }
    return {
      name: opts.name,
      id,
      driver: "bridge",
      bridge,
      subnet: formatSubnet(subnet),
      gateway,
      createdAt: new Date().toISOString(),
      isDefault: opts.name === DEFAULT_NETWORK,
      labels: { ...(opts.labels ?? {}) },
      ...(opts.subnet !== undefined ? { subnetConfigured: true } : {}),
    };
  }

  private unknownNetwork(name: string): NotFoundError {
    return new NotFoundError(
      `network ${name} not found (networks: none, host, ${DEFAULT_NETWORK}, or one created with createNetwork)`,
    );
  }

  private async readDefinition(name: string): Promise<NetworkInfo | undefined> {
    if (!NAME.test(name)) return undefined;
    return (await readJson(this.definitionPath(name))) as NetworkInfo | undefined;
  }

  private async readRecord(
    namespace: string,
    containerId: string,
    ifName = IFNAME,
  ): Promise<AttachmentRecord | undefined> {
    if (!NAME.test(namespace) || !NAME.test(containerId) || !INTERFACE.test(ifName)) return undefined;
    return (await readJson(this.recordPath(namespace, containerId, ifName))) as AttachmentRecord | undefined;
  }

  /** The records of `namespace`, of one container when `containerId` is given. */
  private async records(namespace: string, containerId?: string): Promise<AttachmentRecord[]> {
    const dir = join(this.options.stateDir, "attachments", namespace);
    if (!existsSync(dir)) return [];
    const records: AttachmentRecord[] = [];
    for (const file of await readdir(dir)) {
      if (!file.endsWith(".json")) continue;
      // ID.json (eth0) or ID@ethN.json: '@' is in no container id.
      const [id = "", ifName = IFNAME] = file.slice(0, -".json".length).split("@");
      if (containerId !== undefined && id !== containerId) continue;
      const record = await this.readRecord(namespace, id, ifName);
      if (record) records.push(record);
    }
    return records;
  }

  /** One container's records, eth0's first, then in the order of their interfaces. */
  private async containerRecords(namespace: string, containerId: string): Promise<AttachmentRecord[]> {
    return (await this.records(namespace, containerId)).sort((a, b) => interfaceIndex(a) - interfaceIndex(b));
  }

  private async allRecords(): Promise<AttachmentRecord[]> {
    const dir = join(this.options.stateDir, "attachments");
    const namespaces = existsSync(dir) ? await readdir(dir) : [];
    return (await Promise.all(namespaces.map((namespace) => this.records(namespace)))).flat();
  }

  private definitionPath(name: string): string {
    return join(this.options.dataDir, "networks", `${name}.json`);
  }

  private recordPath(namespace: string, containerId: string, ifName = IFNAME): string {
    const name = ifName === IFNAME ? containerId : `${containerId}@${ifName}`;
    return join(this.options.stateDir, "attachments", namespace, `${name}.json`);
  }

  private pathOf(record: AttachmentRecord): string {
    return this.recordPath(record.namespace, record.containerId, interfaceOf(record));
  }

  private containerDir(namespace: string, containerId: string): string {
    return join(this.options.stateDir, "containers", namespace, containerId);
  }

  private lockPath(name: string): string {
    return join(this.options.stateDir, "locks", name);
  }
}

/** The record's chain with portmap alone (same list name: portmap names its chains by it and the CNI id). */
function portmapOf(record: AttachmentRecord): CniConfigList | undefined {
  const plugin = record.config?.plugins.find((candidate) => candidate.type === "portmap");
  return record.config && plugin ? { ...record.config, plugins: [plugin] } : undefined;
}

/** A container's own address (--ip) refused as dockerd refuses it, before anything is set up. */
function checkStaticAddress(
  name: string,
  network: NetworkInfo | undefined,
  address: string | undefined,
): void {
  if (address === undefined) return;
  const refusal = staticAddressRefusal(name, network, address);
  if (refusal) throw new InvalidArgumentError(refusal);
}

/** host-local's `ips` runtime argument: the address with the subnet's prefix. */
function staticAddressArgs(network: NetworkInfo, address: string): Record<string, unknown> {
  return { ips: [`${address}/${network.subnet.split("/")[1]}`] };
}

/**
 * host-local refusing a requested address that another container holds, that is the gateway, or the
 * subnet's network or broadcast address (outside host-local's range; the subnet was checked before), as
 * dockerd's IPAM says it, which holds those two from the start ("Address already in use"); undefined
 * for any other error.
 */
function addressTaken(err: unknown): AddressInUseError | undefined {
  const taken =
    /requested IP address \S+ is not available|requested ip \S+ is subnet's gateway|failed to allocate all requested IPs/;
  return err instanceof CniPluginError && err.plugin === "bridge" && taken.test(err.message)
    ? new AddressInUseError("Address already in use", { cause: err })
    : undefined;
}

function hostsEntry(record: AttachmentRecord): HostsEntry {
  return {
    address: (record.addresses[0] ?? "").split("/")[0] ?? "",
    names: [...new Set([record.hostname, record.containerId, ...(record.aliases ?? [])])],
  };
}

/** eth0's record without its network: what stays of it while the container is on none (or only later ones). */
function sandboxOf(record: AttachmentRecord): AttachmentRecord {
  const sandbox: AttachmentRecord = {
    version: 1,
    namespace: record.namespace,
    containerId: record.containerId,
    network: NO_NETWORK,
    cniContainerId: record.cniContainerId,
    owner: record.owner,
    state: "attached",
    hostname: record.hostname,
    aliases: [],
    createdAt: record.createdAt,
    addresses: [],
    ports: [],
  };
  if (record.extraHosts) sandbox.extraHosts = record.extraHosts;
  if (record.netnsPath) sandbox.netnsPath = record.netnsPath;
  if (record.hostsPath) sandbox.hostsPath = record.hostsPath;
  if (record.resolvConfPath) sandbox.resolvConfPath = record.resolvConfPath;
  return sandbox;
}

function interfaceOf(record: AttachmentRecord): string {
  return record.ifName ?? IFNAME;
}

/** The first of eth1, eth2, ... that none of the container's records uses. */
function freeInterface(records: readonly AttachmentRecord[]): string {
  const taken = new Set(records.map(interfaceOf));
  for (let index = 1; ; index++) if (!taken.has(`eth${index}`)) return `eth${index}`;
}

/** The interface that has the container's default route: its first network's, or where it was moved. */
function hasDefaultRoute(record: AttachmentRecord): boolean {
  return record.config !== undefined && (record.defaultRoute === true || givesDefaultRoute(record.config));
}

function givesDefaultRoute(config: CniConfigList): boolean {
  const ipam = config.plugins[0]?.ipam as { routes?: { dst?: unknown }[] } | undefined;
  return ipam?.routes?.some((route) => route.dst === DEFAULT_ROUTE) ?? false;
}

function interfaceIndex(record: AttachmentRecord): number {
  return Number(interfaceOf(record).slice("eth".length));
}

function publicView(record: AttachmentRecord): NetworkAttachment {
  const view: NetworkAttachment = {
    namespace: record.namespace,
    containerId: record.containerId,
    network: record.network,
    addresses: [...record.addresses],
    ports: record.ports.map((port: PortMapping) => ({ ...port })),
  };
  if (record.netnsPath) view.netnsPath = record.netnsPath;
  if (record.hostsPath) view.hostsPath = record.hostsPath;
  if (record.resolvConfPath) view.resolvConfPath = record.resolvConfPath;
  if (record.gateway) view.gateway = record.gateway;
  if (record.macAddress) view.macAddress = record.macAddress;
  if (record.config) view.interfaceName = interfaceOf(record);
  return view;
}
