import { spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { capabilitiesOf, devicesOf, hostDevices, joinNamespaces } from "../../src/oci/linux-options.js";

// Device nodes are made with mknod: this runs as root, as the suite does (containerd, runc).
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lcd-devices-"));
  mkdirSync(join(dir, "sub"));
  const made = spawnSync("mknod", [join(dir, "sub", "null"), "c", "1", "3"], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`mknod: ${made.stderr}`);
  spawnSync("mkfifo", [join(dir, "fifo")]);
  // As /dev/stdin -> /proc/self/fd/0, /dev/disk/by-id/… -> ../../sda: links, not nodes.
  symlinkSync("/dev/null", join(dir, "link-to-null"));
  symlinkSync(join(dir, "gone"), join(dir, "dangling"));
  symlinkSync(join(dir, "sub"), join(dir, "link-to-dir"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("a privileged container's devices: the nodes themselves, no symlink followed (containerd's HostDevices)", () => {
  const found = hostDevices(dir);
  expect(found.map((device) => device.path)).toEqual([join(dir, "sub", "null")]);
  expect(found[0]).toMatchObject({ type: "c", major: 1, minor: 3 });
});

test("--privileged: no device node where the host has a link (/dev/stdin, /dev/stdout: the container's own links)", () => {
  // An engine whose stdin is /dev/null (as under systemd): /dev/stdin -> /proc/self/fd/0 -> a char device.
  const script = `import { defaultLinuxSpec } from ${JSON.stringify(resolve("src/oci/defaults.ts"))};
    const spec = defaultLinuxSpec({ args: ["true"], rootfs: "/", privileged: true });
    process.stdout.write(JSON.stringify(spec.linux.devices.map((device) => device.path)));`;
  const run = spawnSync(resolve("node_modules/.bin/tsx"), ["-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  expect(run.stderr).toBe("");
  const paths = JSON.parse(run.stdout) as string[];
  expect(paths).toContain("/dev/null");
  expect(paths.filter((path) => lstatSync(path).isSymbolicLink())).toEqual([]);
});

test("--device DIR: its device nodes; links, FIFOs and dangling links are skipped as moby's walk does", () => {
  const { devices, rules } = devicesOf(`${dir}:/dev/mine:rw`);
  expect(devices.map((device) => device.path)).toEqual(["/dev/mine/sub/null"]);
  expect(rules).toEqual([{ allow: true, type: "c", major: 1, minor: 3, access: "rw" }]);
});

test("--device FIFO is no device (runc has no cgroup rule for one): refused up front, as moby", () => {
  expect(() => devicesOf(join(dir, "fifo"))).toThrow(/not a device node/);
  // A link given as the host path is resolved (moby's EvalSymlinks), made at the path asked for.
  expect(devicesOf(`${join(dir, "link-to-null")}:/dev/x`).devices).toMatchObject([
    { path: "/dev/x", type: "c", major: 1, minor: 3 },
  ]);
});

test("--privileged has every capability, whatever --cap-drop says (moby's TweakCapabilities)", () => {
  const all = capabilitiesOf({ privileged: true });
  expect(all).toContain("CAP_SYS_ADMIN");
  expect(capabilitiesOf({ privileged: true, capDrop: ["NET_RAW", "CAP_SYS_ADMIN"] })).toEqual(all);
  // Not privileged: add ALL less what is dropped.
  expect(capabilitiesOf({ capAdd: ["ALL"], capDrop: ["NET_RAW"] })).toEqual(
    all.filter((cap) => cap !== "CAP_NET_RAW"),
  );
});

test("the default masked paths are dockerd's and containerd's: the power meters (/sys/devices/virtual/powercap) too", () => {
  const spec = defaultLinuxSpec({ args: ["true"], rootfs: "/" });
  // CVE-2020-8694/8695: RAPL energy readings, an unprivileged side channel on the host's CPUs.
  expect(spec.linux?.maskedPaths).toContain("/sys/devices/virtual/powercap");
  expect(defaultLinuxSpec({ args: ["true"], rootfs: "/", privileged: true }).linux?.maskedPaths).toEqual([]);
});

test("namespace paths: pid/ipc { path } and joinNamespaces join that namespace, one entry per type", () => {
  const spec = defaultLinuxSpec({
    args: ["true"],
    rootfs: "/",
    pid: { path: "/proc/7/ns/pid" },
    hostNetwork: true,
  });
  const namespaces = () => spec.linux?.namespaces ?? [];
  expect(namespaces().filter((ns) => ns.type === "pid")).toEqual([{ type: "pid", path: "/proc/7/ns/pid" }]);
  // The host's network (no entry) replaced by the joined one; the IPC namespace's new one by a path.
  joinNamespaces(spec, { network: "/proc/8/ns/net", ipc: "/proc/8/ns/ipc" });
  expect(namespaces().filter((ns) => ns.type === "network")).toEqual([
    { type: "network", path: "/proc/8/ns/net" },
  ]);
  expect(namespaces().filter((ns) => ns.type === "ipc")).toEqual([{ type: "ipc", path: "/proc/8/ns/ipc" }]);
  expect(() => joinNamespaces(spec, { pid: "proc/7/ns/pid" })).toThrow(/must be absolute/);
});
