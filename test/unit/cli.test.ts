// The CLI's pure parts: flag parsing, spec building, error lines and exit statuses, tables.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import {
  containerLabels,
  containerSpec,
  generateName,
  labelledCommand,
  parseEnv,
  parseSize,
  parseUser,
  resourcesFromFlags,
} from "../../src/cli/container-spec.js";
import { CliError, exitCodeFor, formatError, launchFailure } from "../../src/cli/errors.js";
import { eventFilter } from "../../src/cli/events.js";
import { withEnv } from "../../src/cli/exec.js";
import { formatBytes, formatTable } from "../../src/cli/output.js";
import { InvalidArgumentError, NotFoundError } from "../../src/libcontainerd/types/errors.js";

const rootfs = mkdtempSync(join(tmpdir(), "ctrd-unit-"));
mkdirSync(join(rootfs, "etc"));
writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/false\n");
writeFileSync(join(rootfs, "etc/group"), "root:x:0:\nstaff:x:50:\n");
afterAll(() => rmSync(rootfs, { recursive: true, force: true }));

describe("flag parsing", () => {
  test("sizes as docker writes them", () => {
    expect(parseSize("65536", "--memory")).toBe(65536);
    expect(parseSize("512k", "--memory")).toBe(512 * 1024);
    expect(parseSize("64m", "--memory")).toBe(64 * 1024 ** 2);
    expect(parseSize("1.5GB", "--memory")).toBe(1.5 * 1024 ** 3);
    expect(() => parseSize("lots", "--memory")).toThrow(/invalid --memory "lots"/);
    expect(() => parseSize("0", "--memory")).toThrow(CliError);
  });

  test("resources: docker's flags as the library's limits, checked there, errors naming the flag", () => {
    expect(resourcesFromFlags({})).toBeUndefined();
    expect(resourcesFromFlags({ memory: "64m", cpus: "0.5", pidsLimit: "20", cpusetCpus: "0" })).toEqual({
      memory: "64m",
      cpus: 0.5,
      pids: 20,
      cpusetCpus: "0",
    });
    expect(() => resourcesFromFlags({ cpus: "-1" })).toThrow(/invalid --cpus "-1"/);
    expect(() => resourcesFromFlags({ cpus: "" })).toThrow(/--cpus/);
    expect(() => resourcesFromFlags({ pidsLimit: "1.5" })).toThrow(/--pids-limit/);
    expect(() => resourcesFromFlags({ memory: "1m" })).toThrow(/minimum/);
    expect(() => resourcesFromFlags({ memorySwap: "1g" })).toThrow(
      /invalid --memory-swap "1g": needs --memory/,
    );
    expect(() => resourcesFromFlags({ memory: "64m", memorySwap: "32m" })).toThrow(/--memory-swap/);
    expect(() => resourcesFromFlags({ cpuShares: "1" })).toThrow(/--cpu-shares/);
    expect(() => resourcesFromFlags({ blkioWeight: "5" })).toThrow(/--blkio-weight/);
  });

  test("users: ids, names from the rootfs, the primary group by default", () => {
    expect(parseUser("1000", rootfs)).toEqual({ uid: 1000, gid: 1000 });
    expect(parseUser("1000:5", rootfs)).toEqual({ uid: 1000, gid: 5 });
    expect(parseUser("web", rootfs)).toEqual({ uid: 33, gid: 44 });
    expect(parseUser("web:staff", rootfs)).toEqual({ uid: 33, gid: 50 });
    expect(() => parseUser("ghost", rootfs)).toThrow(/no user "ghost"/);
    expect(() => parseUser(":5", rootfs)).toThrow(/want UID\[:GID\]/);
  });

  test("env: K=V as given, a bare K from ctrd's environment", () => {
    process.env.CTRD_UNIT_VALUE = "from-host";
    expect(parseEnv(["A=1", "CTRD_UNIT_VALUE", "CTRD_UNIT_UNSET"])).toEqual([
      "A=1",
      "CTRD_UNIT_VALUE=from-host",
    ]);
    expect(() => parseEnv(["=x"])).toThrow(/invalid --env/);
  });

  test("generated names are valid containerd ids", () => {
    for (let i = 0; i < 50; i++) expect(generateName()).toMatch(/^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
  });
});

describe("container spec", () => {
  const flags = {
    args: ["sh", "-c", "echo hi"],
    rootfs,
    id: "c1",
    namespace: "ns",
    env: ["A=1"],
    tty: false,
  };

  test("cgroup under the namespace, or the given parent", () => {
    expect(containerSpec(flags).linux?.cgroupsPath).toBe("/ns/c1");
    expect(containerSpec({ ...flags, cgroupParent: "tests/" }).linux?.cgroupsPath).toBe("/tests/c1");
  });

  test("resources join the spec's device rules; the command round-trips through labels", () => {
    const spec = containerSpec({ ...flags, resources: { pids: 5 }, init: true, readonlyRootfs: true });
    expect(spec.process?.args?.[0]).toBe("/run/ctrd-init");
    expect(spec.root?.readonly).toBe(true);
    expect(spec.linux?.resources?.pids).toEqual({ limit: 5 });
    expect(spec.linux?.resources?.devices).toHaveLength(1);
    expect(spec.process?.env).toContain("A=1");
    expect(labelledCommand(containerLabels(flags))).toEqual(flags.args);
    expect(labelledCommand({})).toEqual([]);
  });
});

describe("errors", () => {
  test("one line with the code; 125 unless said otherwise", () => {
    const err = new InvalidArgumentError("bad\nthing");
    expect(formatError(err)).toBe("ctrd: bad | thing (invalid_argument)");
    expect(exitCodeFor(err)).toBe(125);
    expect(exitCodeFor(new CliError("x", "usage", 3))).toBe(3);
  });

  test("a missing executable is 127, a non-executable one 126, a missing container stays 125", () => {
    const missing = new NotFoundError(
      'create task: exec: "nope": executable file not found in $PATH: unknown',
    );
    expect(exitCodeFor(launchFailure(missing, ["nope"]))).toBe(127);
    const denied = new InvalidArgumentError('create task: exec: "/tmp": permission denied: unknown');
    expect(exitCodeFor(launchFailure(denied, ["/tmp"]))).toBe(126);
    const gone = new NotFoundError("no such container: web");
    expect(exitCodeFor(launchFailure(gone, ["true"]))).toBe(125);
  });
});

describe("output", () => {
  test("tables align columns and trim the last", () => {
    expect(formatTable(["A", "LONG HEADER"], [["xyz", "1"]])).toBe("A     LONG HEADER\nxyz   1");
  });

  test("bytes", () => {
    expect(formatBytes(512)).toBe("512B");
    expect(formatBytes(1536)).toBe("1.50KiB");
    expect(formatBytes(64 * 1024 ** 2)).toBe("64.0MiB");
  });
});

describe("events --filter", () => {
  const event = (type: "exit" | "start" | "paused", containerId: string) => ({
    type,
    containerId,
    processId: containerId,
    pid: 1,
    timestamp: new Date(),
  });
  test("values of one key are alternatives, keys must all match; docker's event names", () => {
    const wanted = eventFilter(["container=a", "container=b", "event=die", "event=pause"]);
    expect(wanted(event("exit", "a"))).toBe(true);
    expect(wanted(event("paused", "b"))).toBe(true);
    expect(wanted(event("start", "a"))).toBe(false);
    expect(wanted(event("exit", "c"))).toBe(false);
    expect(eventFilter([])(event("start", "c"))).toBe(true);
    expect(eventFilter(["event=exec-started"])(event("start", "c"))).toBe(false);
  });
  test("die is the container's own exit, exec_die an exec's, as docker reports them apart", () => {
    const execExit = { ...event("exit", "a"), processId: "e1" };
    expect(eventFilter(["event=die"])(execExit)).toBe(false);
    expect(eventFilter(["event=exec_die"])(execExit)).toBe(true);
    expect(eventFilter(["event=exec_die"])(event("exit", "a"))).toBe(false);
    expect(eventFilter(["event=exit"])(execExit)).toBe(true);
  });
  test("type= is docker's object type: container events are all of ctrd's, the other types none", () => {
    expect(eventFilter(["type=container"])(event("start", "c"))).toBe(true);
    expect(eventFilter(["type=image"])(event("start", "c"))).toBe(false);
    expect(() => eventFilter(["type=exit"])).toThrow(/invalid --filter/);
  });
  test("anything else is a usage error", () => {
    for (const bad of ["image=x", "event=boom", "container=", "container", "type=exec-started"])
      expect(() => eventFilter([bad]), bad).toThrow(/invalid --filter/);
  });
});

test("exec -e: the container's environment with the given variables set over it", () => {
  expect(withEnv(["PATH=/bin", "A=1", "B=2"], ["A=x", "C=3", "C=4"])).toEqual([
    "PATH=/bin",
    "A=x",
    "B=2",
    "C=4",
  ]);
  expect(withEnv([], ["A=1"])).toEqual(["A=1"]);
});
