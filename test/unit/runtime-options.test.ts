import { create, createFileRegistry, fromBinary, ScalarType, toBinary, toJson } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";
import { RuncOptionsSchema } from "../../src/gen/github.com/containerd/containerd/runtime/linux/runctypes/runc_pb.js";
import { OptionsSchema } from "../../src/gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import {
  decodeShimOptions,
  RUNC_V1_OPTIONS,
  runcV1Options,
  shimOptionsFor,
} from "../../src/runtime/shim-options.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const {
  STRING: TYPE_STRING,
  BOOL: TYPE_BOOL,
  INT32: TYPE_INT32,
  ENUM: TYPE_ENUM,
  BYTES: TYPE_BYTES,
  MESSAGE: TYPE_MESSAGE,
} = FieldDescriptorProto_Type;
const OPTIONAL = FieldDescriptorProto_Label.OPTIONAL;
const REPEATED = FieldDescriptorProto_Label.REPEATED;

/**
 * The upstream messages rebuilt as descriptors from their .proto field numbers, so the hand-written
 * encoders are checked by protobuf-es's own decoder rather than by themselves.
 */
const upstream = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "upstream-options.proto",
    package: "containerd.runhcs.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "Options",
        field: [
          ["debug", 1, TYPE_BOOL],
          ["debug_type", 2, TYPE_ENUM, ".containerd.runhcs.v1.Options.DebugType"],
          ["registry_root", 3, TYPE_STRING],
          ["sandbox_image", 4, TYPE_STRING],
          ["sandbox_platform", 5, TYPE_STRING],
          ["sandbox_isolation", 6, TYPE_ENUM, ".containerd.runhcs.v1.Options.SandboxIsolation"],
          ["boot_files_root_path", 7, TYPE_STRING],
          ["vm_processor_count", 8, TYPE_INT32],
          ["vm_memory_size_in_mb", 9, TYPE_INT32],
          ["GPUVHDPath", 10, TYPE_STRING],
          ["scale_cpu_limits_to_sandbox", 11, TYPE_BOOL],
          ["default_container_scratch_size_in_gb", 12, TYPE_INT32],
          ["default_vm_scratch_size_in_gb", 13, TYPE_INT32],
          ["share_scratch", 14, TYPE_BOOL],
          ["NCProxyAddr", 15, TYPE_STRING],
          ["log_level", 16, TYPE_STRING],
          ["io_retry_timeout_in_sec", 17, TYPE_INT32],
          [
            "default_container_annotations",
            18,
            TYPE_MESSAGE,
            ".containerd.runhcs.v1.Options.DefaultContainerAnnotationsEntry",
            REPEATED,
          ],
          ["no_inherit_host_timezone", 19, TYPE_BOOL],
          ["scrub_logs", 20, TYPE_BOOL],
        ].map(([name, number, type, typeName, label]) => ({
          name: name as string,
          jsonName: (name as string).replace(/_(.)/g, (_, c: string) => c.toUpperCase()),
          number: number as number,
          type: type as FieldDescriptorProto_Type,
          label: (label as FieldDescriptorProto_Label | undefined) ?? OPTIONAL,
          ...(typeName ? { typeName: typeName as string } : {}),
        })),
        nestedType: [
          {
            name: "DefaultContainerAnnotationsEntry",
            field: [
              { name: "key", jsonName: "key", number: 1, type: TYPE_STRING, label: OPTIONAL },
              { name: "value", jsonName: "value", number: 2, type: TYPE_STRING, label: OPTIONAL },
            ],
            options: { mapEntry: true },
          },
        ],
        enumType: [
          {
            name: "DebugType",
            value: [
              { name: "NPIPE", number: 0 },
              { name: "FILE", number: 1 },
              { name: "ETW", number: 2 },
            ],
          },
          {
            name: "SandboxIsolation",
            value: [
              { name: "PROCESS", number: 0 },
              { name: "HYPERVISOR", number: 1 },
            ],
          },
        ],
      },
    ],
  }),
  () => undefined,
);
const genericOptions = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "runtimeoptions.proto",
    package: "runtimeoptions.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "Options",
        field: [
          { name: "type_url", jsonName: "typeUrl", number: 1, type: TYPE_STRING, label: OPTIONAL },
          { name: "config_path", jsonName: "configPath", number: 2, type: TYPE_STRING, label: OPTIONAL },
          { name: "config_body", jsonName: "configBody", number: 3, type: TYPE_BYTES, label: OPTIONAL },
        ],
      },
    ],
  }),
  () => undefined,
);

