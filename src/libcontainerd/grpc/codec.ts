import {
  create,
  type DescField,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  protoInt64,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";

/**
 * A protobuf codec compiled for one message type from its descriptor (on first use, with
 * `new Function`), in place of protobuf-es's reflective `create()` + `toBinary()` and `fromBinary()`:
 * the same bytes out, the same messages in, without a zero message built per request, reflection
 * per field, or a chunk per scalar. Requests are encoded straight from what the caller gave
 * (`MessageInitShape`), into one scratch buffer, behind room for the gRPC prefix.
 *
 * Compiled: proto3 messages (implicit presence, `optional`, oneofs, maps, packed and unpacked
 * repeated fields, every scalar type, open enums, unknown fields kept). Anything else (proto2 or
 * editions, whose defaults and presence live on a prototype chain; closed enums; groups; the
 * wrapper and Struct types protobuf-es represents as plain values; 64-bit integers as strings)
 * falls back to protobuf-es, for the whole message: containerd's API is proto3 throughout.
 *
 * `new Function` rather than closures per field: straight-line code per message type measured faster
 * both on first use (compiling included) and warm (bench/codec.ts, BENCHMARKS.md).
 */
export interface MessageCodec<D extends DescMessage> {
  /** The message's bytes, after `headroom` bytes left for the caller (0 when not given). */
  encode(init: MessageInitShape<D> | MessageShape<D>, headroom?: number): Buffer;
  decode(bytes: Uint8Array): MessageShape<D>;
}

const codecs = new WeakMap<DescMessage, MessageCodec<DescMessage>>();

export function codecOf<D extends DescMessage>(schema: D): MessageCodec<D> {
  let codec = codecs.get(schema);
  if (!codec) {
    codec = isCompiled(schema) ? compile(schema) : reflective(schema);
    codecs.set(schema, codec);
  }
  return codec as unknown as MessageCodec<D>;
}

/** protobuf-es itself, for what is not compiled. */
function reflective<D extends DescMessage>(schema: D): MessageCodec<D> {
  return {
    encode(init, headroom = 0) {
      const bytes = toBinary(schema, create(schema, init as MessageInitShape<D>));
      const out = Buffer.allocUnsafe(headroom + bytes.byteLength);
      out.set(bytes, headroom);
      return out;
    },
    decode: (bytes) => fromBinary(schema, bytes),
  };
}

const EDITION_PROTO3 = 999;
const IMPLICIT = 2;

/** Whether `desc` and every message it holds is proto3 as protobuf-es represents it plainly. */
function compilable(desc: DescMessage, seen: Set<DescMessage>): boolean {
  if (seen.has(desc)) return true;
  seen.add(desc);
  if (desc.file.edition !== EDITION_PROTO3) return false;
  for (const field of desc.fields) {
    if ("delimitedEncoding" in field && field.delimitedEncoding) return false;
    if ("longAsString" in field && field.longAsString) return false;
    if (field.fieldKind === "enum" && !field.enum.open) return false;
    if (field.fieldKind === "list" && field.listKind === "enum" && !field.enum.open) return false;
    if (field.fieldKind === "map" && field.mapKind === "enum" && !field.enum.open) return false;
    const message =
      field.fieldKind === "message"
        ? field.message
        : (field.fieldKind === "list" && field.listKind === "message") ||
            (field.fieldKind === "map" && field.mapKind === "message")
          ? field.message
          : undefined;
    if (message) {
      // protobuf-es holds these as plain values in a singular field (a number, a JsonObject).
      if (field.fieldKind === "message" && !field.oneof && isWrapperName(message.typeName)) return false;
      if (message.typeName === "google.protobuf.Struct") return false;
      if (!compilable(message, seen)) return false;
    }
  }
  return true;
}

function isWrapperName(typeName: string): boolean {
  return /^google\.protobuf\.(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value$/.test(typeName);
}

// ---- encoding ----

const SCRATCH_BYTES = 64 * 1024;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const UINT32_MAX = 0xffffffff;
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * (Exported for bench/codec-closures.ts, which builds the same codec from closures to compare.)
 * The one scratch buffer every encode writes into (encoding is synchronous), copied out at the end.
 * A length-delimited value (a message, a packed list) gets one byte for its length, moved up when
 * it turns out longer than 127 bytes.
 */
export class Writer {
  buf = Buffer.allocUnsafe(SCRATCH_BYTES);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** One byte (a tag's, a bool's). */
  byte(b: number): void {
    if (this.pos >= this.buf.length) this.reserve(1);
    this.buf[this.pos++] = b;
  }

  tag2(b0: number, b1: number): void {
    if (this.pos + 2 > this.buf.length) this.reserve(2);
    this.buf[this.pos++] = b0;
    this.buf[this.pos++] = b1;
  }

  /** A uint32 varint of a value already checked. */
  varint(v: number): void {
    if (this.pos + 5 > this.buf.length) this.reserve(5);
    const buf = this.buf;
    while (v > 0x7f) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  uint32(v: unknown): void {
    this.varint(checkUint32(v));
  }

  int32(v: unknown): void {
    const n = checkInt32(v);
    if (n >= 0) this.varint(n);
    else this.varint64(n, -1);
  }

  sint32(v: unknown): void {
    const n = checkInt32(v);
    this.varint(((n << 1) ^ (n >> 31)) >>> 0);
  }

  bool(v: unknown): void {
    this.byte(v ? 1 : 0);
  }

  /** A 64-bit varint from its two halves (two's complement), as protobuf-es's varint64write. */
  varint64(lo: number, hi: number): void {
    if (this.pos + 10 > this.buf.length) this.reserve(10);
    const buf = this.buf;
    for (let i = 0; i < 28; i += 7) {
      const shift = lo >>> i;
      const more = !(shift >>> 7 === 0 && hi === 0);
      buf[this.pos++] = (more ? shift | 0x80 : shift) & 0xff;
      if (!more) return;
    }
    const splitBits = ((lo >>> 28) & 0x0f) | ((hi & 0x07) << 4);
    const hasMoreBits = !(hi >> 3 === 0);
    buf[this.pos++] = (hasMoreBits ? splitBits | 0x80 : splitBits) & 0xff;
    if (!hasMoreBits) return;
    for (let i = 3; i < 31; i += 7) {
      const shift = hi >>> i;
      const more = !(shift >>> 7 === 0);
      buf[this.pos++] = (more ? shift | 0x80 : shift) & 0xff;
      if (!more) return;
    }
    buf[this.pos++] = (hi >>> 31) & 0x01;
  }

  int64(v: unknown): void {
    const tc = protoInt64.enc(v as bigint);
    this.varint64(tc.lo, tc.hi);
  }

  uint64(v: unknown): void {
    const tc = protoInt64.uEnc(v as bigint);
    this.varint64(tc.lo, tc.hi);
  }

  sint64(v: unknown): void {
    const tc = protoInt64.enc(v as bigint);
    const sign = tc.hi >> 31;
    this.varint64((tc.lo << 1) ^ sign, ((tc.hi << 1) | (tc.lo >>> 31)) ^ sign);
  }

  fixed32(v: unknown): void {
    this.reserve(4);
    this.buf.writeUInt32LE(checkUint32(v), this.pos);
    this.pos += 4;
  }

  sfixed32(v: unknown): void {
    this.reserve(4);
    this.buf.writeInt32LE(checkInt32(v), this.pos);
    this.pos += 4;
  }

  fixed64(v: unknown): void {
    const tc = protoInt64.uEnc(v as bigint);
    this.reserve(8);
    this.buf.writeInt32LE(tc.lo, this.pos);
    this.buf.writeInt32LE(tc.hi, this.pos + 4);
    this.pos += 8;
  }

  sfixed64(v: unknown): void {
    const tc = protoInt64.enc(v as bigint);
    this.reserve(8);
    this.buf.writeInt32LE(tc.lo, this.pos);
    this.buf.writeInt32LE(tc.hi, this.pos + 4);
    this.pos += 8;
  }

  float(v: unknown): void {
    const n = checkFloat32(v);
    this.reserve(4);
    this.buf.writeFloatLE(n, this.pos);
    this.pos += 4;
  }

  double(v: unknown): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v as number, this.pos);
    this.pos += 8;
  }

  string(v: string): void {
    const length = v.length;
    // Short ASCII (ids, paths, label keys): written as it is read, its length in one byte.
    if (length < 128) {
      if (this.pos + 1 + length > this.buf.length) this.reserve(1 + length);
      const buf = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < length; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === length) {
        buf[start] = length;
        this.pos = start + 1 + length;
        return;
      }
    }
    // Lone surrogates become U+FFFD here as in TextEncoder.
    const bytes = Buffer.byteLength(v, "utf8");
    this.varint(bytes);
    this.reserve(bytes);
    this.pos += this.buf.write(v, this.pos, bytes, "utf8");
  }

  bytes(v: Uint8Array | readonly number[]): void {
    const bytes = v instanceof Uint8Array ? v : new Uint8Array(v);
    this.varint(bytes.byteLength);
    this.raw(bytes);
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  /** Starts a length-delimited value: one byte kept for its length. */
  fork(): number {
    this.byte(0);
    return this.pos;
  }

  /** Ends the value started at `start` (fork's answer): its length before it. */
  join(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    let extra = 0;
    for (let rest = length >>> 7; rest > 0x7f; rest >>>= 7) extra++;
    extra++;
    this.reserve(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    let at = start - 1;
    let v = length;
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[at] = v;
    this.pos += extra;
  }

  unknown(fields: readonly { no: number; wireType: number; data: Uint8Array }[]): void {
    for (const { no, wireType, data } of fields) {
      this.varint(((no << 3) | wireType) >>> 0);
      this.raw(data);
    }
  }
}

function checkInt32(v: unknown): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number") throw new Error(`invalid int32: ${typeof v}`);
  if (!Number.isInteger(n) || n > INT32_MAX || n < INT32_MIN) throw new Error(`invalid int32: ${n}`);
  return n;
}

function checkUint32(v: unknown): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number") throw new Error(`invalid uint32: ${typeof v}`);
  if (!Number.isInteger(n) || n > UINT32_MAX || n < 0) throw new Error(`invalid uint32: ${n}`);
  return n;
}

