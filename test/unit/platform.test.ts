import { describe, expect, test } from "vitest";
import {
  DEFAULT_LINUX_CONTAINERD_ADDRESS,
  DEFAULT_WINDOWS_CONTAINERD_ADDRESS,
  defaultContainerdAddress,
  detectPlatform,
  hcsSchemaVersion,
  parseWindowsBuild,
  WindowsBuild,
  windowsBuildName,
} from "../../src/platform/index.js";

describe("Windows builds", () => {
  test("the named releases have their published build numbers", () => {
    expect(WindowsBuild).toMatchObject({
      RS1: 14393,
      RS2: 15063,
      RS3: 16299,
      RS4: 17134,
      RS5: 17763,
      V19H1: 18362,
      V19H2: 18363,
      V20H1: 19041,
      V20H2: 19042,
      V21H1: 19043,
      V21H2: 19044,
      LTSC2022: 20348,
      WIN11: 22000,
      V22H2: 22621,
      V23H2: 25398,
      LTSC2025: 26100,
    });
  });

  test.each([
    [WindowsBuild.RS1, { major: 1, minor: 0 }],
    [WindowsBuild.RS4, { major: 1, minor: 0 }],
    [WindowsBuild.RS5 - 1, { major: 1, minor: 0 }],
    [WindowsBuild.RS5, { major: 2, minor: 1 }],
    [WindowsBuild.LTSC2022, { major: 2, minor: 1 }],
    [WindowsBuild.LTSC2025, { major: 2, minor: 1 }],
  ])("build %i speaks HCS schema %o", (build, schema) => {
    expect(hcsSchemaVersion(build)).toEqual(schema);
  });

  test.each([
    ["10.0.17763", 17763],
    ["10.0.14393", 14393],
    ["10.0.26100", 26100],
    ["6.1.7601", 7601],
    ["6.8.0-45-generic", undefined],
    ["", undefined],
    ["10.0", undefined],
  ])("os.release() %j → build %s", (release, build) => {
    expect(parseWindowsBuild(release)).toBe(build);
  });

  test("a build between releases is named after the release below it", () => {
    expect(windowsBuildName(17763)).toBe("RS5");
    expect(windowsBuildName(19045)).toBe("V21H2");
    expect(windowsBuildName(14000)).toBeUndefined();
  });
});

describe("detectPlatform", () => {
  test("Windows: build and schema from the release string", () => {
    const facts = detectPlatform({ platform: "win32", release: "10.0.17134", env: {} });
    expect(facts).toMatchObject({ os: "windows", windowsBuild: 17134, hcsSchema: { major: 1, minor: 0 } });
    expect(detectPlatform({ platform: "win32", release: "10.0.20348", env: {} }).hcsSchema).toEqual({
      major: 2,
      minor: 1,
    });
  });

  test("Linux carries no Windows build", () => {
    const facts = detectPlatform({ platform: "linux", release: "10.0.17763", env: { A: "1" } });
    expect(facts).toEqual({ os: "linux", nodePlatform: "linux", env: { A: "1" } });
  });

  test("anything else is 'other'", () => {
    expect(detectPlatform({ platform: "darwin", env: {} }).os).toBe("other");
  });

  test("defaults come from this process", () => {
    const facts = detectPlatform();
    expect(facts.nodePlatform).toBe(process.platform);
    expect(facts.env).toBe(process.env);
  });

  test("default containerd addresses", () => {
    expect(defaultContainerdAddress("linux")).toBe(DEFAULT_LINUX_CONTAINERD_ADDRESS);
    expect(DEFAULT_LINUX_CONTAINERD_ADDRESS).toBe("/run/containerd/containerd.sock");
    expect(defaultContainerdAddress("windows")).toBe(DEFAULT_WINDOWS_CONTAINERD_ADDRESS);
    expect(DEFAULT_WINDOWS_CONTAINERD_ADDRESS).toBe("\\\\.\\pipe\\containerd-containerd");
  });
});