function decodeWith(registry: ReturnType<typeof createFileRegistry>, typeName: string, bytes: Uint8Array) {
  const schema = registry.getMessage(typeName);
  if (!schema) throw new Error(`${typeName} missing from the test registry`);
  return toJson(schema, fromBinary(schema, bytes));
}

describe("runhcs Options (containerd.runhcs.v1.Options), encoded from hcsshim's field numbers", () => {
  test("exact bytes for a small message", () => {
    const options = shimOptionsFor("hyperv", "io.containerd.runhcs.v1", {
      Debug: true,
      SandboxIsolation: "HYPERVISOR",
      VmMemorySizeInMb: 2048,
    });
    expect(options.typeUrl).toBe("containerd.runhcs.v1.Options");
    // field 1 varint 1; field 6 varint 1; field 9 varint 2048 (0x80 0x10)
    expect(hex(options.value)).toBe("0801" + "3001" + "488010");
  });

  test("every field decodes back through a descriptor built from the upstream .proto", () => {
    const options = shimOptionsFor("hyperv", "io.containerd.runhcs.v1", {
      Debug: true,
      DebugType: "ETW",
      RegistryRoot: "Software\\runhcs",
      SandboxImage: "mcr.microsoft.com/pause",
      SandboxPlatform: "windows/amd64",
      SandboxIsolation: 1,
      BootFilesRootPath: "C:\\ContainerPlat\\LinuxBootFiles",
      VmProcessorCount: 4,
      VmMemorySizeInMb: 4096,
      GPUVHDPath: "C:\\gpu.vhd",
      ScaleCpuLimitsToSandbox: true,
      DefaultContainerScratchSizeInGb: 30,
      DefaultVmScratchSizeInGb: -1,
      ShareScratch: true,
      NCProxyAddr: "127.0.0.1:6669",
      LogLevel: "trace",
      IoRetryTimeoutInSec: 60,
      DefaultContainerAnnotations: { "io.microsoft.container.processdumplocation": "C:\\dumps", a: "b" },
      NoInheritHostTimezone: true,
      ScrubLogs: true,
    });
    expect(decodeWith(upstream, "containerd.runhcs.v1.Options", options.value)).toEqual({
      debug: true,
      debugType: "ETW",
      registryRoot: "Software\\runhcs",
      sandboxImage: "mcr.microsoft.com/pause",
      sandboxPlatform: "windows/amd64",
      sandboxIsolation: "HYPERVISOR",
      bootFilesRootPath: "C:\\ContainerPlat\\LinuxBootFiles",
      vmProcessorCount: 4,
      vmMemorySizeInMb: 4096,
      GPUVHDPath: "C:\\gpu.vhd",
      scaleCpuLimitsToSandbox: true,
      defaultContainerScratchSizeInGb: 30,
      defaultVmScratchSizeInGb: -1,
      shareScratch: true,
      NCProxyAddr: "127.0.0.1:6669",
      logLevel: "trace",
      ioRetryTimeoutInSec: 60,
      defaultContainerAnnotations: { "io.microsoft.container.processdumplocation": "C:\\dumps", a: "b" },
      noInheritHostTimezone: true,
      scrubLogs: true,
    });
  });

  test("a negative int32 is ten bytes of varint, as Go writes it", () => {
    const options = shimOptionsFor("x", "io.containerd.runhcs.v1", { VmProcessorCount: -1 });
    expect(hex(options.value)).toBe(`40${"ff".repeat(9)}01`);
  });

  test("the Windows default runtime is io.containerd.runhcs.v1 with (empty) runhcs Options", async () => {
    const registry = new RuntimeRegistry({ stateDir: "C:\\state", platform: "windows" });
    expect(registry.defaultRuntime).toBe("io.containerd.runhcs.v1");
    const resolved = await registry.resolve();
    expect(resolved).toEqual({
      name: "io.containerd.runhcs.v1",
      shim: "io.containerd.runhcs.v1",
      options: { typeUrl: "containerd.runhcs.v1.Options", value: new Uint8Array() },
    });
    await expect(registry.resolve("runc")).rejects.toThrow(/unknown or invalid runtime name 'runc'/);
  });

  test("Windows: a runhcs runtime with options, and path runtimes refused", async () => {
    const registry = new RuntimeRegistry({
      stateDir: "C:\\state",
      platform: "windows",
      runtimes: {
        hyperv: { runtimeType: "io.containerd.runhcs.v1", options: { SandboxIsolation: "HYPERVISOR" } },
      },
      defaultRuntime: "hyperv",
    });
    const resolved = await registry.resolve();
    expect(resolved.shim).toBe("io.containerd.runhcs.v1");
    expect(hex(resolved.options?.value ?? new Uint8Array())).toBe("3001");
    expect(
      () => new RuntimeRegistry({ stateDir: "C:\\state", platform: "windows", addRuntimes: ["crun=crun"] }),
    ).toThrow(/runtime 'crun': 'path' runtimes run under the runc shim, which Windows does not have/);
  });
});

