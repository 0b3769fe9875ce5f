import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CreateDocumentContext, createDocument } from "../../src/libcontainerd/local/documents.js";
import { resolveLcowBootFiles } from "../../src/libcontainerd/local/lcow.js";
import { environmentMap, windowsProcessParameters } from "../../src/libcontainerd/local/schema1.js";
import { nameBasedLayerId } from "../../src/libcontainerd/local/windows-config.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotImplementedError,
} from "../../src/libcontainerd/types/errors.js";
import { defaultLinuxSpec, defaultWindowsSpec } from "../../src/oci/index.js";
import type { OciSpec } from "../../src/oci/spec.js";

const VOLUME = "\\\\?\\Volume{0b6c9a8e-2a2c-4f0e-9b7a-5f1f3b7a1c11}\\";

function windowsSpec(extra: Partial<Parameters<typeof defaultWindowsSpec>[0]> = {}): OciSpec {
  const spec = defaultWindowsSpec({
    args: ["cmd", "/c", "echo hi"],
    hostname: "box",
    layerFolders: ["C:\\layers\\base", "C:\\layers\\scratch"],
    memoryLimitBytes: 512 * 1024 * 1024,
    cpuCount: 2,
    mounts: [
      { destination: "C:\\data", source: "D:\\host\\data", options: ["ro"] },
      { destination: "\\\\.\\pipe\\docker_engine", source: "\\\\.\\pipe\\docker_engine" },
    ],
    ...extra,
  });
  if (!extra.hyperv) spec.root = { path: VOLUME };
  return spec;
}

function ctx(windowsBuild: number, extra: Partial<CreateDocumentContext> = {}): CreateDocumentContext {
  return {
    id: "c1",
    owner: "ns",
    windowsBuild,
    layerId: (name) => `guid-${name}`,
    pathExists: () => false,
    hostProcessors: 64,
    ...extra,
  };
}

