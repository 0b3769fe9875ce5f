import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { InvalidArgumentError } from "../errors.js";
import { describeJsonType, isPlainObject } from "./json-shape.js";

/** How a daemon.json option value maps onto a protobuf field. */
export type OptionKind =
  | { type: "string" }
  | { type: "bool" }
  | { type: "int32" }
  | { type: "uint32" }
  /** A `bytes` field given as a string (e.g. an inline TOML blob), sent as its UTF-8. */
  | { type: "bytes" }
  /** Accepts the value's name (`"HYPERVISOR"`) or its number. */
  | { type: "enum"; values: Readonly<Record<string, number>> }
  | { type: "string-map" };

export interface OptionField {
  /** The key daemon.json uses: the Go struct field name, as moby's TOML round trip expects. */
  goName: string;
  number: number;
  kind: OptionKind;
}

export type OptionValue = string | boolean | number | Uint8Array | ReadonlyMap<string, string>;

export interface OptionMessage {
  /** The bare type URL containerd's shims look up (no `type.googleapis.com/` prefix). */
  typeUrl: string;
  fields: readonly OptionField[];
}

function convertValue(runtime: string, field: OptionField, value: unknown): OptionValue {
  const wrongType = (expected: string) =>
    new InvalidArgumentError(
      `runtime '${runtime}': option '${field.goName}' must be ${expected}, got ${describeJsonType(value)}`,
    );
  const { kind } = field;
  switch (kind.type) {
    case "string":
      if (typeof value !== "string") throw wrongType("a string");
      return value;
    case "bytes":
      if (typeof value !== "string") throw wrongType("a string");
      return new TextEncoder().encode(value);
    case "bool":
      if (typeof value !== "boolean") throw wrongType("a boolean");
      return value;
    case "int32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
        throw wrongType("a 32-bit integer");
      }
      return value;
    case "uint32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
        throw wrongType("an unsigned 32-bit integer");
      }
      return value;
    case "enum": {
      const names = Object.keys(kind.values);
      if (typeof value === "string" && Object.hasOwn(kind.values, value)) return kind.values[value] ?? 0;
      if (typeof value === "number" && Object.values(kind.values).includes(value)) return value;
      throw wrongType(`one of ${names.join(", ")} (or its number)`);
    }
    case "string-map": {
      if (!isPlainObject(value)) throw wrongType("an object of strings");
      const entries = new Map<string, string>();
      for (const [key, entry] of Object.entries(value)) {
        if (typeof entry !== "string") throw wrongType("an object of strings");
        entries.set(key, entry);
      }
      return entries;
    }
  }
}

/**
 * Checks daemon.json `options` against a message's fields. Unknown keys are an error (moby's TOML
 * round trip drops them silently, which hides typos like `SystemdCgroups`).
 */
export function convertOptions(
  runtime: string,
  runtimeType: string,
  message: OptionMessage,
  options: Readonly<Record<string, unknown>>,
): Map<OptionField, OptionValue> {
  const byGoName = new Map(message.fields.map((field) => [field.goName, field]));
  const converted = new Map<OptionField, OptionValue>();
  for (const [key, value] of Object.entries(options)) {
    const field = byGoName.get(key);
    if (!field) {
      throw new InvalidArgumentError(
        `runtime '${runtime}': unknown option '${key}' for runtimeType '${runtimeType}' ` +
          `(${message.typeUrl} accepts: ${[...byGoName.keys()].join(", ")})`,
      );
    }
    converted.set(field, convertValue(runtime, field, value));
  }
  return converted;
}

/**
 * Encodes converted options in field-number order, omitting proto3 defaults, which is what Go's
 * marshaller emits, so the bytes compare equal to what dockerd would send.
 */
export function encodeOptionFields(values: ReadonlyMap<OptionField, OptionValue>): Uint8Array {
  const writer = new BinaryWriter();
  const ordered = [...values].sort(([a], [b]) => a.number - b.number);
  for (const [field, value] of ordered) {
    if (typeof value === "string") {
      if (value !== "") writer.tag(field.number, WireType.LengthDelimited).string(value);
    } else if (typeof value === "boolean") {
      if (value) writer.tag(field.number, WireType.Varint).bool(true);
    } else if (typeof value === "number") {
      if (value === 0) continue;
      writer.tag(field.number, WireType.Varint);
      if (field.kind.type === "uint32") writer.uint32(value);
      else writer.int32(value);
    } else if (value instanceof Uint8Array) {
      if (value.length > 0) writer.tag(field.number, WireType.LengthDelimited).bytes(value);
    } else {
      for (const [key, entry] of [...value].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        writer
          .tag(field.number, WireType.LengthDelimited)
          .fork()
          .tag(1, WireType.LengthDelimited)
          .string(key)
          .tag(2, WireType.LengthDelimited)
          .string(entry)
          .join();
      }
    }
  }
  return writer.finish();
}

/**
 * Reads back what encodeOptionFields writes, for the scalar kinds: the fields that are set (not
 * their proto3 default), by Go name, the last occurrence of a field winning, as protobuf's own
 * decoders do. Fields the message does not list are skipped.
 */
export function decodeOptionFields(message: OptionMessage, bytes: Uint8Array): Record<string, OptionValue> {
  const byNumber = new Map(message.fields.map((field) => [field.number, field]));
  const reader = new BinaryReader(bytes);
  const decoded: Record<string, OptionValue> = {};
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = byNumber.get(number);
    const value = field ? readScalar(reader, field.kind) : undefined;
    if (value === undefined) reader.skip(wireType);
    else if (field && value !== "" && value !== false && value !== 0) decoded[field.goName] = value;
    else if (field) delete decoded[field.goName];
  }
  return decoded;
}

function readScalar(reader: BinaryReader, kind: OptionKind): OptionValue | undefined {
  switch (kind.type) {
    case "string":
      return reader.string();
    case "bool":
      return reader.bool();
    case "int32":
    case "enum":
      return reader.int32();
    case "uint32":
      return reader.uint32();
    case "bytes":
      return reader.bytes();
    case "string-map":
      return undefined;
  }
}