describe("generic runtimeoptions.v1.Options", () => {
  test("exact bytes: type_url=1, config_path=2, config_body=3", () => {
    const options = shimOptionsFor("kata", "io.containerd.kata.v2", {
      TypeUrl: "io.containerd.kata.v2.Config",
      ConfigPath: "/etc/kata.toml",
      ConfigBody: "a=1",
    });
    expect(options.typeUrl).toBe("runtimeoptions.v1.Options");
    const expected = Buffer.concat([
      Buffer.from([0x0a, 28]),
      Buffer.from("io.containerd.kata.v2.Config"),
      Buffer.from([0x12, 14]),
      Buffer.from("/etc/kata.toml"),
      Buffer.from([0x1a, 3]),
      Buffer.from("a=1"),
    ]);
    expect(hex(options.value)).toBe(expected.toString("hex"));
    expect(decodeWith(genericOptions, "runtimeoptions.v1.Options", options.value)).toEqual({
      typeUrl: "io.containerd.kata.v2.Config",
      configPath: "/etc/kata.toml",
      configBody: Buffer.from("a=1").toString("base64"),
    });
  });

  test("empty values are omitted, as Go omits proto3 defaults", () => {
    expect(shimOptionsFor("kata", "io.containerd.kata.v2", { ConfigPath: "" }).value).toEqual(
      new Uint8Array(),
    );
  });
});