describe("createDocument: schema by Windows build", () => {
  it("RS4 (17134) gets a schema v1 ContainerConfig", () => {
    const doc = createDocument(windowsSpec(), ctx(17134));
    expect(doc.schema).toBe("v1");
    expect(doc.document).toEqual({
      SystemType: "Container",
      Name: "c1",
      Owner: "ns",
      VolumePath: VOLUME.slice(0, -1),
      LayerFolderPath: "C:\\layers\\scratch",
      Layers: [{ ID: "guid-base", Path: "C:\\layers\\base" }],
      ProcessorCount: 2,
      MemoryMaximumInMB: 512,
      HostName: "box",
      MappedDirectories: [
        {
          HostPath: "D:\\host\\data",
          ContainerPath: "C:\\data",
          ReadOnly: true,
          BandwidthMaximum: 0,
          IOPSMaximum: 0,
          CreateInUtilityVM: false,
        },
      ],
      MappedPipes: [{ HostPath: "\\\\.\\pipe\\docker_engine", ContainerPipeName: "docker_engine" }],
      HvPartition: false,
      TerminateOnLastHandleClosed: true,
    });
  });

  it("RS5 (17763) gets a schema v2.1 ComputeSystem", () => {
    const doc = createDocument(windowsSpec(), ctx(17763));
    expect(doc.schema).toBe("v2.1");
    expect(doc.document).toEqual({
      Owner: "ns",
      SchemaVersion: { Major: 2, Minor: 1 },
      ShouldTerminateOnLastHandleClosed: true,
      Container: {
        GuestOs: { HostName: "box" },
        Storage: { Layers: [{ Id: "guid-base", Path: "C:\\layers\\base" }], Path: VOLUME },
        MappedDirectories: [{ HostPath: "D:\\host\\data", ContainerPath: "C:\\data", ReadOnly: true }],
        MappedPipes: [{ ContainerPipeName: "docker_engine", HostPath: "\\\\.\\pipe\\docker_engine" }],
        Memory: { SizeInMB: 512 },
        Processor: { Count: 2 },
        RegistryChanges: {
          AddValues: [
            {
              Key: { Hive: "System", Name: "ControlSet001\\Control" },
              Name: "WaitToKillServiceTimeout",
              Type: "String",
              StringValue: "2147483647",
            },
          ],
        },
      },
    });
  });

  it("every build from RS1 to RS4 is v1, every later one v2.1", () => {
    const noPipes = windowsSpec({ mounts: [] });
    for (const build of [14393, 15063, 16299, 17134, 17762]) {
      expect(createDocument(noPipes, ctx(build)).schema).toBe("v1");
    }
    // Named-pipe mounts came with RS3 (moby's createWindows).
    expect(() => createDocument(windowsSpec(), ctx(15063))).toThrow(NotImplementedError);
    expect(createDocument(windowsSpec(), ctx(16299)).schema).toBe("v1");
    for (const build of [17763, 18362, 19041, 20348, 26100]) {
      expect(createDocument(windowsSpec(), ctx(build)).schema).toBe("v2.1");
    }
  });

  it("refuses builds before RS1", () => {
    expect(() => createDocument(windowsSpec(), ctx(10586))).toThrow(FailedPreconditionError);
  });

  it("Hyper-V isolation stays v1 with HvRuntime pointing at the first layer with a UtilityVM", () => {
    const spec = defaultWindowsSpec({
      args: ["cmd"],
      hyperv: true,
      layerFolders: ["C:\\l\\top", "C:\\l\\base", "C:\\l\\scratch"],
    });
    const exists = (p: string) => p === "C:\\l\\base\\UtilityVM";
    const doc = createDocument(spec, ctx(17763, { pathExists: exists }));
    expect(doc.schema).toBe("v1");
    expect(doc.document).toMatchObject({
      HvPartition: true,
      HvRuntime: { ImagePath: "C:\\l\\base\\UtilityVM" },
      Layers: [
        { ID: "guid-top", Path: "C:\\l\\top" },
        { ID: "guid-base", Path: "C:\\l\\base" },
      ],
    });
    expect(doc.document).not.toHaveProperty("VolumePath");
  });

  it("Hyper-V without a UtilityVM folder is an InvalidArgumentError naming the layers", () => {
    const spec = defaultWindowsSpec({
      args: ["cmd"],
      hyperv: true,
      layerFolders: ["C:\\l\\base", "C:\\l\\s"],
    });
    expect(() => createDocument(spec, ctx(17134))).toThrow(/UtilityVM.*C:\\l\\base/);
  });

  it("process isolation needs a volume GUID root", () => {
    const spec = windowsSpec();
    spec.root = { path: "C:\\rootfs" };
    expect(() => createDocument(spec, ctx(17763))).toThrow(InvalidArgumentError);
  });

  it("needs a base and a scratch layer", () => {
    const spec = windowsSpec({ layerFolders: ["C:\\only"] });
    expect(() => createDocument(spec, ctx(17763))).toThrow(/at least a base layer/);
  });

  it("rejects non-bind mounts", () => {
    const spec = windowsSpec({ mounts: [{ destination: "C:\\t", type: "tmpfs", source: "x" }] });
    expect(() => createDocument(spec, ctx(17763))).toThrow(/mount type tmpfs/);
  });

  it("carries the CPU maximum, storage QoS and DNS settings", () => {
    const spec = windowsSpec({ cpuCount: undefined });
    // One CPU limit: a process-isolated container's count, shares and maximum are mutually exclusive.
    spec.windows!.resources = { cpu: { maximum: 5000 }, storage: { iops: 100, bps: 2000 } };
    spec.windows!.network = { DNSSearchList: ["a.local", "b.local"], allowUnqualifiedDNSQuery: true };
    const v1 = createDocument(spec, ctx(17134)).document;
    expect(v1).toMatchObject({
      ProcessorMaximum: 5000,
      StorageIOPSMaximum: 100,
      StorageBandwidthMaximum: 2000,
      DNSSearchList: "a.local,b.local",
      AllowUnqualifiedDNSQuery: true,
    });
    const v2 = createDocument(spec, ctx(17763)).document;
    expect(v2).toMatchObject({
      Container: {
        Processor: { Maximum: 5000 },
        Storage: { QoS: { IopsMaximum: 100, BandwidthMaximum: 2000 } },
        Networking: { DnsSearchList: "a.local,b.local", AllowUnqualifiedDnsQuery: true },
      },
    });
  });
});

