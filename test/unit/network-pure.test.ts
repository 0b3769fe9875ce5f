import { describe, expect, test } from "vitest";
import { hostsFile, resolvConf } from "../../src/network/dns.js";
import { applyNetwork, parsePortSpec, portsFromLabels } from "../../src/network/index.js";
import { sameHostBinding } from "../../src/network/ports.js";
import { formatPortList, parsePortList } from "../../src/network/reserved-ports.js";
import { overlaps, parseSubnet, subnetOf } from "../../src/network/subnet.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";

describe("port specs (docker's -p)", () => {
  test.each([
    ["80", { containerPort: 80, protocol: "tcp" }],
    ["8080:80", { hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    ["127.0.0.1:8080:80", { hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    ["127.0.0.1::53/udp", { hostIp: "127.0.0.1", containerPort: 53, protocol: "udp" }],
    ["0.0.0.0:1:2/TCP", { hostPort: 1, containerPort: 2, protocol: "tcp" }],
  ])("%s", (spec, expected) => {
    expect(parsePortSpec(spec)).toEqual(expected);
  });

  test.each([
    ["", "want [hostIp:][hostPort:]containerPort"],
    ["a:b:c:d", "IPv6 host addresses are not supported"],
    ["[::1]:80:80", "IPv6"],
    ["0:80", 'host port "0"'],
    ["80:0", 'container port "0"'],
    ["localhost:80:80", "not an IPv4 address"],
    ["80/icmp", "neither tcp nor udp"],
  ])("%s is refused", (spec, why) => {
    expect(() => parsePortSpec(spec)).toThrow(
      expect.objectContaining({ code: "invalid_argument", message: expect.stringContaining(why) }),
    );
  });

  test("0.0.0.0 covers every address; protocols never collide", () => {
    const any = { hostIp: "0.0.0.0", hostPort: 80, containerPort: 1, protocol: "tcp" as const };
    expect(
      sameHostBinding(any, { hostIp: "127.0.0.1", hostPort: 80, containerPort: 2, protocol: "tcp" }),
    ).toBe(true);
    expect(sameHostBinding(any, { hostPort: 80, containerPort: 2, protocol: "udp" })).toBe(false);
    expect(sameHostBinding({ ...any, hostIp: "127.0.0.1" }, { ...any, hostIp: "127.0.0.2" })).toBe(false);
  });
});

describe("the kernel's reserved ports list", () => {
  test("read as the kernel writes it (ranges, commas, a newline), written back in its form", () => {
    expect([...parsePortList("8080,9000-9002,70000,5-3,x\n")]).toEqual([8080, 9000, 9001, 9002]);
    expect(parsePortList("\n").size).toBe(0);
    expect(formatPortList(new Set([9002, 80, 9000, 9001, 443, 444]))).toBe("80,443-444,9000-9002");
    expect(formatPortList(new Set())).toBe("");
  });
});

describe("resolv.conf and hosts", () => {
  const host = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n";
  test("loopback resolvers dropped, search and options kept", () => {
    expect(resolvConf(host)).toBe("search example.org\noptions edns0\nnameserver 10.0.0.2\n");
  });
  test("--dns replaces the nameservers", () => {
    expect(resolvConf(host, ["192.0.2.1", "2001:db8::1"])).toBe(
      "search example.org\noptions edns0\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n",
    );
  });
  test("only loopback resolvers: Docker's public fallback", () => {
    expect(resolvConf("nameserver 127.0.0.1\nnameserver ::1\n")).toBe(
      "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
    );
  });
  test("hosts: localhost first, then the entries", () => {
    const text = hostsFile([{ address: "10.1.0.2", names: ["web", "web-1"] }]);
    expect(text.startsWith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")).toBe(true);
    expect(text.endsWith("10.1.0.2\tweb web-1\n")).toBe(true);
  });
});

describe("subnets", () => {
  test("parse, overlap, interface subnets", () => {
    expect(overlaps(parseSubnet("10.1.0.0/16"), parseSubnet("10.1.200.0/24"))).toBe(true);
    expect(overlaps(parseSubnet("10.1.0.0/24"), parseSubnet("10.1.1.0/24"))).toBe(false);
    expect(subnetOf("192.168.1.77/24")).toEqual(parseSubnet("192.168.1.0/24"));
    expect(() => parseSubnet("10.1.0.0/33")).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    expect(() => parseSubnet("300.1.0.0/16")).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });
});

describe("the spec and the labels", () => {
  const spec = defaultLinuxSpec({ args: ["true"], rootfs: "/r" });
  test("a named network: its netns path and read-only hosts and resolv.conf", () => {
    const applied = applyNetwork(spec, {
      namespace: "n",
      containerId: "c",
      network: "apps",
      netnsPath: "/s/netns",
      hostsPath: "/s/hosts",
      resolvConfPath: "/s/resolv.conf",
      addresses: ["10.1.0.2/24"],
      ports: [],
    });
    expect(applied.linux?.namespaces?.filter((ns) => ns.type === "network")).toEqual([
      { type: "network", path: "/s/netns" },
    ]);
    expect(applied.mounts?.slice(-2)).toEqual([
      { destination: "/etc/hosts", type: "bind", source: "/s/hosts", options: ["rbind", "ro"] },
      { destination: "/etc/resolv.conf", type: "bind", source: "/s/resolv.conf", options: ["rbind", "ro"] },
    ]);
    expect(spec.linux?.namespaces?.find((ns) => ns.type === "network")).toEqual({ type: "network" });
  });
  test("host: no network namespace of its own", () => {
    const applied = applyNetwork(spec, {
      namespace: "n",
      containerId: "c",
      network: "host",
      addresses: [],
      ports: [],
    });
    expect(applied.linux?.namespaces?.some((ns) => ns.type === "network")).toBe(false);
  });
  test("ports survive the labels; junk reads as none", () => {
    const ports = [{ hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, protocol: "tcp" as const }];
    expect(portsFromLabels({ "io.ctrd.ports": JSON.stringify(ports) })).toEqual(ports);
    expect(portsFromLabels({ "io.ctrd.ports": "{" })).toEqual([]);
    expect(portsFromLabels({})).toEqual([]);
  });
});
