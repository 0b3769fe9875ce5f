import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { OptionsSchema } from "../../src/gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { createLookPath } from "../../src/runtime/lookpath.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";

let dir: string;
let fakeRuntime: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lcd-registry-"));
  fakeRuntime = join(dir, "fake-runtime");
  writeFileSync(fakeRuntime, "#!/bin/sh\n", { mode: 0o755 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const binaryNameOf = (value: Uint8Array | undefined) =>
  fromBinary(OptionsSchema, value ?? new Uint8Array()).binaryName;

describe("selection", () => {
  test("defaultRuntime switches what an unnamed container gets; a per-call name overrides it", async () => {
    const registry = new RuntimeRegistry({
      stateDir: dir,
      runtimes: { fake: { path: fakeRuntime } },
      defaultRuntime: "FAKE",
    });
    expect(registry.defaultRuntime).toBe("fake");
    const unnamed = await registry.resolve();
    expect([unnamed.name, unnamed.shim, binaryNameOf(unnamed.options?.value)]).toEqual([
      "fake",
      "io.containerd.runc.v2",
      fakeRuntime,
    ]);
    const named = await registry.resolve("runc");
    expect([named.name, binaryNameOf(named.options?.value)]).toEqual(["runc", "runc"]);
  });

  test("an empty defaultRuntime means the stock default", async () => {
    const registry = new RuntimeRegistry({ stateDir: dir, defaultRuntime: "" });
    expect(registry.defaultRuntime).toBe("runc");
    expect((await registry.resolve()).shim).toBe("io.containerd.runc.v2");
  });

  test("a containerd shim name passes through without options, as default or per call", async () => {
    const registry = new RuntimeRegistry({ stateDir: dir, defaultRuntime: "io.containerd.kata.v2" });
    expect(await registry.resolve()).toEqual({
      name: "io.containerd.kata.v2",
      shim: "io.containerd.kata.v2",
    });
    expect(await registry.resolve("io.containerd.runsc.v1")).toEqual({
      name: "io.containerd.runsc.v1",
      shim: "io.containerd.runsc.v1",
    });
  });

  test.each(["crun", "/usr/bin/containerd-shim-runc-v2", "a/b.v2", ".hidden", "C:\\shim.exe", "."])(
    "defaultRuntime %j that is neither stock, configured nor a shim name is refused",
    (name) => {
      const create = () => new RuntimeRegistry({ stateDir: dir, defaultRuntime: name });
      expect(create).toThrow(InvalidArgumentError);
      expect(create).toThrow(/specified default runtime '.*' does not exist \(known runtimes: runc, /);
    },
  );

  test.each(["crun", "/usr/bin/evil", "../evil.v2", "x/io.containerd.runc.v2", ".v2", "\\\\server\\shim"])(
    "resolve(%j) of an unknown runtime lists the known ones",
    async (name) => {
      const registry = new RuntimeRegistry({ stateDir: dir, runtimes: { fake: { path: fakeRuntime } } });
      const error = await registry.resolve(name).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(
        /unknown or invalid runtime name '.*' \(known runtimes: runc, io\.containerd\.runc\.v2, io\.containerd\.runtime\.v1\.linux, fake;/,
      );
    },
  );
});

describe("a configured runtime's binary is checked when a container is created", () => {
  test("a missing absolute path", async () => {
    const registry = new RuntimeRegistry({ stateDir: dir, addRuntimes: ["gone=/nonexistent/crun"] });
    await expect(registry.resolve("gone")).rejects.toThrow(
      /runtime 'gone': its binary '\/nonexistent\/crun' was not found or is not executable/,
    );
    await expect(registry.resolve("gone")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test("a file that is not executable", async () => {
    const notExecutable = join(dir, "not-executable");
    writeFileSync(notExecutable, "#!/bin/sh\n");
    chmodSync(notExecutable, 0o644);
    const registry = new RuntimeRegistry({ stateDir: dir, addRuntimes: [`plain=${notExecutable}`] });
    await expect(registry.resolve("plain")).rejects.toThrow(/was not found or is not executable/);
  });

  test("a bare name searched on PATH", async () => {
    const registry = new RuntimeRegistry({
      stateDir: dir,
      addRuntimes: ["fake=fake-runtime", "nowhere=no-such-runtime"],
      lookPath: createLookPath(`/nonexistent:${dir}`),
    });
    expect(binaryNameOf((await registry.resolve("fake")).options?.value)).toBe("fake-runtime");
    await expect(registry.resolve("nowhere")).rejects.toThrow(
      /runtime 'nowhere': its binary 'no-such-runtime' was not found or is not executable \(searched PATH\)/,
    );
  });

  test("with runtimeArgs the real binary is checked, not the wrapper, and no wrapper is written", async () => {
    const wrapperDir = join(dir, "never-written");
    const registry = new RuntimeRegistry({
      stateDir: dir,
      wrapperDir,
      runtimes: { gone: { path: "/nonexistent/crun", runtimeArgs: ["--debug"] } },
    });
    await expect(registry.resolve("gone")).rejects.toThrow(/its binary '\/nonexistent\/crun'/);
    expect(existsSync(wrapperDir)).toBe(false);
  });

  test("a runtimeType runtime is not checked (the shim is containerd's to find)", async () => {
    const registry = new RuntimeRegistry({
      stateDir: dir,
      runtimes: { kata: { runtimeType: "io.containerd.kata.v2" } },
    });
    expect(await registry.resolve("kata")).toEqual({ name: "kata", shim: "io.containerd.kata.v2" });
  });
});

test("list() reports each runtime's shim and options type URL", () => {
  const registry = new RuntimeRegistry({
    stateDir: dir,
    wrapperDir: join(dir, "w"),
    runtimes: {
      crun: { path: "/usr/bin/crun" },
      debug: { path: "runc", runtimeArgs: ["--debug"] },
      kata: { runtimeType: "io.containerd.kata.v2", options: { ConfigPath: "/etc/kata.toml" } },
      gvisor: { runtimeType: "io.containerd.runsc.v1" },
    },
    defaultRuntime: "crun",
  });
  const listed = registry.list();
  expect(
    listed.map(({ name, shim, optionsTypeUrl, source, isDefault }) => [
      name,
      shim,
      optionsTypeUrl,
      source,
      isDefault,
    ]),
  ).toEqual([
    ["runc", "io.containerd.runc.v2", "containerd.runc.v1.Options", "stock", false],
    ["io.containerd.runc.v2", "io.containerd.runc.v2", "containerd.runc.v1.Options", "stock", false],
    [
      "io.containerd.runtime.v1.linux",
      "io.containerd.runtime.v1.linux",
      "containerd.linux.runc.RuncOptions",
      "stock",
      false,
    ],
    ["crun", "io.containerd.runc.v2", "containerd.runc.v1.Options", "configured", true],
    ["debug", "io.containerd.runc.v2", "containerd.runc.v1.Options", "configured", false],
    ["kata", "io.containerd.kata.v2", "runtimeoptions.v1.Options", "configured", false],
    ["gvisor", "io.containerd.runsc.v1", undefined, "configured", false],
  ]);
  const debug = listed.find((r) => r.name === "debug");
  expect(debug?.path).toBe("runc");
  expect(debug?.runtimeArgs).toEqual(["--debug"]);
  expect(debug?.wrapperScript).toMatch(new RegExp(`^${join(dir, "w")}/debug\\.[0-9a-f]{64}$`));
});

describe("what dockerd derives for runc runtimes, and their features", () => {
  const dir = mkdtempSync(join(tmpdir(), "runtime-derived-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const v2Options = async (registry: RuntimeRegistry, name: string) => {
    const resolved = await registry.resolve(name);
    return fromBinary(OptionsSchema, resolved.options!.value);
  };

  test("cgroupDriver systemd → SystemdCgroup; DOCKER_RAMDISK → NoPivotRoot; neither by default", async () => {
    const plain = new RuntimeRegistry({ stateDir: dir, env: {} });
    expect(await v2Options(plain, "runc")).toMatchObject({ systemdCgroup: false, noPivotRoot: false });
    const derived = new RuntimeRegistry({
      stateDir: dir,
      cgroupDriver: "systemd",
      env: { DOCKER_RAMDISK: "1" },
      runtimes: { custom: { path: "/bin/true" } },
    });
    expect(await v2Options(derived, "runc")).toMatchObject({ systemdCgroup: true, noPivotRoot: true });
    expect(await v2Options(derived, "custom")).toMatchObject({ systemdCgroup: true, noPivotRoot: true });
  });

  test("features(): the runtime binary's `features` JSON, probed once; undefined when it has none", async () => {
    const binary = join(dir, "fake-runtime");
    const calls = join(dir, "features-calls");
    writeFileSync(
      binary,
      `#!/bin/sh\necho x >> ${calls}\n[ "$1" = features ] && echo '{"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0"}'\n`,
    );
    chmodSync(binary, 0o755);
    const registry = new RuntimeRegistry({
      stateDir: dir,
      runtimes: { fake: { path: binary }, silent: { path: "/bin/true" } },
    });
    expect(await registry.features("fake")).toMatchObject({ ociVersionMin: "1.0.0", ociVersionMax: "1.1.0" });
    await registry.features("fake");
    expect(readFileSync(calls, "utf8")).toBe("x\n");
    expect(await registry.features("silent")).toBeUndefined();
    expect(await registry.features("io.containerd.kata.v2")).toBeUndefined();
  });
});