describe("runc options", () => {
  test("runtimeType io.containerd.runc.v2 takes Go field names and decodes with the generated schema", () => {
    const options = shimOptionsFor("systemd", "io.containerd.runc.v2", {
      BinaryName: "/usr/bin/crun",
      Root: "/run/crun-root",
      SystemdCgroup: true,
      NoPivotRoot: true,
      NoNewKeyring: true,
      ShimCgroup: "/shims",
      IoUid: 1000,
      IoGid: 4294967295,
      CriuPath: "/usr/sbin/criu",
      CriuImagePath: "/img",
      CriuWorkPath: "/work",
    });
    expect(options.typeUrl).toBe("containerd.runc.v1.Options");
    const decoded = fromBinary(OptionsSchema, options.value);
    expect({ ...decoded, $typeName: undefined }).toEqual({
      $typeName: undefined,
      binaryName: "/usr/bin/crun",
      root: "/run/crun-root",
      systemdCgroup: true,
      noPivotRoot: true,
      noNewKeyring: true,
      shimCgroup: "/shims",
      ioUid: 1000,
      ioGid: 4294967295,
      criuPath: "/usr/sbin/criu",
      criuImagePath: "/img",
      criuWorkPath: "/work",
    });
  });

  test("stock runtimes: runc and io.containerd.runc.v2 share runc Options, v1 gets RuncOptions", async () => {
    const registry = new RuntimeRegistry({ stateDir: "/var/run/lcd", platform: "linux" });
    expect(registry.defaultRuntime).toBe("runc");
    for (const name of [undefined, "", "runc", "RUNC", "io.containerd.runc.v2"]) {
      const resolved = await registry.resolve(name);
      expect(resolved.shim).toBe("io.containerd.runc.v2");
      expect(resolved.options?.typeUrl).toBe("containerd.runc.v1.Options");
      const decoded = fromBinary(OptionsSchema, resolved.options?.value ?? new Uint8Array());
      expect([decoded.binaryName, decoded.root]).toEqual(["runc", "/var/run/lcd/runtime-runc"]);
    }
    const v1 = await registry.resolve("io.containerd.runtime.v1.linux");
    expect(v1.shim).toBe("io.containerd.runtime.v1.linux");
    expect(v1.options?.typeUrl).toBe("containerd.linux.runc.RuncOptions");
    const decoded = fromBinary(RuncOptionsSchema, v1.options?.value ?? new Uint8Array());
    expect([decoded.runtime, decoded.runtimeRoot]).toEqual(["runc", "/var/run/lcd/runtime-runc"]);
  });
});

describe("runc v1 RuncOptions (containerd.linux.runc.RuncOptions), from a table", () => {
  test("the table is the generated schema's fields: Go names, numbers, kinds", () => {
    const kinds: Partial<Record<ScalarType, string>> = {
      [ScalarType.STRING]: "string",
      [ScalarType.BOOL]: "bool",
    };
    const fromSchema = RuncOptionsSchema.fields.map((field) => ({
      goName: field.name
        .split("_")
        .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
        .join(""),
      number: field.number,
      kind: { type: field.fieldKind === "scalar" ? kinds[field.scalar] : field.fieldKind },
    }));
    expect(RUNC_V1_OPTIONS.fields).toEqual(fromSchema);
    expect(RUNC_V1_OPTIONS.typeUrl).toBe(RuncOptionsSchema.typeName);
  });

  test("the same bytes as the generated schema's encoder, and read back as its decoder reads them", () => {
    for (const init of [
      { runtime: "runc", runtimeRoot: "/run/r" },
      { runtime: "crun", runtimeRoot: "/run/c", systemdCgroup: true, noPivotRoot: true },
      { runtime: "", runtimeRoot: "" },
    ]) {
      const ours = runcV1Options(init).value;
      expect(hex(ours)).toBe(hex(toBinary(RuncOptionsSchema, create(RuncOptionsSchema, init))));
      const decoded = fromBinary(RuncOptionsSchema, ours);
      const expected: Record<string, unknown> = {};
      if (decoded.runtime) expected.Runtime = decoded.runtime;
      if (decoded.runtimeRoot) expected.RuntimeRoot = decoded.runtimeRoot;
      if (decoded.systemdCgroup) expected.SystemdCgroup = true;
      expect(decodeShimOptions("containerd.linux.runc.RuncOptions", ours)).toEqual(expected);
    }
  });

  test("decoding: a field given twice counts once (the last), unknown fields are skipped", () => {
    const message = create(RuncOptionsSchema, { runtime: "first", criuPath: "/usr/sbin/criu" });
    const twice = new Uint8Array([
      ...toBinary(RuncOptionsSchema, message),
      // field 9 (unknown), varint 1; field 1 again, "last"
      0x48,
      0x01,
      0x0a,
      0x04,
      ...Buffer.from("last"),
    ]);
    expect(fromBinary(RuncOptionsSchema, twice).runtime).toBe("last");
    expect(decodeShimOptions("type.googleapis.com/containerd.linux.runc.RuncOptions", twice)).toEqual({
      Runtime: "last",
      CriuPath: "/usr/sbin/criu",
    });
  });
});
