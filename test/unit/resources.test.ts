import { availableParallelism } from "node:os";
import { describe, expect, test } from "vitest";
import { defaultLinuxSpec, defaultWindowsSpec, INIT_PATH } from "../../src/oci/defaults.js";
import { linuxResources, parseSize, resourcesForUpdate, windowsResources } from "../../src/oci/resources.js";

const MiB = 1024 * 1024;

describe("docker-style sizes", () => {
  test.each([
    [1048576, 1048576],
    ["64m", 64 * MiB],
    ["64M", 64 * MiB],
    ["64mb", 64 * MiB],
    ["64MiB", 64 * MiB],
    ["1.5g", 1.5 * 1024 * MiB],
    ["512k", 512 * 1024],
    ["100", 100],
    ["100b", 100],
  ])("%j → %i bytes", (input, bytes) => {
    expect(parseSize(input, "memory")).toBe(bytes);
  });

  test.each(["", "m", "64x", "-5m", "1e3", "64 mega"])("%j is refused naming the field", (input) => {
    expect(() => parseSize(input, "memory")).toThrow(
      expect.objectContaining({
        code: "invalid_argument",
        message: expect.stringContaining("resources.memory"),
      }),
    );
  });
});

describe("linuxResources: docker's meanings", () => {
  test("cpus is a fraction of CPUs: a CFS quota per 100 ms period", () => {
    expect(linuxResources({ cpus: 0.5 }).cpu).toEqual({ quota: 50_000, period: 100_000 });
    expect(linuxResources({ cpus: 1.25 }).cpu).toEqual({ quota: 125_000, period: 100_000 });
  });

  test("memory, swap (memory + swap, as docker), reservation, pids, shares, cpuset, blkio", () => {
    const r = linuxResources({
      memory: "64m",
      memorySwap: "128m",
      memoryReservation: "32m",
      pids: 64,
      cpuShares: 512,
      cpusetCpus: "0",
      blkioWeight: 300,
    });
    expect(r).toEqual({
      memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 32 * MiB },
      cpu: { shares: 512, cpus: "0" },
      pids: { limit: 64 },
      blockIO: { weight: 300 },
    });
    // docker: 0 and -1 both mean no pids limit.
    expect(linuxResources({ pids: 0 }).pids).toEqual({ limit: -1 });
    expect(linuxResources({ memory: "64m", memorySwap: -1 }).memory).toEqual({ limit: 64 * MiB, swap: -1 });
  });

  test.each([
    [{ memory: "1m" }, "resources.memory"],
    [{ memorySwap: "1g" }, "resources.memorySwap"],
    [{ memory: "64m", memorySwap: "32m" }, "resources.memorySwap"],
    [{ memory: "64m", memoryReservation: "128m" }, "resources.memoryReservation"],
    [{ cpus: 0 }, "resources.cpus"],
    [{ cpus: availableParallelism() + 1 }, "resources.cpus"],
    [{ cpus: Number.NaN }, "resources.cpus"],
    [{ cpusetCpus: "0.5" }, "resources.cpusetCpus"],
    [{ cpusetCpus: "3-1" }, "resources.cpusetCpus"],
    [{ cpusetCpus: `${availableParallelism()}` }, "resources.cpusetCpus"],
    [{ cpuShares: 1 }, "resources.cpuShares"],
    [{ cpuShares: 300_000 }, "resources.cpuShares"],
    [{ pids: 1.5 }, "resources.pids"],
    [{ blkioWeight: 5 }, "resources.blkioWeight"],
    [{ cpu: 1 }, "resources.cpu"],
  ])("%j → InvalidArgumentError naming %s", (limits, field) => {
    expect(() => linuxResources(limits as never)).toThrow(
      expect.objectContaining({ code: "invalid_argument", message: expect.stringContaining(`${field}:`) }),
    );
  });

  test("a raw cpuset that looks like docker's --cpus is refused before runc sees it", () => {
    expect(() => resourcesForUpdate({ linux: { cpu: { cpus: "0.5" } } }, "linux")).toThrow(
      expect.objectContaining({
        code: "invalid_argument",
        message: expect.stringContaining("resources.cpus"),
      }),
    );
    expect(resourcesForUpdate({ cpus: 0.5 }, "linux")).toEqual({
      linux: { cpu: { quota: 50_000, period: 100_000 } },
    });
  });
});

describe("specs", () => {
  test("defaultLinuxSpec carries the limits beside the device rule", () => {
    const spec = defaultLinuxSpec({ args: ["true"], rootfs: "/r", resources: { cpus: 0.5, pids: 10 } });
    expect(spec.linux?.resources).toEqual({
      cpu: { quota: 50_000, period: 100_000 },
      pids: { limit: 10 },
      devices: [{ allow: false, access: "rwm" }],
    });
  });

  test("init: true puts a static tini in front of the command, mounted read-only on /run", () => {
    const spec = defaultLinuxSpec({ args: ["sh", "-c", "sleep 9"], rootfs: "/r", init: true });
    expect(spec.process?.args).toEqual([INIT_PATH, "--", "sh", "-c", "sleep 9"]);
    const mount = spec.mounts?.at(-1);
    expect(mount).toMatchObject({ destination: INIT_PATH, type: "bind", source: "/usr/bin/tini-static" });
    expect(mount?.options).toContain("ro");
    expect(() => defaultLinuxSpec({ args: ["x"], rootfs: "/r", init: "relative/tini" })).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });

  test("Windows: cpus is a share of the machine, memory a byte limit; Linux-only limits are refused", () => {
    const n = availableParallelism();
    expect(windowsResources({ cpus: n / 2, memory: "1g" })).toEqual({
      memory: { limit: 1024 * MiB },
      cpu: { maximum: 5000 },
    });
    expect(defaultWindowsSpec({ resources: { memory: "512m" } }).windows?.resources).toEqual({
      memory: { limit: 512 * MiB },
    });
    expect(() => windowsResources({ pids: 5 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining("resources.pids") }),
    );
  });
});
