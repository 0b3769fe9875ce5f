/**
 * Subnets picked without --subnet are host-wide: no two state dirs pick the same one, and an interface
 * that is down (a bridge with no carrier) keeps its subnet. Networks only, no containers: the host's
 * devices made here carry no traffic.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { FailedPreconditionError } from "../../src/libcontainerd/types/errors.js";
import { HOST_SUBNETS } from "../../src/network/host-subnets.js";
import { linkExists } from "../../src/network/links.js";
import type { NetworkManager } from "../../src/network/manager.js";
import { HOST_RESERVED_PORTS } from "../../src/network/reserved-ports.js";
import { managerIn, uniqueBridge } from "../harness/network.js";

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "subnets-"));
  dirs.push(dir);
  return dir;
}

/** A manager whose networks are removed after the test. */
function manager(dir: string): NetworkManager {
  const created = managerIn(dir);
  cleanups.push(async () => {
    for (const network of await created.listNetworks()) await created.removeNetwork(network.name);
  });
  return created;
}

/** The host-wide record's entries of this test's state dirs. */
function recordedHere(): unknown[] {
  if (!existsSync(HOST_SUBNETS.registry)) return [];
  const entries = JSON.parse(readFileSync(HOST_SUBNETS.registry, "utf8")) as { definition: string }[];
  return entries.filter((entry) => dirs.some((dir) => entry.definition.startsWith(`${resolve(dir)}/`)));
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  expect(recordedHere()).toEqual([]);
  dirs.length = 0;
});

describe("subnets picked without --subnet", { timeout: 60_000 }, () => {
  test("two state dirs get different subnets; --subnet on another's is refused; removing leaves no record or bridge", async () => {
    const first = manager(stateDir());
    const second = manager(stateDir());
    const a = await first.createNetwork({ name: "apps" });
    const b = await second.createNetwork({ name: "apps" });
    expect(b.subnet).not.toBe(a.subnet);
    expect(recordedHere()).toHaveLength(2);
    const clash = second.createNetwork({ name: "same", subnet: a.subnet });
    await expect(clash).rejects.toThrow(FailedPreconditionError);
    await expect(clash).rejects.toThrow(/another ctrd state dir/);

    await first.removeNetwork("apps");
    await second.removeNetwork("apps");
    expect(recordedHere()).toEqual([]);
    expect(linkExists(a.bridge) || linkExists(b.bridge)).toBe(false);
  });

  test("a host interface that is down keeps its subnet", async () => {
    const dir = stateDir();
    const networks = manager(dir);
    const probe = await networks.createNetwork({ name: "probe" });
    await networks.removeNetwork("probe");
    // A bridge with no ports: down, as one with no carrier is; its subnet is what the next pick would be.
    const device = uniqueBridge("tdown");
    execFileSync("ip", ["link", "add", device, "type", "bridge"]);
    cleanups.push(() => {
      execFileSync("ip", ["link", "delete", device]);
    });
    const address = `${probe.subnet.split(".").slice(0, 3).join(".")}.1/24`;
    execFileSync("ip", ["addr", "add", address, "dev", device]);
    expect(readFileSync(`/sys/class/net/${device}/operstate`, "utf8").trim()).toBe("down");

    const picked = await networks.createNetwork({ name: "apps" });
    expect(picked.subnet).not.toBe(probe.subnet);
    await expect(networks.createNetwork({ name: "given", subnet: probe.subnet })).rejects.toThrow(
      new RegExp(`host interface ${device}`),
    );
  });

  test("a state dir removed with its networks still defined: its record is taken out by the next create", async () => {
    const gone = stateDir();
    const abandoned = managerIn(gone);
    await abandoned.createNetwork({ name: "apps" });
    expect(recordedHere()).toHaveLength(1);
    rmSync(gone, { recursive: true, force: true });

    const next = manager(stateDir());
    const picked = await next.createNetwork({ name: "apps" });
    const entries = recordedHere() as { definition: string; subnet: string }[];
    expect(entries.map((entry) => entry.subnet)).toEqual([picked.subnet]);
  });
});

describe("a subnet given (--subnet, the default network's)", { timeout: 60_000 }, () => {
  test("is not refused by a broader host route (a VPN's 10.0.0.0/8 over the default 10.210.0.0/16), as dockerd checks no route for a configured subnet", async () => {
    // A TEST-NET-2 route to a portless bridge with no address (no dummy module here): the route is all the host check sees.
    const device = uniqueBridge("troute");
    execFileSync("ip", ["link", "add", device, "type", "bridge"]);
    cleanups.push(() => {
      execFileSync("ip", ["link", "delete", device]);
    });
    execFileSync("ip", ["link", "set", device, "up"]);
    execFileSync("ip", ["route", "add", "198.51.100.0/24", "dev", device]);

    const networks = manager(stateDir());
    const bridge = uniqueBridge("tvpn");
    const defined = await networks.createNetwork({ name: "bridge", bridge, subnet: "198.51.100.0/26" });
    expect(defined.subnet).toBe("198.51.100.0/26");
  });
});

describe("the host-wide record, gone at boot (/run) or never written by an older build", {
  timeout: 60_000,
}, () => {
  test("a state dir's next create writes its networks into it again: another state dir does not pick a subnet of one not attached since", async () => {
    const files = { lock: join(stateDir(), "subnets.lock"), registry: join(stateDir(), "subnets.json") };
    const first = managerIn(stateDir(), { hostSubnets: files });
    const second = managerIn(stateDir(), { hostSubnets: files });
    cleanups.push(async () => {
      for (const networks of [first, second])
        for (const network of await networks.listNetworks()) await networks.removeNetwork(network.name);
    });
    const old = await first.createNetwork({ name: "old" });
    rmSync(files.registry); // a reboot: /run is a tmpfs
    const added = await first.createNetwork({ name: "added" });

    const picked = await second.createNetwork({ name: "apps" });
    expect([old.subnet, added.subnet]).not.toContain(picked.subnet);
  });
});

describe("the host-wide records' directory", () => {
  test("is root's, not world-writable (/run/lock is 1777: any user could plant the record, a lock or a symlink root's write follows)", async () => {
    // The first create makes it.
    const networks = manager(stateDir());
    await networks.createNetwork({ name: "apps" });
    for (const file of [HOST_SUBNETS.registry, HOST_RESERVED_PORTS.registry]) {
      const dir = statSync(dirname(file));
      expect({ file, uid: dir.uid, worldWritable: (dir.mode & 0o002) !== 0 }).toEqual({
        file,
        uid: 0,
        worldWritable: false,
      });
    }
  });
});
