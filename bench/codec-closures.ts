// The codec of src/libcontainerd/grpc/codec.ts built from closures instead of `new Function`, for
// bench/codec.ts to compare the two ways (cold and warm). Only the field kinds one lifecycle's
// messages hold (singular scalars, messages, repeated messages and strings, maps to strings or
// messages); the same Writer and Reader, so what differs is only how the per-field code is made.
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { Reader, Writer } from "../src/libcontainerd/grpc/codec.js";

type Message = Record<string, unknown> & { $typeName?: string; $unknown?: unknown };
type Encode = (m: Message, w: Writer) => void;
type Decode = (r: Reader, end: number, into: Message | undefined) => Message;

const writer = new Writer();

export function closureCodec(desc: DescMessage): {
  encode(init: object, headroom: number): Buffer;
  decode(bytes: Uint8Array): unknown;
} {
  const encode = encoderOf(desc, new Map());
  const decode = decoderOf(desc, new Map());
  return {
    encode(init, headroom) {
      const w = writer;
      w.pos = 0;
      w.reserve(headroom);
      w.pos = headroom;
      encode(init as Message, w);
      const out = Buffer.allocUnsafe(w.pos);
      w.buf.copy(out, headroom, headroom, w.pos);
      return out;
    },
    decode: (bytes) => decode(new Reader(bytes), bytes.byteLength, undefined),
  };
}

function tagOf(no: number, wireType: number): (w: Writer) => void {
  const tag = ((no << 3) | wireType) >>> 0;
  return tag < 0x80 ? (w) => w.byte(tag) : (w) => w.varint(tag);
}

function scalarWriter(type: ScalarType): (w: Writer, v: unknown) => void {
  switch (type) {
    case ScalarType.STRING:
      return (w, v) => w.string(v as string);
    case ScalarType.UINT32:
      return (w, v) => w.uint32(v);
    case ScalarType.INT32:
      return (w, v) => w.int32(v);
    case ScalarType.BOOL:
      return (w, v) => w.bool(v);
    case ScalarType.BYTES:
      return (w, v) => w.bytes(v as Uint8Array);
    case ScalarType.INT64:
      return (w, v) => w.int64(v);
    case ScalarType.UINT64:
      return (w, v) => w.uint64(v);
    default:
      throw new Error(`not in the closure variant: scalar ${type}`);
  }
}

function wireTypeOf(type: ScalarType): number {
  return type === ScalarType.STRING || type === ScalarType.BYTES ? 2 : 0;
}

function isZero(type: ScalarType, v: unknown): boolean {
  switch (type) {
    case ScalarType.STRING:
      return v === "";
    case ScalarType.BOOL:
      return v === false;
    case ScalarType.BYTES:
      return (v as Uint8Array).length === 0;
    default:
      return v === 0 || v === 0n;
  }
}

function encoderOf(desc: DescMessage, done: Map<DescMessage, Encode>): Encode {
  const known = done.get(desc);
  if (known) return known;
  const parts: Encode[] = [];
  const self: Encode = (m, w) => {
    for (let i = 0; i < parts.length; i++) parts[i]!(m, w);
  };
  done.set(desc, self);
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number))
    parts.push(fieldEncoder(field, done));
  return self;
}

function fieldEncoder(field: DescField, done: Map<DescMessage, Encode>): Encode {
  const name = field.localName;
  if (field.oneof) throw new Error("not in the closure variant: oneof");
  switch (field.fieldKind) {
    case "scalar": {
      const tag = tagOf(field.number, wireTypeOf(field.scalar));
      const write = scalarWriter(field.scalar);
      const type = field.scalar;
      return (m, w) => {
        const v = m[name];
        if (v != null && !isZero(type, v)) {
          tag(w);
          write(w, v);
        }
      };
    }
    case "message": {
      const tag = tagOf(field.number, 2);
      const message = field.message;
      let encode: Encode | undefined;
      return (m, w) => {
        const v = m[name];
        if (v == null) return;
        tag(w);
        const s = w.fork();
        encode ??= encoderOf(message, done);
        encode(v as Message, w);
        w.join(s);
      };
    }
    case "list": {
      const tag = tagOf(field.number, 2);
      if (field.listKind === "message") {
        const message = field.message;
        let encode: Encode | undefined;
        return (m, w) => {
          const v = m[name] as Message[] | undefined;
          if (v == null) return;
          encode ??= encoderOf(message, done);
          for (const x of v) {
            tag(w);
            const s = w.fork();
            encode(x, w);
            w.join(s);
          }
        };
      }
      if (field.listKind === "scalar" && field.scalar === ScalarType.STRING)
        return (m, w) => {
          const v = m[name] as string[] | undefined;
          if (v == null) return;
          for (const x of v) {
            tag(w);
            w.string(x);
          }
        };
      throw new Error("not in the closure variant: packed list");
    }
    case "map": {
      const tag = tagOf(field.number, 2);
      if (field.mapKey !== ScalarType.STRING) throw new Error("not in the closure variant: map key");
      let value: (w: Writer, x: unknown) => void;
      if (field.mapKind === "scalar" && field.scalar === ScalarType.STRING)
        value = (w, x) => {
          w.byte(18);
          w.string(x as string);
        };
      else if (field.mapKind === "message") {
        const message = field.message;
        let encode: Encode | undefined;
        value = (w, x) => {
          w.byte(18);
          const s = w.fork();
          encode ??= encoderOf(message, done);
          encode(x as Message, w);
          w.join(s);
        };
      } else throw new Error("not in the closure variant: map value");
      return (m, w) => {
        const v = m[name] as Record<string, unknown> | undefined;
        if (v == null) return;
        for (const k of Object.keys(v)) {
          tag(w);
          const e = w.fork();
          w.byte(10);
          w.string(k);
          value(w, v[k]);
          w.join(e);
        }
      };
    }
    default:
      throw new Error(`not in the closure variant: ${field.fieldKind}`);
  }
}

