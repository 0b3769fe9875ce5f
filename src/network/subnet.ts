import { isIPv4 } from "node:net";
import { AlreadyExistsError, InvalidArgumentError } from "../errors.js";
import { DEFAULT_NETWORK } from "./types.js";

/** An IPv4 CIDR, as numbers: the network address and the prefix length. */
export interface Ipv4Subnet {
  readonly network: number;
  readonly prefix: number;
}

export function ipv4ToNumber(address: string): number {
  return address.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function size(prefix: number): number {
  return 2 ** (32 - prefix);
}

/** `10.1.2.0/24`; host bits must be zero, as `docker network create --subnet` wants them. */
export function parseSubnet(cidr: string): Ipv4Subnet {
  const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  const prefix = Number(match?.[2]);
  if (!match?.[1] || !isIPv4(match[1]) || !(prefix >= 8 && prefix <= 30)) {
    throw new InvalidArgumentError(
      `invalid subnet ${JSON.stringify(cidr)}: want an IPv4 CIDR such as 10.1.0.0/24 (prefix 8 to 30)`,
    );
  }
  const address = ipv4ToNumber(match[1]);
  if (address % size(prefix) !== 0) {
    const network = numberToIpv4(address - (address % size(prefix)));
    throw new InvalidArgumentError(
      `invalid subnet ${cidr}: host bits are set (did you mean ${network}/${prefix}?)`,
    );
  }
  return { network: address, prefix };
}

export function formatSubnet(subnet: Ipv4Subnet): string {
  return `${numberToIpv4(subnet.network)}/${subnet.prefix}`;
}

export function overlaps(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.network < b.network + size(b.prefix) && b.network < a.network + size(a.prefix);
}

export function contains(subnet: Ipv4Subnet, address: string): boolean {
  if (!isIPv4(address)) return false;
  const value = ipv4ToNumber(address);
  return value >= subnet.network && value < subnet.network + size(subnet.prefix);
}

/** The first usable address, which Docker and CNI's host-local both take for the gateway. */
export function defaultGateway(subnet: Ipv4Subnet): string {
  return numberToIpv4(subnet.network + 1);
}

/** A usable host address of the subnet (not the network or broadcast address). */
export function checkGateway(subnet: Ipv4Subnet, gateway: string): void {
  const value = isIPv4(gateway) ? ipv4ToNumber(gateway) : Number.NaN;
  if (!(value > subnet.network && value < subnet.network + size(subnet.prefix) - 1)) {
    throw new InvalidArgumentError(
      `invalid gateway ${JSON.stringify(gateway)}: not a host address of ${formatSubnet(subnet)}`,
    );
  }
}

/** The subnet of an interface address with its netmask's prefix (`10.1.2.3/16` → 10.1.0.0/16). */
export function subnetOf(cidr: string): Ipv4Subnet | undefined {
  const [address = "", prefixText = ""] = cidr.split("/");
  const prefix = Number(prefixText);
  if (!isIPv4(address) || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const value = ipv4ToNumber(address);
  return { network: value - (value % size(prefix)), prefix };
}

/** Successive `/prefix` subnets of `pool`, for picking a free one. */
export function* subnetsOf(pool: Ipv4Subnet, prefix: number): Generator<Ipv4Subnet> {
  for (let network = pool.network; network < pool.network + size(pool.prefix); network += size(prefix)) {
    yield { network, prefix };
  }
}

export const ONLY_USER_NETWORKS = "user specified IP address is supported on user defined networks only";
export const ONLY_CONFIGURED_SUBNETS =
  "user specified IP address is supported only when connecting to networks with user configured subnets";

/** A network created by a user (not the default one; `none` and `host` have no definition). */
export function isUserNetwork<T>(name: string, network: T | undefined): network is T {
  return network !== undefined && name !== DEFAULT_NETWORK;
}

/** A container's own address that is taken already (by another container, or the network's gateway). */
export class AddressInUseError extends AlreadyExistsError {}

/**
 * Why `address` cannot be a container's own address on the network named `name` (undefined when it
 * can), in the words and order of dockerd's validateEndpointSettings: only on a user network, an
 * IPv4 address, on a network created with a subnet of its own, inside that subnet. `network` is the
 * named network's definition (none for `none` and `host`).
 */
export function staticAddressRefusal(
  name: string,
  network: { subnet: string; subnetConfigured?: boolean } | undefined,
  address: string,
): string | undefined {
  if (!isUserNetwork(name, network)) return ONLY_USER_NETWORKS;
  if (!isIPv4(address) || address === "0.0.0.0") return `invalid IPv4 address: ${address}`;
  if (!network.subnetConfigured) return ONLY_CONFIGURED_SUBNETS;
  if (!contains(parseSubnet(network.subnet), address))
    return `no configured subnet or ip-range contain the IP address ${address}`;
  return undefined;
}
