import { execFileSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NetworkManager, type NetworkManagerOptions } from "../../src/network/index.js";
import { type Ipv4Subnet, overlaps, parseSubnet, subnetOf } from "../../src/network/subnet.js";

/**
 * Names no other test run uses at the same time: bridge devices and subnets are host-wide, and
 * other helpers' tests may be creating theirs right now.
 */
export function uniqueBridge(prefix = "tb"): string {
  return `${prefix}${randomBytes(4).toString("hex")}`.slice(0, 15);
}

/** The subnets uniqueSubnet has handed out in this process: never handed out twice. */
const handedOut = new Set<string>();

/**
 * A random /24 in 10.64.0.0–10.127.255.0 that no earlier call of this process returned and no
 * host interface overlaps (the manager refuses a clash with a live network; a plain random pick
 * repeated one about once per 16384 pairs, and a file takes several at once). Each vitest worker
 * (VITEST_POOL_ID) draws from its own sixteen /16s, so the two files a run has going at once
 * never pick the same one either; other runs on the host are told apart by the host check.
 */
export function uniqueSubnet(): string {
  const firstBlock = workerBlock();
  const onHost = hostSubnets();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const subnet = `10.${firstBlock + randomInt(0, 16)}.${randomInt(0, 256)}.0/24`;
    if (handedOut.has(subnet) || onHost.some((other) => overlaps(parseSubnet(subnet), other))) continue;
    handedOut.add(subnet);
    return subnet;
  }
  throw new Error(`no free /24 left in 10.${firstBlock}.0.0/12 for this test process`);
}

/** The first second octet of this worker's sixteen: vitest numbers the workers it runs at once 1, 2, … */
function workerBlock(): number {
  const poolId = Number(process.env.VITEST_POOL_ID);
  return 64 + (Number.isInteger(poolId) && poolId > 0 ? (poolId - 1) % 4 : randomInt(0, 4)) * 16;
}

/** Every IPv4 subnet on a host interface, down ones included (os.networkInterfaces skips those). */
function hostSubnets(): Ipv4Subnet[] {
  return execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" })
    .split("\n")
    .map((line) => subnetOf(/\binet (\S+)/.exec(line)?.[1] ?? ""))
    .filter((subnet): subnet is Ipv4Subnet => subnet !== undefined);
}

/** The first three octets and a dot: what every iptables rule about an address of the /24 contains. */
export function subnetPrefix(subnet: string): string {
  return `${subnet.split(".").slice(0, 3).join(".")}.`;
}

export function managerIn(dir: string, extra: Partial<NetworkManagerOptions> = {}): NetworkManager {
  return new NetworkManager({
    stateDir: join(dir, "net-state"),
    dataDir: join(dir, "net-data"),
    defaultNetwork: { bridge: uniqueBridge(), subnet: uniqueSubnet() },
    ...extra,
  });
}

export function ipLinks(): string {
  return execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
}

/** The veths plugged into `bridge` (none when the bridge does not exist). */
export function portsOfBridge(bridge: string): string[] {
  if (!existsSync(`/sys/class/net/${bridge}`)) return [];
  return readdirSync(`/sys/class/net/${bridge}/brif`);
}

export function iptablesSave(): string {
  return execFileSync("iptables-save", [], { encoding: "utf8" });
}

/**
 * iptables rules that mention an address of the subnet or one of the CNI container ids; without the
 * network's own masquerade rule (it stays while the network exists) unless `withNetworkRules`.
 */
export function rulesFor(subnet: string, ids: readonly string[] = [], withNetworkRules = false): string[] {
  const prefix = subnetPrefix(subnet);
  return iptablesSave()
    .split("\n")
    .filter((line) => line.includes(prefix) || ids.some((id) => line.includes(id)))
    .filter((line) => withNetworkRules || !line.includes('"ctrd network '));
}

/** host-local's reservations (one file per address) under a manager's state dir for a network. */
export function ipamReservations(stateDir: string, network: string): string[] {
  const dir = join(stateDir, "ipam", network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => name !== "lock" && !name.startsWith("last_reserved_ip"));
}

/** Mount points (netns files) under a dir. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`));
}

/** GET http://HOST:PORT/PATH until it answers (the server in the container is starting), up to a bound. */
export async function fetchWhenUp(url: string, attempts = 300): Promise<string> {
  let last: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return await response.text();
      last = new Error(`HTTP ${response.status}`);
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${url} never answered: ${String(last)}`);
}