function checkFloat32(v: unknown): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number") throw new Error(`invalid float32: ${typeof v}`);
  if (typeof v === "string" && Number.isNaN(n) && v !== "NaN") throw new Error(`invalid float32: ${v}`);
  if (Number.isFinite(n) && (n > FLOAT32_MAX || n < -FLOAT32_MAX)) throw new Error(`invalid float32: ${n}`);
  return n;
}

const writer = new Writer();

// ---- decoding ----

const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const RECURSION_LIMIT = 100;

/** protobuf-es's reader, with a tag as one number and short ASCII strings read in place. */
export class Reader extends BinaryReader {
  depth = 0;

  /** The next tag (field number << 3 | wire type), checked as protobuf-es checks it. */
  tagNumber(): number {
    const start = this.pos;
    const tag = this.uint32();
    const read = this.pos - start;
    if (read > 5 || (read === 5 && (this.buf[this.pos - 1] as number) > 0x0f))
      throw new Error("illegal tag: varint overflows uint32");
    if (tag >>> 3 <= 0 || (tag & 7) > 5)
      throw new Error(`illegal tag: field no ${tag >>> 3} wire type ${tag & 7}`);
    return tag;
  }

  text(strict: boolean): string {
    const length = this.uint32();
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    this.assertBounds();
    const buf = this.buf;
    if (length <= 64) {
      let s = "";
      let i = start;
      for (; i < end; i++) {
        const c = buf[i] as number;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    return (strict ? strictDecoder : decoder).decode(buf.subarray(start, end));
  }

  enter(name: string): void {
    if (++this.depth > RECURSION_LIMIT)
      throw new Error(
        `cannot decode message ${name} from binary: maximum recursion depth of ${RECURSION_LIMIT} reached`,
      );
  }
}

// ---- compiling ----

/** What the generated functions of one schema (and the messages it holds) call. */
interface Compiled {
  encoders: Map<DescMessage, string>;
  decoders: Map<DescMessage, string>;
  sources: string[];
  constants: unknown[];
}

function compile<D extends DescMessage>(schema: D): MessageCodec<D> {
  const unit: Compiled = { encoders: new Map(), decoders: new Map(), sources: [], constants: [] };
  const enc = encoderName(unit, schema);
  const dec = decoderName(unit, schema);
  const body = `"use strict";\n${unit.sources.join("\n")}\nreturn [${enc}, ${dec}];`;
  const [encode, decode] = new Function("K", "protoInt64", body)(unit.constants, protoInt64) as [
    (m: unknown, w: Writer) => void,
    (r: Reader, end: number, m: unknown) => MessageShape<D>,
  ];
  return {
    encode(init, headroom = 0) {
      const w = writer;
      w.pos = 0;
      w.reserve(headroom);
      w.pos = headroom;
      try {
        encode(init ?? {}, w);
      } catch (err) {
        // A value the field cannot hold: protobuf-es's error names the field; ours only the value.
        reflective(schema).encode(init);
        throw err;
      }
      const out = Buffer.allocUnsafe(w.pos);
      w.buf.copy(out, headroom, headroom, w.pos);
      // A large message (a spec, a content write) does not keep its scratch space for good.
      if (w.buf.length > SCRATCH_BYTES) w.buf = Buffer.allocUnsafe(SCRATCH_BYTES);
      return out;
    },
    decode(bytes) {
      const r = new Reader(bytes);
      return decode(r, bytes.byteLength, undefined);
    },
  };
}

function encoderName(unit: Compiled, desc: DescMessage): string {
  let name = unit.encoders.get(desc);
  if (name === undefined) {
    name = `e${unit.encoders.size}`;
    unit.encoders.set(desc, name);
    unit.sources.push(encoderSource(unit, desc, name));
  }
  return name;
}

function decoderName(unit: Compiled, desc: DescMessage): string {
  let name = unit.decoders.get(desc);
  if (name === undefined) {
    name = `d${unit.decoders.size}`;
    unit.decoders.set(desc, name);
    unit.sources.push(decoderSource(unit, desc, name));
  }
  return name;
}

const LENGTH_DELIMITED = 2;

function wireTypeOf(type: ScalarType): number {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return LENGTH_DELIMITED;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return 5;
    default:
      return 0;
  }
}

/** The statement writing a tag, its varint bytes worked out now. */
function tagWrite(no: number, wireType: number): string {
  let v = ((no << 3) | wireType) >>> 0;
  const bytes: number[] = [];
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  if (bytes.length === 1) return `w.byte(${bytes[0]});`;
  if (bytes.length === 2) return `w.tag2(${bytes[0]}, ${bytes[1]});`;
  return `w.varint(${((no << 3) | wireType) >>> 0});`;
}

const WRITE: Record<ScalarType, string> = {
  [ScalarType.DOUBLE]: "double",
  [ScalarType.FLOAT]: "float",
  [ScalarType.INT64]: "int64",
  [ScalarType.UINT64]: "uint64",
  [ScalarType.INT32]: "int32",
  [ScalarType.FIXED64]: "fixed64",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.BOOL]: "bool",
  [ScalarType.STRING]: "string",
  [ScalarType.BYTES]: "bytes",
  [ScalarType.UINT32]: "uint32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.SFIXED64]: "sfixed64",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.SINT64]: "sint64",
};

