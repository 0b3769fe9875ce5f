import { expect, test } from "vitest";
import { parseHostConfig } from "../../src/engine/containers/config.js";
import { hostRunOptions } from "../../src/engine/containers/host-options.js";
import { ociSeccomp, parseSeccompProfile } from "../../src/oci/seccomp.js";

const profile = parseSeccompProfile(
  JSON.stringify({
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 38,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
    ],
    syscalls: [
      { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
      { names: ["mount"], action: "SCMP_ACT_ERRNO", errnoRet: 1, excludes: { caps: ["CAP_SYS_ADMIN"] } },
      { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64", "x32"] } },
      { names: ["sync_file_range2"], action: "SCMP_ACT_ALLOW", includes: { arches: ["arm64"] } },
      { names: ["new_thing"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "5.9" } },
      { name: "personality", action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
    ],
  }),
);

const names = (seccomp: ReturnType<typeof ociSeccomp>) =>
  seccomp.syscalls.map((rule) => `${rule.names.join(",")}:${rule.action}`);

test("a docker-format profile resolved for a container: architecture, capabilities, kernel, as moby's setupSeccomp", () => {
  const plain = ociSeccomp(profile, { capabilities: ["CAP_CHOWN"], arch: "x64", kernel: "5.10.0-26-amd64" });
  expect(plain.defaultAction).toBe("SCMP_ACT_ERRNO");
  expect(plain.defaultErrnoRet).toBe(38);
  expect(plain.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  expect(names(plain)).toEqual([
    "read,write:SCMP_ACT_ALLOW",
    "mount:SCMP_ACT_ERRNO",
    "arch_prctl:SCMP_ACT_ALLOW",
    "new_thing:SCMP_ACT_ALLOW",
    "personality:SCMP_ACT_ALLOW",
  ]);
  expect(plain.syscalls.at(-1)?.args).toEqual([{ index: 0, value: 8, op: "SCMP_CMP_EQ" }]);
  const admin = ociSeccomp(profile, { capabilities: ["CAP_SYS_ADMIN"], arch: "arm64", kernel: "5.4.0" });
  expect(admin.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  expect(names(admin)).toEqual([
    "read,write:SCMP_ACT_ALLOW",
    "mount:SCMP_ACT_ALLOW",
    "sync_file_range2:SCMP_ACT_ALLOW",
    "personality:SCMP_ACT_ALLOW",
  ]);
});

test("a profile that is not one is refused with where it came from", () => {
  expect(() => parseSeccompProfile("{", "p.json")).toThrow(/p\.json: not JSON/);
  expect(() => parseSeccompProfile("[]", "p.json")).toThrow(/want a JSON object/);
  expect(() => parseSeccompProfile('{"syscalls": []}')).toThrow(/defaultAction is required/);
  expect(() =>
    parseSeccompProfile(
      '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["a"],"archMap":[{"architecture":"a"}]}',
    ),
  ).toThrow(/cannot both be given/);
  expect(() =>
    parseSeccompProfile(
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"x"}]}',
    ),
  ).toThrow(/'name' or 'names'/);
});

test("a rule excluded from a kernel on: excludes.minKernel, as moby's setupSeccomp", () => {
  const old = parseSeccompProfile(
    JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["legacy_call"], action: "SCMP_ACT_ERRNO", excludes: { minKernel: "5.8" } }],
    }),
  );
  expect(names(ociSeccomp(old, { capabilities: [], arch: "x64", kernel: "5.4.0" }))).toEqual([
    "legacy_call:SCMP_ACT_ERRNO",
  ]);
  expect(names(ociSeccomp(old, { capabilities: [], arch: "x64", kernel: "6.1.0-13-amd64" }))).toEqual([]);
});

test("--security-opt seccomp=builtin (docker CLI 23+) is the engine's default profile, as dockerd", () => {
  const hostConfig = parseHostConfig({ SecurityOpt: ["seccomp=builtin"] });
  expect(hostRunOptions(hostConfig, "", profile).options.seccomp).toBe(profile);
  expect(
    hostRunOptions(parseHostConfig({ SecurityOpt: ["seccomp=unconfined"] }), "", profile).options.seccomp,
  ).toBe("unconfined");
});
