import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { findContainerdBinary } from "../../src/libcontainerd/supervisor/binary.js";
import { containerdConfigToml } from "../../src/libcontainerd/supervisor/config.js";
import { managedContainerdLayout } from "../../src/libcontainerd/supervisor/layout.js";
import { parseContainerdLogLine } from "../../src/libcontainerd/supervisor/log-forwarder.js";
import { FailedPreconditionError } from "../../src/libcontainerd/types/errors.js";

const dir = mkdtempSync(join(tmpdir(), "lcd-sup-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("layout", () => {
  test("socket, pid file and config sit in stateDir; containerd's own state below it", () => {
    expect(managedContainerdLayout("/var/lib/x", "/run/x")).toEqual({
      root: "/var/lib/x",
      stateDir: "/run/x",
      daemonStateDir: "/run/x/daemon",
      socket: "/run/x/containerd.sock",
      ttrpcSocket: "/run/x/containerd.sock.ttrpc",
      configFile: "/run/x/containerd.toml",
      pidFile: "/run/x/containerd.pid",
      stoppedMarker: "/run/x/containerd.stopped",
      runcV1Root: "/run/x/runc-v1",
    });
  });
});

describe("config", () => {
  test("version 2, our dirs, CRI off, 16 MiB messages, v1 runtime root under stateDir", () => {
    const toml = containerdConfigToml(managedContainerdLayout("/r", "/s"));
    expect(toml).toMatch(/^version = 2\n/);
    expect(toml).toContain('root = "/r"\nstate = "/s/daemon"');
    expect(toml).toContain('  "io.containerd.grpc.v1.cri",');
    expect(toml).toContain('[grpc]\n  address = "/s/containerd.sock"\n  max_recv_message_size = 16777216');
    expect(toml).toContain('[ttrpc]\n  address = "/s/containerd.sock.ttrpc"');
    expect(toml).toContain('runtime_root = "/s/runc-v1"');
    expect(toml).not.toContain("[debug]");
    expect(containerdConfigToml(managedContainerdLayout("/r", "/s"), "debug")).toContain(
      '[debug]\n  level = "debug"',
    );
  });

  test("paths with quotes and backslashes are escaped", () => {
    const toml = containerdConfigToml(managedContainerdLayout('/r"oot\\x', "/s"));
    expect(toml).toContain('root = "/r\\"oot\\\\x"');
  });
});

describe("log lines", () => {
  test.each([
    ['time="t" level=info msg="starting containerd" revision=x', "info", "starting containerd"],
    ['time="t" level=warning msg="a \\"quoted\\" word"', "warn", 'a "quoted" word'],
    ["time=t level=error msg=bare", "error", "bare"],
    ['level=panic msg="p"', "fatal", "p"],
    ["no structure at all", "info", "no structure at all"],
  ])("%s", (line, level, msg) => {
    expect(parseContainerdLogLine(line)).toEqual({ level, msg });
  });
});

describe("binary search", () => {
  test("PATH first, then the fallback dirs; directories and non-executables are skipped", () => {
    const onPath = join(dir, "path");
    const fallback = join(dir, "fallback");
    for (const d of [onPath, fallback]) makeEmptyDir(d);
    writeFileSync(join(onPath, "containerd"), "not executable");
    writeFileSync(join(fallback, "containerd"), "#!/bin/sh\n");
    chmodSync(join(fallback, "containerd"), 0o755);
    expect(findContainerdBinary({ path: onPath, extraDirs: [fallback] })).toBe(join(fallback, "containerd"));
    chmodSync(join(onPath, "containerd"), 0o755);
    expect(findContainerdBinary({ path: onPath, extraDirs: [fallback] })).toBe(join(onPath, "containerd"));
    expect(() => findContainerdBinary({ path: "", extraDirs: [] })).toThrow(FailedPreconditionError);
  });
});

function makeEmptyDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
}