/** The condition under which a singular implicit-presence value `v` is written (not its zero). */
function nonZero(type: ScalarType, v: string): string {
  switch (type) {
    case ScalarType.BOOL:
      return `${v} !== false`;
    case ScalarType.STRING:
      return `${v} !== ""`;
    case ScalarType.BYTES:
      return `${v}.length !== 0`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // -0 is written, +0 is not (Object.is).
      return `(${v} !== 0 || 1 / ${v} < 0)`;
    default:
      // 0, 0n and "0" alike.
      return `${v} != 0`;
  }
}

/** The statements writing scalar `v` of `type` as field `no` (always: presence decided already). */
function scalarWrite(no: number, type: ScalarType, v: string): string {
  return `${tagWrite(no, wireTypeOf(type))} w.${WRITE[type]}(${v});`;
}

function prop(name: string): string {
  return `[${JSON.stringify(name)}]`;
}

function encoderSource(unit: Compiled, desc: DescMessage, name: string): string {
  const lines: string[] = [`function ${name}(m, w) {`, "  let v, s;"];
  const sorted = [...desc.fields].sort((a, b) => a.number - b.number);
  for (const field of sorted) lines.push(`  ${fieldWrite(unit, field)}`);
  lines.push(
    `  if (m.$typeName === ${JSON.stringify(desc.typeName)} && m.$unknown !== undefined) w.unknown(m.$unknown);`,
    "}",
  );
  return lines.join("\n");
}