describe("LCOW", () => {
  const linux = (): OciSpec => ({
    ...defaultLinuxSpec({ args: ["sh"], rootfs: "/rootfs" }),
    windows: { layerFolders: ["C:\\lcow\\base", "C:\\lcow\\scratch"] },
  });
  const folder = "C:\\Program Files\\Linux Containers";

  it("a Linux spec gets the v1 utility-VM document with kernel and initrd", () => {
    const files = new Set([`${folder}\\kernel`, `${folder}\\initrd.img`]);
    const doc = createDocument(linux(), ctx(17763, { pathExists: (p) => files.has(p) }));
    expect(doc).toMatchObject({ schema: "v1", guestOs: "linux" });
    expect(doc.document).toEqual({
      SystemType: "Container",
      Name: "c1",
      Owner: "ns",
      LayerFolderPath: "C:\\lcow\\scratch",
      Layers: [{ ID: "guid-base", Path: "C:\\lcow\\base\\layer.vhd" }],
      HvPartition: true,
      HvRuntime: { ImagePath: folder, LinuxKernelFile: "kernel", LinuxInitrdFile: "initrd.img" },
      ContainerType: "Linux",
      TerminateOnLastHandleClosed: true,
    });
  });

  it("bind mounts point at their utility-VM path in the spec the guest gets; other mounts pass through", () => {
    const files = new Set([`${folder}\\kernel`, `${folder}\\initrd.img`]);
    const spec = {
      ...linux(),
      mounts: [
        {
          destination: "/data",
          type: "bind",
          source: "C:\\data",
          options: ["rbind", "ro", "uvmpath=/binds"],
        },
        { destination: "/proc", type: "proc", source: "proc" },
      ],
    };
    const doc = createDocument(spec, ctx(17763, { pathExists: (p) => files.has(p) }));
    if (doc.guestOs !== "linux") throw new Error("expected an LCOW document");
    expect(doc.guestSpec.mounts).toEqual([
      { destination: "/data", type: "bind", source: "/binds/data", options: ["rbind", "ro"] },
      { destination: "/proc", type: "proc", source: "proc" },
    ]);
    expect(spec.mounts[0]!.source).toBe("C:\\data");
  });

  it("falls back to bootx64.efi", () => {
    const files = new Set([`${folder}\\bootx64.efi`, `${folder}\\initrd.img`]);
    expect(resolveLcowBootFiles(undefined, (p) => files.has(p)).kernelFile).toBe("bootx64.efi");
  });

  it("honours the options", () => {
    const files = new Set(["D:\\boot\\vmlinuz", "D:\\boot\\rd.img"]);
    const boot = resolveLcowBootFiles(
      { bootFilesPath: "D:\\boot", kernel: "vmlinuz", initrd: "rd.img", bootParameters: "console=ttyS0" },
      (p) => files.has(p),
    );
    expect(boot).toEqual({
      bootFilesPath: "D:\\boot",
      kernelFile: "vmlinuz",
      initrdFile: "rd.img",
      bootParameters: "console=ttyS0",
    });
    const absolute = resolveLcowBootFiles({ kernel: "D:\\boot\\vmlinuz", initrd: "D:\\boot\\rd.img" }, (p) =>
      files.has(p),
    );
    expect(absolute.bootFilesPath).toBe("D:\\boot");
  });

  it("a missing kernel is an InvalidArgumentError naming the file", () => {
    const checked: string[] = [];
    const exists = (p: string) => {
      checked.push(p);
      return p.endsWith("initrd.img");
    };
    expect(() =>
      createDocument(linux(), ctx(17763, { lcow: { bootFilesPath: "E:\\lcow" }, pathExists: exists })),
    ).toThrow(new InvalidArgumentError("LCOW kernel not found: E:\\lcow\\kernel or E:\\lcow\\bootx64.efi"));
    expect(() =>
      createDocument(linux(), ctx(17763, { lcow: { kernel: "custom-kernel" }, pathExists: exists })),
    ).toThrow(/custom-kernel/);
  });

  it("a missing initrd is an InvalidArgumentError naming the file", () => {
    expect(() => resolveLcowBootFiles({}, (p) => p.endsWith("kernel"))).toThrow(
      `LCOW initrd not found: ${folder}\\initrd.img`,
    );
  });

  it("kernel and initrd in different folders are refused", () => {
    expect(() => resolveLcowBootFiles({ kernel: "C:\\a\\k", initrd: "C:\\b\\i" }, () => true)).toThrow(
      /one folder/,
    );
  });
});

