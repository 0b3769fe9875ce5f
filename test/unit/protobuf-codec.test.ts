// The compiled protobuf codec against protobuf-es itself, over every message type of src/gen (and
// the well-known types they hold): the same bytes from `encode` as toBinary(create(init)), the same
// messages from `decode` as fromBinary, on random values with the edge values of every scalar type,
// and on inputs protobuf-es accepts that it would never write (unknown fields, unpacked lists,
// fields out of order, a field repeated, two messages concatenated).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import {
  create,
  createFileRegistry,
  type DescField,
  type DescFile,
  type DescMessage,
  equals,
  fromBinary,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  type DescriptorProto,
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  FieldOptions_JSType as JSType,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { codecOf, isCompiled } from "../../src/libcontainerd/grpc/codec.js";

const GEN = join(import.meta.dirname, "../../src/gen");

async function allMessages(): Promise<DescMessage[]> {
  const files = readdirSync(GEN, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("_pb.ts"));
  const found = new Map<string, DescMessage>();
  const add = (desc: DescMessage) => {
    if (found.has(desc.typeName)) return;
    found.set(desc.typeName, desc);
    for (const nested of desc.nestedMessages) add(nested);
    for (const field of desc.fields) if (field.message) add(field.message);
  };
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(GEN, file)).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      const desc = value as { kind?: string };
      if (desc.kind === "file") for (const m of (value as DescFile).messages) add(m);
      if (desc.kind === "message") add(value as DescMessage);
    }
  }
  return [...found.values()].sort((a, b) => a.typeName.localeCompare(b.typeName));
}

/**
 * A proto3 file with what containerd's API does not use: every scalar type singular, `optional`,
 * packed and unpacked; enums in every place; maps with every key type; oneofs of each kind; a
 * recursive message; field numbers of two to five tag bytes.
 */