function messageWrite(unit: Compiled, no: number, message: DescMessage, v: string): string {
  return `${tagWrite(no, LENGTH_DELIMITED)} s = w.fork(); ${encoderName(unit, message)}(${v}, w); w.join(s);`;
}

function fieldWrite(unit: Compiled, field: DescField): string {
  const no = field.number;
  if (field.oneof) {
    // A oneof's chosen field is written whatever its value (a zero too).
    const read = `v = m${prop(field.oneof.localName)}; if (v != null && v.case === ${JSON.stringify(field.localName)}) { v = v.value; `;
    switch (field.fieldKind) {
      case "scalar":
        return `${read}if (v == null) v = K[${constant(unit, zeroOf(field.scalar))}]; ${scalarWrite(no, field.scalar, "v")} }`;
      case "enum":
        return `${read}if (v == null) v = ${field.enum.values[0]?.number ?? 0}; ${scalarWrite(no, ScalarType.INT32, "v")} }`;
      case "message":
        return `${read}if (v == null) v = {}; ${messageWrite(unit, no, field.message, "v")} }`;
      default:
        throw new Error("a oneof field of an unexpected kind");
    }
  }
  const read = `v = m${prop(field.localName)};`;
  switch (field.fieldKind) {
    case "scalar": {
      if (field.presence !== IMPLICIT)
        return `${read} if (v != null) { ${scalarWrite(no, field.scalar, "v")} }`;
      const bytes = field.scalar === ScalarType.BYTES ? "if (Array.isArray(v)) v = new Uint8Array(v); " : "";
      return `${read} if (v != null) { ${bytes}if (${nonZero(field.scalar, "v")}) { ${scalarWrite(no, field.scalar, "v")} } }`;
    }
    case "enum": {
      if (field.presence !== IMPLICIT)
        return `${read} if (v != null) { ${scalarWrite(no, ScalarType.INT32, "v")} }`;
      const zero = field.enum.values[0]?.number ?? 0;
      return `${read} if (v != null && v !== ${zero}) { ${scalarWrite(no, ScalarType.INT32, "v")} }`;
    }
    case "message":
      return `${read} if (v != null) { ${messageWrite(unit, no, field.message, "v")} }`;
    case "list": {
      const open = `${read} if (v != null && v.length > 0) {`;
      if (field.listKind === "message")
        return `${open} for (const x of v) { ${messageWrite(unit, no, field.message, "x")} } }`;
      const type = field.listKind === "enum" ? ScalarType.INT32 : field.scalar;
      if (field.packed)
        return `${open} ${tagWrite(no, LENGTH_DELIMITED)} s = w.fork(); for (const x of v) w.${WRITE[type]}(x); w.join(s); }`;
      return `${open} for (const x of v) { ${scalarWrite(no, type, "x")} } }`;
    }
    case "map": {
      const key = mapKeyValue(field.mapKey, "k");
      let value: string;
      switch (field.mapKind) {
        case "scalar":
          value = scalarWrite(2, field.scalar, "x");
          break;
        case "enum":
          value = scalarWrite(2, ScalarType.INT32, "x");
          break;
        case "message":
          value = messageWrite(unit, 2, field.message, "x");
          break;
      }
      return (
        `${read} if (v != null) { for (const k of Object.keys(v)) { const x = v[k]; ` +
        `${tagWrite(no, LENGTH_DELIMITED)} const e = w.fork(); ${scalarWrite(1, field.mapKey, key)} ${value} w.join(e); } }`
      );
    }
  }
}

