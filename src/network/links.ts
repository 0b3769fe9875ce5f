import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { abortError } from "../libcontainerd/call.js";
import { InternalError } from "../libcontainerd/types/errors.js";

const run = promisify(execFile);

export function linkExists(device: string): boolean {
  return existsSync(`/sys/class/net/${device}`);
}

/** Removes a network device (a network's bridge, which the CNI bridge plugin never deletes). */
export async function deleteLink(device: string, signal?: AbortSignal): Promise<void> {
  try {
    await run("ip", ["link", "delete", device], signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `deleting the bridge device ${device}`);
    if (linkExists(device)) {
      throw new InternalError(`deleting the bridge device ${device}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

/**
 * The default route of a container's netns through `gateway` on `device` (its interface there): where
 * Docker moves its gateway when the network that had it is disconnected.
 */
export async function setDefaultRoute(
  netnsPath: string,
  gateway: string,
  device: string,
  signal?: AbortSignal,
): Promise<void> {
  const args = [`--net=${netnsPath}`, "ip", "route", "replace", "default", "via", gateway, "dev", device];
  try {
    await run("nsenter", args, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `setting the default route of ${netnsPath}`);
    throw new InternalError(`nsenter ${args.join(" ")}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * One MASQUERADE rule per network for its containers' outgoing traffic, as Docker has for docker0,
 * instead of the bridge plugin's ipMasq, which writes a chain per container: four iptables runs on
 * ADD and three on DEL that doubled the plugin's time (measured on this machine).
 */
function masqueradeRule(subnet: string, bridge: string, network: string): string[] {
  return [
    "-s",
    subnet,
    "!",
    "-o",
    bridge,
    "-m",
    "comment",
    "--comment",
    `ctrd network ${network}`,
    "-j",
    "MASQUERADE",
  ];
}

async function iptables(args: string[], signal?: AbortSignal): Promise<boolean> {
  try {
    await run("iptables", ["-w", "-t", "nat", ...args], signal ? { signal } : {});
    return true;
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `iptables ${args.join(" ")}`);
    if ((err as { code?: unknown }).code === 1) return false;
    throw new InternalError(`iptables ${args.join(" ")}: ${(err as Error).message}`, { cause: err });
  }
}

export async function ensureMasquerade(
  subnet: string,
  bridge: string,
  network: string,
  signal?: AbortSignal,
): Promise<void> {
  const rule = masqueradeRule(subnet, bridge, network);
  if (!(await iptables(["-C", "POSTROUTING", ...rule], signal)))
    await iptables(["-A", "POSTROUTING", ...rule], signal);
}

export async function removeMasquerade(
  subnet: string,
  bridge: string,
  network: string,
  signal?: AbortSignal,
): Promise<void> {
  const rule = masqueradeRule(subnet, bridge, network);
  while (await iptables(["-D", "POSTROUTING", ...rule], signal)) {}
}

/**
 * What portmap's `snat` needs and would otherwise check on every ADD with five iptables runs: the
 * chain that marks hairpin and localhost connections to published ports, and the masquerade of
 * marked packets. The same chains and rules portmap makes (its names, mark bit 13), made once when a
 * network's bridge appears; the config then names the chain (`externalSetMarkChain`). Like portmap,
 * nothing removes them: they are shared by every portmap user on the host and hold no address.
 */
export const HOSTPORT_SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK";
const HOSTPORT_MASQ_CHAIN = "CNI-HOSTPORT-MASQ";
const HOSTPORT_MARK = "0x2000/0x2000";

export async function ensureHostPortMasquerade(signal?: AbortSignal): Promise<void> {
  const ensure = async (chain: string, rule: string[], first = false) => {
    if (!(await iptables(["-C", chain, ...rule], signal)))
      await iptables(first ? ["-I", chain, "1", ...rule] : ["-A", chain, ...rule], signal);
  };
  for (const chain of [HOSTPORT_SETMARK_CHAIN, HOSTPORT_MASQ_CHAIN]) await iptables(["-N", chain], signal);
  await ensure(HOSTPORT_SETMARK_CHAIN, [
    "-m",
    "comment",
    "--comment",
    "CNI portfwd masquerade mark",
    "-j",
    "MARK",
    "--set-xmark",
    HOSTPORT_MARK,
  ]);
  await ensure(HOSTPORT_MASQ_CHAIN, ["-m", "mark", "--mark", HOSTPORT_MARK, "-j", "MASQUERADE"]);
  await ensure(
    "POSTROUTING",
    ["-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", HOSTPORT_MASQ_CHAIN],
    true,
  );
}
