// The network test harness's random names: tests on one host run side by side, so a subnet handed
// out twice makes the manager refuse the second network (or two bridges route the same /24).
import { execFileSync } from "node:child_process";
import { expect, test } from "vitest";
import { overlaps, parseSubnet, subnetOf } from "../../src/network/subnet.js";
import { uniqueSubnet } from "../harness/network.js";

test("uniqueSubnet never hands out the same /24 twice in a process, nor one a host interface has", () => {
  // 700 plain random picks from 16384 /24s repeat one with probability 1 - e^-15.
  const subnets = Array.from({ length: 700 }, () => uniqueSubnet());
  expect(new Set(subnets).size).toBe(subnets.length);
  const onHost = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" })
    .split("\n")
    .flatMap((line) => subnetOf(/\binet (\S+)/.exec(line)?.[1] ?? "") ?? []);
  for (const subnet of subnets) {
    expect(subnet).toMatch(/^10\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d{1,3}\.0\/24$/);
    expect(onHost.filter((other) => overlaps(parseSubnet(subnet), other))).toEqual([]);
  }
});