/** A map key (an object key, a string) as protobuf-es hands it to its writer. */
function mapKeyValue(type: ScalarType, k: string): string {
  switch (type) {
    case ScalarType.STRING:
      return k;
    case ScalarType.BOOL:
      return `(${k} === "true" ? true : ${k} === "false" ? false : ${k})`;
    case ScalarType.INT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT32:
    case ScalarType.SFIXED32:
    case ScalarType.SINT32:
      return `(Number.isFinite(Number.parseInt(${k})) ? Number.parseInt(${k}) : ${k})`;
    default:
      // 64-bit keys: protobuf-es parses the string, and its writer takes the string the same.
      return k;
  }
}

function zeroOf(type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SFIXED64:
    case ScalarType.FIXED64:
    case ScalarType.SINT64:
      return protoInt64.zero;
    default:
      return 0;
  }
}

function constant(unit: Compiled, value: unknown): number {
  unit.constants.push(value);
  return unit.constants.length - 1;
}

const READ: Record<ScalarType, string> = {
  [ScalarType.DOUBLE]: "r.double()",
  [ScalarType.FLOAT]: "r.float()",
  [ScalarType.INT64]: "r.int64()",
  [ScalarType.UINT64]: "r.uint64()",
  [ScalarType.INT32]: "r.int32()",
  [ScalarType.FIXED64]: "r.fixed64()",
  [ScalarType.FIXED32]: "r.fixed32()",
  [ScalarType.BOOL]: "r.bool()",
  [ScalarType.STRING]: "r.text(false)",
  [ScalarType.BYTES]: "r.bytes()",
  [ScalarType.UINT32]: "r.uint32()",
  [ScalarType.SFIXED32]: "r.sfixed32()",
  [ScalarType.SFIXED64]: "r.sfixed64()",
  [ScalarType.SINT32]: "r.sint32()",
  [ScalarType.SINT64]: "r.sint64()",
};