function syntheticMessages(): DescMessage[] {
  const scalars: [string, Type][] = [
    ["double", Type.DOUBLE],
    ["float", Type.FLOAT],
    ["int64", Type.INT64],
    ["uint64", Type.UINT64],
    ["int32", Type.INT32],
    ["fixed64", Type.FIXED64],
    ["fixed32", Type.FIXED32],
    ["bool", Type.BOOL],
    ["string", Type.STRING],
    ["bytes", Type.BYTES],
    ["uint32", Type.UINT32],
    ["sfixed32", Type.SFIXED32],
    ["sfixed64", Type.SFIXED64],
    ["sint32", Type.SINT32],
    ["sint64", Type.SINT64],
  ];
  const keyTypes = scalars.filter(([, t]) => t !== Type.DOUBLE && t !== Type.FLOAT && t !== Type.BYTES);
  const field: DescriptorProto["field"] = [];
  const nestedType: DescriptorProto["nestedType"] = [];
  let no = 1;
  const add = (name: string, type: Type, more: object = {}) =>
    field.push({
      name,
      jsonName: name,
      number: no++,
      label: Label.OPTIONAL,
      type,
      ...more,
    } as DescriptorProto["field"][number]);
  let oneofIndex = 0;
  const oneofDecl: DescriptorProto["oneofDecl"] = [
    { name: "choice" } as DescriptorProto["oneofDecl"][number],
  ];
  for (const [name, type] of scalars) {
    add(`s_${name}`, type);
    add(`r_${name}`, type, { label: Label.REPEATED });
    if (type !== Type.STRING && type !== Type.BYTES)
      add(`u_${name}`, type, { label: Label.REPEATED, options: { packed: false } });
    oneofDecl.push({ name: `_o_${name}` } as DescriptorProto["oneofDecl"][number]);
    add(`o_${name}`, type, { proto3Optional: true, oneofIndex: ++oneofIndex });
    add(`c_${name}`, type, { oneofIndex: 0 });
  }
  add("c_kind", Type.ENUM, { typeName: ".synthetic.Kind", oneofIndex: 0 });
  add("c_all", Type.MESSAGE, { typeName: ".synthetic.All", oneofIndex: 0 });
  add("kind", Type.ENUM, { typeName: ".synthetic.Kind" });
  add("kinds", Type.ENUM, { typeName: ".synthetic.Kind", label: Label.REPEATED });
  oneofDecl.push({ name: "_o_kind" } as DescriptorProto["oneofDecl"][number]);
  add("o_kind", Type.ENUM, { typeName: ".synthetic.Kind", proto3Optional: true, oneofIndex: ++oneofIndex });
  add("child", Type.MESSAGE, { typeName: ".synthetic.All" });
  add("children", Type.MESSAGE, { typeName: ".synthetic.All", label: Label.REPEATED });
  add("any", Type.MESSAGE, { typeName: ".google.protobuf.Any" });
  add("at", Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" });
  const entry = (name: string, key: Type, value: Type, typeName?: string) => {
    nestedType.push({
      name,
      field: [
        { name: "key", jsonName: "key", number: 1, label: Label.OPTIONAL, type: key },
        {
          name: "value",
          jsonName: "value",
          number: 2,
          label: Label.OPTIONAL,
          type: value,
          ...(typeName ? { typeName } : {}),
        },
      ],
      options: { mapEntry: true },
    } as DescriptorProto["nestedType"][number]);
    return `.synthetic.All.${name}`;
  };
  for (const [name, type] of keyTypes) {
    add(`m_${name}`, Type.MESSAGE, {
      label: Label.REPEATED,
      typeName: entry(`MK${name}Entry`, type, Type.STRING),
    });
  }
  for (const [name, type] of scalars)
    add(`mv_${name}`, Type.MESSAGE, {
      label: Label.REPEATED,
      typeName: entry(`MV${name}Entry`, Type.STRING, type),
    });
  add("m_kind", Type.MESSAGE, {
    label: Label.REPEATED,
    typeName: entry("MKindEntry", Type.INT32, Type.ENUM, ".synthetic.Kind"),
  });
  add("m_all", Type.MESSAGE, {
    label: Label.REPEATED,
    typeName: entry("MAllEntry", Type.STRING, Type.MESSAGE, ".synthetic.All"),
  });
  // Tags of 2, 3, 4 and 5 bytes.
  for (const number of [1000, 2047, 262143, 536870911]) {
    field.push({
      name: `far_${number}`,
      jsonName: `far${number}`,
      number,
      label: Label.OPTIONAL,
      type: Type.STRING,
    } as DescriptorProto["field"][number]);
  }
  const file = create(FileDescriptorProtoSchema, {
    name: "synthetic.proto",
    package: "synthetic",
    syntax: "proto3",
    dependency: ["google/protobuf/any.proto", "google/protobuf/timestamp.proto"],
    enumType: [
      {
        name: "Kind",
        value: [
          { name: "ZERO", number: 0 },
          { name: "ONE", number: 1 },
          { name: "NEG", number: -2 },
        ],
      },
    ],
    messageType: [{ name: "All", field, nestedType, oneofDecl }, { name: "Empty" }],
  });
  const registry = createFileRegistry(file, (name) =>
    name === "google/protobuf/any.proto"
      ? file_google_protobuf_any
      : name === "google/protobuf/timestamp.proto"
        ? file_google_protobuf_timestamp
        : undefined,
  );
  return ["synthetic.All", "synthetic.Empty"].map((name) => registry.getMessage(name)!);
}

/** A small seeded generator: a failure names its seed and repeats. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

const STRINGS = [
  "",
  "a",
  "containerd",
  "héllo ✓ 𝄞",
  "\ud800 lone",
  "x".repeat(200),
  "é".repeat(100),
  "\u007f\u0080",
];
const INT32 = [0, 1, -1, 127, 128, 300, 0x7fffffff, -0x80000000, -300];
const UINT32 = [0, 1, 127, 128, 16384, 0xffffffff, 0x80000000];
const INT64 = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -300n];
const UINT64 = [0n, 1n, 2n ** 64n - 1n, 2n ** 53n + 1n, 2n ** 32n];
const DOUBLE = [0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e308, -2.5e-300];
const FLOAT = [0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 3.4028234663852886e38, Math.fround(0.1)];

function scalarValue(type: ScalarType, random: () => number): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  switch (type) {
    case ScalarType.STRING:
      return pick(STRINGS);
    case ScalarType.BOOL:
      return random() < 0.5;
    case ScalarType.BYTES: {
      const n = pick([0, 0, 3, 200]);
      return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
    }
    case ScalarType.DOUBLE:
      return random() < 0.7 ? pick(DOUBLE) : (random() - 0.5) * 1e6;
    case ScalarType.FLOAT:
      return random() < 0.7 ? pick(FLOAT) : Math.fround((random() - 0.5) * 1e3);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return random() < 0.7 ? pick(INT32) : Math.floor((random() - 0.5) * 2 ** 32) | 0;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return random() < 0.7 ? pick(UINT32) : Math.floor(random() * 2 ** 32);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return random() < 0.7
        ? pick(INT64)
        : BigInt.asIntN(64, BigInt(Math.floor((random() - 0.5) * 2 ** 52)) * 4099n);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return random() < 0.7
        ? pick(UINT64)
        : BigInt.asUintN(64, BigInt(Math.floor(random() * 2 ** 52)) * 4099n);
  }
}

function mapKey(type: ScalarType, random: () => number): string {
  const value = scalarValue(type, random);
  return String(value);
}

function enumValue(field: { enum: { values: readonly { number: number }[] } }, random: () => number): number {
  // An open enum also holds numbers it does not name.
  if (random() < 0.2) return 99;
  const values = field.enum.values;
  return values[Math.floor(random() * values.length)]?.number ?? 0;
}

/** A random init object for `desc`: some fields absent, some zero, nested messages to `depth`. */
function randomInit(desc: DescMessage, random: () => number, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  const value = (field: DescField): unknown => {
    switch (field.fieldKind) {
      case "scalar":
        return scalarValue(field.scalar, random);
      case "enum":
        return enumValue(field, random);
      case "message":
        return randomMessage(field.message, random, depth - 1);
      case "list":
        return Array.from({ length: Math.floor(random() * 4) }, () =>
          field.listKind === "message"
            ? randomMessage(field.message, random, depth - 1)
            : field.listKind === "enum"
              ? enumValue(field, random)
              : scalarValue(field.scalar, random),
        );
      case "map": {
        const map: Record<string, unknown> = {};
        for (let i = Math.floor(random() * 4); i > 0; i--)
          map[mapKey(field.mapKey, random)] =
            field.mapKind === "message"
              ? randomMessage(field.message, random, depth - 1)
              : field.mapKind === "enum"
                ? enumValue(field, random)
                : scalarValue(field.scalar, random);
        return map;
      }
    }
  };
  for (const member of desc.members) {
    if (random() < 0.3) continue;
    if (member.kind === "oneof") {
      const field = member.fields[Math.floor(random() * member.fields.length)]!;
      if (field.fieldKind === "message" && depth <= 0) continue;
      init[member.localName] = { case: field.localName, value: value(field) };
      continue;
    }
    if (member.fieldKind === "message" && depth <= 0) continue;
    if ((member.fieldKind === "list" || member.fieldKind === "map") && depth <= 0) continue;
    init[member.localName] = value(member);
  }
  return init;
}

/** A nested message as a plain init object, or as a message (created, with unknown fields at times). */
function randomMessage(desc: DescMessage, random: () => number, depth: number): unknown {
  const init = randomInit(desc, random, Math.max(depth, 0));
  if (random() < 0.5) return init;
  const message = create(desc, init);
  if (random() < 0.3)
    (message as { $unknown?: unknown }).$unknown = [
      { no: 1999, wireType: WireType.Varint, data: new Uint8Array([0x96, 0x01]) },
      { no: 2000, wireType: WireType.LengthDelimited, data: new Uint8Array([2, 0x61, 0x62]) },
    ];
  return message;
}

/** The top-level fields of an encoding, each as its bytes (tag included). */
function records(bytes: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(bytes);
  const out: Uint8Array[] = [];
  while (reader.pos < bytes.length) {
    const start = reader.pos;
    const [no, wireType] = reader.tag();
    reader.skip(wireType, no);
    out.push(bytes.subarray(start, reader.pos));
  }
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function expectSameDecode(desc: DescMessage, bytes: Uint8Array): void {
  const ours = codecOf(desc).decode(bytes);
  const theirs = fromBinary(desc, bytes);
  expect(ours).toStrictEqual(theirs);
  // NaN is unequal to itself in equals(): as equal as protobuf-es is to itself.
  expect(equals(desc, ours, theirs)).toBe(equals(desc, theirs, fromBinary(desc, bytes)));
}

/** "same" when the codec decodes `bytes` as protobuf-es does: an equal message, or an error of the same class. */
function outcome(desc: DescMessage, bytes: Uint8Array): string {
  const run = (decode: () => unknown): { value: unknown } | { error: unknown } => {
    try {
      return { value: decode() };
    } catch (error) {
      return { error };
    }
  };
  const ours = run(() => codecOf(desc).decode(bytes));
  const theirs = run(() => fromBinary(desc, bytes));
  if ("value" in ours && "value" in theirs)
    return isDeepStrictEqual(ours.value, theirs.value) ||
      equals(desc, ours.value as never, theirs.value as never)
      ? "same"
      : "a different message";
  if ("error" in ours && "error" in theirs)
    return ours.error instanceof Error && ours.error.constructor === (theirs.error as Error).constructor
      ? "same"
      : `ours threw ${String(ours.error)}, protobuf-es ${String(theirs.error)}`;
  return "value" in ours
    ? `protobuf-es threw ${String((theirs as { error: unknown }).error)}`
    : `ours threw ${String(ours.error)}`;
}

const messages = [...(await allMessages()), ...syntheticMessages()];
const ROUNDS = 40;

describe("compiled protobuf codec", () => {
  it("finds the message types of src/gen and compiles every one", () => {
    expect(messages.length).toBeGreaterThan(150);
    expect(messages.filter((m) => !isCompiled(m)).map((m) => m.typeName)).toEqual([]);
  });

  it.each(messages.map((m) => [m.typeName, m] as const))(
    "%s: the same bytes and messages as protobuf-es",
    (_, desc) => {
      for (let seed = 1; seed <= ROUNDS; seed++) {
        const random = rng(seed * 7919 + desc.typeName.length);
        const init = randomInit(desc, random, 3);
        const expected = toBinary(desc, create(desc, init));
        const codec = codecOf(desc);
        const ours = codec.encode(init);
        expect(Buffer.from(ours).equals(Buffer.from(expected)), `seed ${seed}`).toBe(true);
        // A created message (with unknown fields of its own) encodes as the init it came from, and more.
        const message = create(desc, init);
        (message as { $unknown?: unknown }).$unknown = [
          { no: 3000, wireType: WireType.Bit32, data: new Uint8Array([1, 2, 3, 4]) },
        ];
        expect(
          Buffer.from(codec.encode(message, 5).subarray(5)).equals(Buffer.from(toBinary(desc, message))),
        ).toBe(true);

        expectSameDecode(desc, expected);
        // Unknown fields of every wire type, kept in order.
        const unknown = new BinaryWriter()
          .tag(4001, WireType.Varint)
          .int64(-5n)
          .tag(4002, WireType.Bit64)
          .fixed64(7n)
          .tag(4003, WireType.LengthDelimited)
          .bytes(new Uint8Array([9, 9]))
          .tag(4004, WireType.Bit32)
          .fixed32(3)
          .tag(4005, WireType.StartGroup)
          .tag(1, WireType.Varint)
          .uint32(1)
          .tag(4005, WireType.EndGroup)
          .finish();
        const fields = records(expected);
        expectSameDecode(desc, concat([unknown, ...fields, unknown]));
        // Fields in any order; a field given twice (the last scalar wins, messages merge, lists append).
        const shuffled = [...fields].sort(() => random() - 0.5);
        expectSameDecode(desc, concat(shuffled));
        const other = toBinary(desc, create(desc, randomInit(desc, random, 2)));
        expectSameDecode(desc, concat([expected, other]));
        expectSameDecode(desc, concat([...fields, ...fields]));
      }
    },
  );

  it.each(
    messages
      .flatMap((m) => m.fields.map((f) => [m, f] as const))
      .filter(([, f]) => f.fieldKind === "list" && f.listKind !== "message" && f.packed)
      .map(([m, f]) => [`${m.typeName}.${f.name}`, m, f] as const),
  )("%s: a packed list sent unpacked, and both mixed", (_, desc, field) => {
    if (field.fieldKind !== "list" || field.listKind === "message") throw new Error("not a scalar list");
    const type = field.listKind === "enum" ? ScalarType.INT32 : field.scalar;
    const random = rng(field.number);
    const values = Array.from({ length: 5 }, () =>
      field.listKind === "enum" ? enumValue(field, random) : scalarValue(type, random),
    );
    const unpacked = new BinaryWriter();
    const write = (w: BinaryWriter, v: unknown) => {
      const method = {
        [ScalarType.DOUBLE]: "double",
        [ScalarType.FLOAT]: "float",
        [ScalarType.INT64]: "int64",
        [ScalarType.UINT64]: "uint64",
        [ScalarType.INT32]: "int32",
        [ScalarType.FIXED64]: "fixed64",
        [ScalarType.FIXED32]: "fixed32",
        [ScalarType.BOOL]: "bool",
        [ScalarType.UINT32]: "uint32",
        [ScalarType.SFIXED32]: "sfixed32",
        [ScalarType.SFIXED64]: "sfixed64",
        [ScalarType.SINT32]: "sint32",
        [ScalarType.SINT64]: "sint64",
      }[type as Exclude<ScalarType, ScalarType.STRING | ScalarType.BYTES>];
      (w[method as "int32"] as (value: unknown) => BinaryWriter).call(w, v);
    };
    const wireType =
      type === ScalarType.DOUBLE || type === ScalarType.FIXED64 || type === ScalarType.SFIXED64
        ? WireType.Bit64
        : type === ScalarType.FLOAT || type === ScalarType.FIXED32 || type === ScalarType.SFIXED32
          ? WireType.Bit32
          : WireType.Varint;
    for (const v of values) write(unpacked.tag(field.number, wireType), v);
    const bytes = unpacked.finish();
    expectSameDecode(desc, bytes);
    const packed = toBinary(desc, create(desc, { [field.localName]: values }));
    expectSameDecode(desc, concat([bytes, packed, bytes]));
  });

  it.each(
    messages
      .flatMap((m) => m.fields.map((f) => [m, f] as const))
      .filter(([, f]) => f.fieldKind === "map")
      .map(([m, f]) => [`${m.typeName}.${f.name}`, m, f] as const),
  )("%s: a map entry without its key or value holds zeros", (_, desc, field) => {
    const empty = new BinaryWriter()
      .tag(field.number, WireType.LengthDelimited)
      .bytes(new Uint8Array(0))
      .finish();
    expectSameDecode(desc, empty);
    const random = rng(field.number);
    const full = toBinary(desc, create(desc, randomInit(desc, random, 2)));
    expectSameDecode(desc, concat([full, empty, full]));
  });

  it("rejects what protobuf-es rejects: values out of range, truncated input", () => {
    const desc = messages.find((m) => m.typeName === "containerd.services.tasks.v1.KillRequest")!;
    for (const signal of [-1, 2 ** 32, 1.5]) {
      expect(() => toBinary(desc, create(desc, { signal }))).toThrow();
      expect(() => codecOf(desc).encode({ signal } as never)).toThrow(/uint32/);
    }
    const bytes = toBinary(desc, create(desc, { containerId: "abc", execId: "def" }));
    for (let cut = 1; cut < bytes.length; cut++) {
      const truncated = bytes.subarray(0, cut);
      let theirs: unknown;
      try {
        theirs = fromBinary(desc, truncated);
      } catch {
        expect(() => codecOf(desc).decode(truncated)).toThrow();
        continue;
      }
      expect(codecOf(desc).decode(truncated)).toStrictEqual(theirs);
    }
  });

  it("names the field a value does not fit, as protobuf-es does", () => {
    const desc = messages.find((m) => m.typeName === "containerd.services.tasks.v1.KillRequest")!;
    expect(() => codecOf(desc).encode({ signal: -1 } as never)).toThrow(
      /KillRequest\.signal.*invalid uint32: -1/,
    );
  });

  it("decodes malformed input as protobuf-es does: the same message, or an error of the same kind", () => {
    const all = messages.find((m) => m.typeName === "synthetic.All")!;
    const no = (name: string) => all.fields.find((f) => f.name === name)!.number;
    const tag = (field: number, wireType: number) => new BinaryWriter().tag(field, wireType).finish();
    const bytes = (...values: number[]) => new Uint8Array(values);
    const nest = (levels: number, inner: Uint8Array) => {
      let out = inner;
      for (let i = 0; i < levels; i++)
        out = concat([tag(no("child"), 2), new BinaryWriter().uint32(out.length).finish(), out]);
      return out;
    };
    const keyOnlyEntry = concat([tag(no("m_all"), 2), bytes(3), tag(1, 2), bytes(1, 0x6b)]);
    let groups: Uint8Array = new Uint8Array();
    for (let i = 0; i < 200; i++) groups = concat([tag(9000, 3), groups, tag(9000, 4)]);
    const cases: [string, Uint8Array][] = [
      ["a varint of 11 bytes", concat([tag(no("s_int32"), 0), bytes(...Array(10).fill(0xff), 1)])],
      ["a truncated varint", concat([tag(no("s_int32"), 0), bytes(0xff, 0xff)])],
      ["a length past the end", concat([tag(no("s_string"), 2), bytes(0x10, 0x61)])],
      ["a length of 2^32-1", concat([tag(no("s_string"), 2), bytes(0xff, 0xff, 0xff, 0xff, 0x0f)])],
      ["invalid UTF-8", concat([tag(no("s_string"), 2), bytes(2, 0xc3, 0x28)])],
      ["a byte order mark", concat([tag(no("s_string"), 2), bytes(4, 0xef, 0xbb, 0xbf, 0x61)])],
      ["a varint field sent length-delimited", concat([tag(no("s_int32"), 2), bytes(1, 5)])],
      ["a string sent as a varint", concat([tag(no("s_string"), 0), bytes(5, 0x61, 0x62, 0x63, 0x64, 0x65)])],
      ["a known field as a group start", concat([tag(no("s_int32"), 3), bytes(5)])],
      ["an unterminated group", concat([tag(9000, 3), tag(1, 0), bytes(1)])],
      ["a group end alone", tag(9000, 4)],
      ["wire type 6", bytes((((9000 << 3) | 6) & 0xff) | 0x80, 9000 >> 4)],
      ["field number 0", bytes(0, 0)],
      ["packed fixed32 of 3 bytes", concat([tag(no("r_fixed32"), 2), bytes(3, 1, 2, 3)])],
      ["packed varints past the end", concat([tag(no("r_int32"), 2), bytes(10, 1)])],
      ["a message longer than its input", concat([tag(no("child"), 2), bytes(50, 8, 1)])],
      [
        "a message shorter than its field",
        concat([tag(no("child"), 2), bytes(1), tag(no("s_string"), 2), bytes(3, 0x61, 0x62, 0x63)]),
      ],
      ["messages 99 deep", nest(99, new Uint8Array())],
      ["messages 100 deep", nest(100, new Uint8Array())],
      ["messages 5000 deep", nest(5000, new Uint8Array())],
      ["a map entry without its message value, 99 deep", nest(98, keyOnlyEntry)],
      ["a map entry without its message value, 100 deep", nest(99, keyOnlyEntry)],
      ["unknown groups 200 deep", groups],
    ];
    for (const [what, input] of cases) expect(outcome(all, input), what).toBe("same");
  });

  it("decodes mutated encodings of every message type as protobuf-es does", () => {
    for (const desc of messages) {
      for (let seed = 1; seed <= 12; seed++) {
        const random = rng(seed * 31 + desc.typeName.length);
        const input = Uint8Array.from(toBinary(desc, create(desc, randomInit(desc, random, 3))));
        if (input.length === 0) continue;
        let mutated: Uint8Array = input;
        const kind = Math.floor(random() * 4);
        for (let i = 0; i < 3; i++) {
          const at = Math.floor(random() * input.length);
          if (kind === 0) input[at] = Math.floor(random() * 256);
          else if (kind === 1)
            input[at] = (input[at]! & 0xf8) | Math.floor(random() * 8); // a wire type
          else if (kind === 2) input[at] = 0xff;
          else mutated = input.subarray(0, at);
        }
        expect(outcome(desc, mutated), `${desc.typeName} seed ${seed}`).toBe("same");
      }
    }
  });

  it("without code generation from strings, leaves every message to protobuf-es", () => {
    const script = [
      `import { codecOf, isCompiled } from ${JSON.stringify(join(import.meta.dirname, "../../src/libcontainerd/grpc/codec.ts"))};`,
      `import { KillRequestSchema as K } from ${JSON.stringify(join(GEN, "github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.ts"))};`,
      `const bytes = codecOf(K).encode({ containerId: "c", signal: 9 });`,
      "console.log(JSON.stringify([isCompiled(K), bytes.toString('hex'), codecOf(K).decode(bytes).signal]));",
    ].join("\n");
    const child = spawnSync(
      process.execPath,
      ["--disallow-code-generation-from-strings", "--import", "tsx", "--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    expect(child.stderr).toBe("");
    const desc = messages.find((m) => m.typeName === "containerd.services.tasks.v1.KillRequest")!;
    const expected = Buffer.from(toBinary(desc, create(desc, { containerId: "c", signal: 9 }))).toString(
      "hex",
    );
    expect(JSON.parse(child.stdout)).toEqual([false, expected, 9]);
  });

  it("leaves to protobuf-es the wrapper, Struct and 64-bit-as-string fields, with the same results", () => {
    const file = create(FileDescriptorProtoSchema, {
      name: "fallback.proto",
      package: "fallback",
      syntax: "proto3",
      dependency: ["google/protobuf/wrappers.proto", "google/protobuf/struct.proto"],
      messageType: [
        {
          name: "W",
          field: [
            {
              name: "w",
              jsonName: "w",
              number: 1,
              label: Label.OPTIONAL,
              type: Type.MESSAGE,
              typeName: ".google.protobuf.Int32Value",
            },
          ],
        },
        {
          name: "S",
          field: [
            {
              name: "s",
              jsonName: "s",
              number: 1,
              label: Label.OPTIONAL,
              type: Type.MESSAGE,
              typeName: ".google.protobuf.Struct",
            },
          ],
        },
        {
          name: "J",
          field: [
            {
              name: "j",
              jsonName: "j",
              number: 1,
              label: Label.OPTIONAL,
              type: Type.INT64,
              options: { jstype: JSType.JS_STRING },
            },
          ],
        },
        {
          name: "Outer",
          field: [
            {
              name: "inner",
              jsonName: "inner",
              number: 1,
              label: Label.REPEATED,
              type: Type.MESSAGE,
              typeName: ".fallback.W",
            },
          ],
        },
      ],
    });
    const registry = createFileRegistry(file, (name) =>
      name.includes("wrappers") ? file_google_protobuf_wrappers : file_google_protobuf_struct,
    );
    const inits: [string, Record<string, unknown>][] = [
      ["fallback.W", { w: 5 }],
      ["fallback.S", { s: { a: 1, b: [true, "x"] } }],
      ["fallback.J", { j: "-7" }],
      ["fallback.Outer", { inner: [{ w: 0 }, { w: 3 }] }],
    ];
    for (const [name, init] of inits) {
      const desc = registry.getMessage(name)!;
      expect(isCompiled(desc), name).toBe(false);
      const bytes = toBinary(desc, create(desc, init));
      expect(Buffer.from(codecOf(desc).encode(init as never)).equals(Buffer.from(bytes)), name).toBe(true);
      expect(codecOf(desc).decode(bytes)).toStrictEqual(fromBinary(desc, bytes));
    }
  });

  it("leaves to protobuf-es what it does not compile (proto2), with the same results", () => {
    const desc = FileDescriptorProtoSchema;
    expect(isCompiled(desc)).toBe(false);
    const message = create(desc, {
      name: "a.proto",
      package: "p",
      dependency: ["b.proto"],
      messageType: [{ name: "M", field: [{ name: "f", number: 1 }] }],
    });
    const bytes = toBinary(desc, message);
    expect(Buffer.from(codecOf(desc).encode(message)).equals(Buffer.from(bytes))).toBe(true);
    expect(codecOf(desc).decode(bytes)).toStrictEqual(fromBinary(desc, bytes));
  });
});
