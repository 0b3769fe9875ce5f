import { create, type DescField, fromBinary, ScalarType, toBinary } from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { OptionsSchema } from "../gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { RUNC_V2_SHIM, RUNHCS_V1_SHIM } from "./names.js";
import {
  convertOptions,
  decodeOptionFields,
  encodeOptionFields,
  type OptionField,
  type OptionKind,
  type OptionMessage,
  type OptionValue,
} from "./option-fields.js";
import { RUNHCS_OPTIONS } from "./runhcs-options.js";
import type { ShimOptions } from "./types.js";

export const RUNC_V2_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";
export const RUNC_V1_OPTIONS_TYPE_URL = "containerd.linux.runc.RuncOptions";

/**
 * `runtimeoptions.v1.Options`, what containerd hands any shim other than runc and runhcs. Field 3
 * (`config_body`) came after containerd 1.6, whose shims skip it as an unknown field.
 */
export const GENERIC_RUNTIME_OPTIONS: OptionMessage = {
  typeUrl: "runtimeoptions.v1.Options",
  fields: [
    { goName: "TypeUrl", number: 1, kind: { type: "string" } },
    { goName: "ConfigPath", number: 2, kind: { type: "string" } },
    { goName: "ConfigBody", number: 3, kind: { type: "bytes" } },
  ],
};

/** Go's name for a proto field, as protoc-gen-go(go) derives it: `binary_name` → `BinaryName`. */
function goFieldName(protoName: string): string {
  return protoName
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

function kindOf(field: DescField): OptionKind | undefined {
  if (field.fieldKind !== "scalar") return undefined;
  switch (field.scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "bool" };
    case ScalarType.UINT32:
      return { type: "uint32" };
    case ScalarType.INT32:
      return { type: "int32" };
    default:
      return undefined;
  }
}

const runcFieldsByGoName = new Map<OptionField, DescField>();
for (const field of OptionsSchema.fields) {
  const kind = kindOf(field);
  if (kind) runcFieldsByGoName.set({ goName: goFieldName(field.name), number: field.number, kind }, field);
}

/** The runc shim's options as a table derived from the generated schema, so the two cannot drift. */
export const RUNC_V2_OPTIONS: OptionMessage = {
  typeUrl: RUNC_V2_OPTIONS_TYPE_URL,
  fields: [...runcFieldsByGoName.keys()],
};

/** What dockerd derives for runc-compatible runtimes from its own configuration (daemon/runtime_unix.go). */
export interface RuncDerived {
  /** The cgroup driver is systemd (`native.cgroupdriver=systemd`). */
  systemdCgroup?: boolean;
  /** `DOCKER_RAMDISK` is set: no pivot_root (a ramdisk root cannot be pivoted away from). */
  noPivotRoot?: boolean;
}

export function runcV2Options(init: { binaryName: string; root: string } & RuncDerived): ShimOptions {
  return { typeUrl: RUNC_V2_OPTIONS_TYPE_URL, value: toBinary(OptionsSchema, create(OptionsSchema, init)) };
}

/**
 * `containerd.linux.runc.RuncOptions`, the v1 shim's (runtime/linux/runctypes/runc.proto), as a
 * table rather than the generated schema: that file's four messages cost every start ~1.5 ms of
 * descriptor building, for a runtime few use. test/unit/runtime-options.test.ts holds the table
 * to the generated schema.
 */
export const RUNC_V1_OPTIONS: OptionMessage = {
  typeUrl: RUNC_V1_OPTIONS_TYPE_URL,
  fields: [
    { goName: "Runtime", number: 1, kind: { type: "string" } },
    { goName: "RuntimeRoot", number: 2, kind: { type: "string" } },
    { goName: "CriuPath", number: 3, kind: { type: "string" } },
    { goName: "SystemdCgroup", number: 4, kind: { type: "bool" } },
  ],
};

export function runcV1Options(init: { runtime: string; runtimeRoot: string } & RuncDerived): ShimOptions {
  const given: Record<string, OptionValue> = {
    Runtime: init.runtime,
    RuntimeRoot: init.runtimeRoot,
    SystemdCgroup: init.systemdCgroup ?? false,
  };
  const values = new Map<OptionField, OptionValue>();
  for (const field of RUNC_V1_OPTIONS.fields) {
    const value = given[field.goName];
    if (value !== undefined) values.set(field, value);
  }
  return { typeUrl: RUNC_V1_OPTIONS_TYPE_URL, value: encodeOptionFields(values) };
}

function runcV2OptionsFrom(runtime: string, options: Readonly<Record<string, unknown>>): ShimOptions {
  const message = create(OptionsSchema);
  const fields = reflect(OptionsSchema, message);
  for (const [field, value] of convertOptions(runtime, RUNC_V2_SHIM, RUNC_V2_OPTIONS, options)) {
    const descField = runcFieldsByGoName.get(field);
    if (descField) fields.set(descField, value);
  }
  return { typeUrl: RUNC_V2_OPTIONS_TYPE_URL, value: toBinary(OptionsSchema, message) };
}

/**
 * Typed shim options from daemon.json's `runtimeType` + `options` (moby's shimopts.Generate): runc
 * and runhcs get their own messages, every other shim the generic runtimeoptions message.
 */
export function shimOptionsFor(
  runtime: string,
  runtimeType: string,
  options: Readonly<Record<string, unknown>>,
): ShimOptions {
  if (runtimeType === RUNC_V2_SHIM) return runcV2OptionsFrom(runtime, options);
  const message = runtimeType === RUNHCS_V1_SHIM ? RUNHCS_OPTIONS : GENERIC_RUNTIME_OPTIONS;
  return {
    typeUrl: message.typeUrl,
    value: encodeOptionFields(convertOptions(runtime, runtimeType, message, options)),
  };
}

/** The options the Windows default runtime gets: runhcs defaults, said explicitly by type. */
export function defaultRunhcsOptions(): ShimOptions {
  return { typeUrl: RUNHCS_OPTIONS.typeUrl, value: encodeOptionFields(new Map()) };
}

/**
 * The runc shims' options, read back into daemon.json's terms (Go field names, only what is set):
 * what `ContainerInfo.runtime.options` shows. Other shims' options are opaque here: undefined.
 */
export function decodeShimOptions(typeUrl: string, value: Uint8Array): Record<string, unknown> | undefined {
  const name = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  if (name === RUNC_V1_OPTIONS_TYPE_URL) return decodeOptionFields(RUNC_V1_OPTIONS, value);
  if (name !== RUNC_V2_OPTIONS_TYPE_URL) return undefined;
  const schema = OptionsSchema;
  const message = reflect(schema, fromBinary(schema, value));
  const options: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (field.fieldKind === "scalar" && message.isSet(field))
      options[goFieldName(field.name)] = message.get(field);
  }
  return options;
}