function scalarRead(type: ScalarType, strict: boolean): string {
  return type === ScalarType.STRING ? `r.text(${strict})` : READ[type];
}

/** The expression of a zero scalar, fresh (a new empty Uint8Array per message, as protobuf-es). */
function zeroSource(unit: Compiled, type: ScalarType): string {
  if (type === ScalarType.BYTES) return "new Uint8Array(0)";
  const zero = zeroOf(type);
  return typeof zero === "bigint" ? `K[${constant(unit, zero)}]` : JSON.stringify(zero);
}

/** The zero message's literal, its properties in protobuf-es's order (its hidden class, too). */
function zeroLiteral(unit: Compiled, desc: DescMessage): string {
  const parts = [`$typeName: ${JSON.stringify(desc.typeName)}`];
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      parts.push(`${prop(member.localName)}: { case: undefined }`);
      continue;
    }
    if (member.presence !== IMPLICIT) continue;
    switch (member.fieldKind) {
      case "list":
        parts.push(`${prop(member.localName)}: []`);
        break;
      case "map":
        parts.push(`${prop(member.localName)}: {}`);
        break;
      case "scalar":
        parts.push(`${prop(member.localName)}: ${zeroSource(unit, member.scalar)}`);
        break;
      case "enum":
        parts.push(`${prop(member.localName)}: ${member.enum.values[0]?.number ?? 0}`);
        break;
      case "message":
        break;
    }
  }
  return `{ ${parts.join(", ")} }`;
}

function decoderSource(unit: Compiled, desc: DescMessage, name: string): string {
  const lines = [
    `function ${name}(r, end, m) {`,
    `  if (m === undefined) m = ${zeroLiteral(unit, desc)};`,
    `  r.enter(${JSON.stringify(desc.typeName)});`,
    "  let u, t, v, e;",
    "  while (r.pos < end) {",
    "    t = r.tagNumber();",
    "    switch (t >>> 3) {",
  ];
  for (const field of desc.fields) lines.push(`      case ${field.number}: ${fieldRead(unit, field)} break;`);
  lines.push(
    "      default:",
    "        if (u === undefined) u = m.$unknown ?? [];",
    `        u.push({ no: t >>> 3, wireType: t & 7, data: r.skip(t & 7, t >>> 3, ${RECURSION_LIMIT} - r.depth) });`,
    "    }",
    "  }",
    "  if (u !== undefined && u.length > 0) m.$unknown = u;",
    "  r.depth--;",
    "  return m;",
    "}",
  );
  return lines.join("\n");
}