describe("process parameters", () => {
  it("builds the CommandLine with Windows quoting and maps stdio", () => {
    const spec = defaultWindowsSpec({
      args: ["sh", "-c", "exit 7"],
      env: ["A=1", "EMPTY=", "B=x=y"],
      cwd: "C:\\w",
    });
    expect(
      windowsProcessParameters(spec.process!, { stdin: true, stdout: true, stderr: true, terminal: false }),
    ).toEqual({
      CommandLine: 'sh -c "exit 7"',
      User: "ContainerUser",
      WorkingDirectory: "C:\\w",
      Environment: { A: "1", B: "x=y" },
      CreateStdInPipe: true,
      CreateStdOutPipe: true,
      CreateStdErrPipe: true,
      ConsoleSize: [0, 0],
    });
  });

  it("a terminal merges stderr into stdout and sends [height, width]", () => {
    const spec = defaultWindowsSpec({ commandLine: "cmd", terminal: true });
    spec.process!.consoleSize = { height: 40, width: 120 };
    expect(
      windowsProcessParameters(spec.process!, { stdin: true, stdout: true, stderr: true, terminal: true }),
    ).toEqual({
      CommandLine: "cmd",
      User: "ContainerUser",
      WorkingDirectory: "C:\\",
      EmulateConsole: true,
      CreateStdInPipe: true,
      CreateStdOutPipe: true,
      ConsoleSize: [40, 120],
    });
  });

  it("environmentMap drops malformed and empty entries", () => {
    expect(environmentMap(["=x", "NOEQ", "K=v"])).toEqual({ K: "v" });
    expect(environmentMap([])).toBeUndefined();
  });
});

describe("nameBasedLayerId", () => {
  it("is a stable RFC 4122 v5 UUID", () => {
    const id = nameBasedLayerId("layer1");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(nameBasedLayerId("layer1")).toBe(id);
    expect(nameBasedLayerId("layer2")).not.toBe(id);
  });
});

describe("createDocument on arbitrary specs", () => {
  it("returns a JSON document or a typed error, nothing else", () => {
    const text = fc.string({ maxLength: 12 });
    const windowsPath = fc.stringMatching(/^[A-Z]:\\[A-Za-z0-9 _.\\-]{0,20}$/);
    const mount = fc.record(
      {
        destination: fc.oneof(windowsPath, fc.constant("\\\\.\\pipe\\p"), text),
        source: fc.option(windowsPath, { nil: undefined }),
        type: fc.option(fc.constantFrom("bind", "", "tmpfs"), { nil: undefined }),
        options: fc.option(fc.array(fc.constantFrom("ro", "rw")), { nil: undefined }),
      },
      { requiredKeys: ["destination"] },
    );
    const spec = fc.record({
      args: fc.array(text, { maxLength: 3 }),
      layerFolders: fc.array(windowsPath, { maxLength: 4 }),
      hyperv: fc.boolean(),
      mounts: fc.array(mount, { maxLength: 3 }),
      memoryLimitBytes: fc.option(fc.nat(), { nil: undefined }),
      cpuCount: fc.option(fc.nat(64), { nil: undefined }),
      root: fc.oneof(fc.constant(VOLUME), windowsPath),
      linux: fc.boolean(),
      build: fc.constantFrom(10586, 14393, 17134, 17763, 20348),
    });
    fc.assert(
      fc.property(spec, (input) => {
        const oci = defaultWindowsSpec(input);
        oci.root = { path: input.root };
        if (input.linux) oci.linux = {};
        try {
          const doc = createDocument(oci, ctx(input.build, { pathExists: () => input.hyperv }));
          expect(JSON.parse(JSON.stringify(doc.document))).toEqual(doc.document);
        } catch (err) {
          expect(
            err instanceof InvalidArgumentError ||
              err instanceof FailedPreconditionError ||
              err instanceof NotImplementedError,
          ).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