type FieldRead = (r: Reader, m: Message, t: number) => void;

function scalarReader(type: ScalarType): (r: Reader) => unknown {
  switch (type) {
    case ScalarType.STRING:
      return (r) => r.text(true);
    case ScalarType.UINT32:
      return (r) => r.uint32();
    case ScalarType.INT32:
      return (r) => r.int32();
    case ScalarType.BOOL:
      return (r) => r.bool();
    case ScalarType.BYTES:
      return (r) => r.bytes();
    case ScalarType.INT64:
      return (r) => r.int64();
    case ScalarType.UINT64:
      return (r) => r.uint64();
    default:
      throw new Error(`not in the closure variant: scalar ${type}`);
  }
}

function decoderOf(desc: DescMessage, done: Map<DescMessage, Decode>): Decode {
  const known = done.get(desc);
  if (known) return known;
  const readers: (FieldRead | undefined)[] = [];
  const zeros: [string, () => unknown][] = [];
  const typeName = desc.typeName;
  const self: Decode = (r, end, into) => {
    let m = into;
    if (m === undefined) {
      m = { $typeName: typeName };
      for (let i = 0; i < zeros.length; i++) {
        const [name, zero] = zeros[i]!;
        m[name] = zero();
      }
    }
    let unknown: { no: number; wireType: number; data: Uint8Array }[] | undefined;
    while (r.pos < end) {
      const t = r.tagNumber();
      const read = readers[t >>> 3];
      if (read) read(r, m, t);
      else {
        unknown ??= [];
        unknown.push({ no: t >>> 3, wireType: t & 7, data: r.skip(t & 7, t >>> 3) });
      }
    }
    if (unknown) m.$unknown = unknown;
    return m;
  };
  done.set(desc, self);
  for (const field of desc.fields) {
    const name = field.localName;
    switch (field.fieldKind) {
      case "scalar": {
        const read = scalarReader(field.scalar);
        const type = field.scalar;
        zeros.push([
          name,
          type === ScalarType.STRING
            ? () => ""
            : type === ScalarType.BOOL
              ? () => false
              : type === ScalarType.BYTES
                ? () => new Uint8Array(0)
                : type === ScalarType.INT64 || type === ScalarType.UINT64
                  ? () => 0n
                  : () => 0,
        ]);
        readers[field.number] = (r, m) => {
          m[name] = read(r);
        };
        break;
      }
      case "message": {
        const message = field.message;
        let decode: Decode | undefined;
        readers[field.number] = (r, m) => {
          decode ??= decoderOf(message, done);
          const length = r.uint32();
          m[name] = decode(r, r.pos + length, m[name] as Message | undefined);
        };
        break;
      }
      case "list": {
        zeros.push([name, () => []]);
        if (field.listKind === "message") {
          const message = field.message;
          let decode: Decode | undefined;
          readers[field.number] = (r, m) => {
            decode ??= decoderOf(message, done);
            const length = r.uint32();
            (m[name] as unknown[]).push(decode(r, r.pos + length, undefined));
          };
        } else if (field.listKind === "scalar" && field.scalar === ScalarType.STRING)
          readers[field.number] = (r, m) => {
            (m[name] as unknown[]).push(r.text(true));
          };
        else throw new Error("not in the closure variant: packed list");
        break;
      }
      case "map": {
        zeros.push([name, () => ({})]);
        let value: (r: Reader) => unknown;
        if (field.mapKind === "scalar" && field.scalar === ScalarType.STRING) value = (r) => r.text(true);
        else if (field.mapKind === "message") {
          const message = field.message;
          let decode: Decode | undefined;
          value = (r) => {
            decode ??= decoderOf(message, done);
            const length = r.uint32();
            return decode(r, r.pos + length, undefined);
          };
        } else throw new Error("not in the closure variant: map value");
        readers[field.number] = (r, m) => {
          const end = r.uint32() + r.pos;
          let k = "";
          let x: unknown;
          while (r.pos < end) {
            const t = r.tagNumber();
            if (t >>> 3 === 1) k = r.text(true);
            else x = value(r);
          }
          (m[name] as Record<string, unknown>)[k] = x ?? "";
        };
        break;
      }
      default:
        throw new Error(`not in the closure variant: ${field.fieldKind}`);
    }
  }
  return self;
}