function messageRead(unit: Compiled, message: DescMessage, into: string): string {
  return `${decoderName(unit, message)}(r, (v = r.uint32(), r.pos + v), ${into})`;
}

function fieldRead(unit: Compiled, field: DescField): string {
  const strict = field.fieldKind !== "message" && field.utf8Validation;
  if (field.oneof) {
    const oneof = `m${prop(field.oneof.localName)}`;
    const local = JSON.stringify(field.localName);
    switch (field.fieldKind) {
      case "scalar":
        return `${oneof} = { case: ${local}, value: ${scalarRead(field.scalar, strict)} };`;
      case "enum":
        return `${oneof} = { case: ${local}, value: r.int32() };`;
      case "message":
        // The same field again merges into the message it holds.
        return `e = ${oneof}.case === ${local} ? ${oneof}.value : undefined; ${oneof} = { case: ${local}, value: ${messageRead(unit, field.message, "e")} };`;
      default:
        throw new Error("a oneof field of an unexpected kind");
    }
  }
  const target = `m${prop(field.localName)}`;
  switch (field.fieldKind) {
    case "scalar":
      return `${target} = ${scalarRead(field.scalar, strict)};`;
    case "enum":
      return `${target} = r.int32();`;
    case "message":
      return `${target} = ${messageRead(unit, field.message, target)};`;
    case "list": {
      if (field.listKind === "message")
        return `${target}.push(${messageRead(unit, field.message, "undefined")});`;
      const type = field.listKind === "enum" ? ScalarType.INT32 : field.scalar;
      const read = scalarRead(type, strict);
      if (type === ScalarType.STRING || type === ScalarType.BYTES) return `${target}.push(${read});`;
      // Packed or not, whatever the field says: protobuf-es reads both.
      return `if ((t & 7) === 2) { e = r.uint32() + r.pos; while (r.pos < e) ${target}.push(${read}); } else ${target}.push(${read});`;
    }
    case "map": {
      const key = scalarRead(field.mapKey, strict);
      let value: string;
      let zero: string;
      switch (field.mapKind) {
        case "scalar":
          value = scalarRead(field.scalar, strict);
          zero = zeroSource(unit, field.scalar);
          break;
        case "enum":
          value = "r.int32()";
          zero = String(field.enum.values[0]?.number ?? 0);
          break;
        case "message":
          value = messageRead(unit, field.message, "undefined");
          // The literal, not the decoder on nothing: that would count a level of nesting.
          zero = zeroLiteral(unit, field.message);
          break;
      }
      return (
        `{ e = r.uint32(); e += r.pos; let k, x; while (r.pos < e) { const kt = r.tagNumber(); ` +
        `if (kt >>> 3 === 1) k = ${key}; else if (kt >>> 3 === 2) x = ${value}; } ` +
        `if (k === undefined) k = ${zeroSource(unit, field.mapKey)}; if (x === undefined) x = ${zero}; ` +
        `${target}[typeof k === "string" || typeof k === "number" ? k : String(k)] = x; }`
      );
    }
  }
}

/** Whether `schema` is encoded and decoded by compiled code (not protobuf-es's reflection). */
export function isCompiled(schema: DescMessage): boolean {
  return codeGeneration() && compilable(schema, new Set());
}

let codeGenerationAllowed: boolean | undefined;

/**
 * Whether this process may compile code from strings: `node --disallow-code-generation-from-strings`
 * (or an embedder's policy) forbids `new Function`, and then every message goes through protobuf-es.
 */
function codeGeneration(): boolean {
  if (codeGenerationAllowed === undefined) {
    try {
      new Function("");
      codeGenerationAllowed = true;
    } catch {
      codeGenerationAllowed = false;
    }
  }
  return codeGenerationAllowed;
}
