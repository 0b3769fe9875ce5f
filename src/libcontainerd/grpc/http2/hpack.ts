// HPACK (RFC 7541): the decoder for what the server sends (Go's encoder indexes fields in its
// dynamic table and Huffman-codes strings when that is shorter), and an encoder for what we send,
// which uses only static-table indices and literals without indexing: no dynamic table to keep in
// step with the server, and a call's header block can be built once per method and reused.
import { HuffmanError, huffmanDecode } from "./huffman.js";
import { STATIC_TABLE } from "./static-table.js";

/** A header block the decoder cannot read: the connection's compression state is lost (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/** RFC 7541 §4.1: an entry's size is its name's and value's lengths plus 32. */
const ENTRY_OVERHEAD = 32;
const EMPTY = Buffer.alloc(0);
/** SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 §6.5.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/**
 * Decodes header blocks of one connection, in the order they arrive (every block, also those of
 * streams nobody waits for any more: each may change the dynamic table).
 */
export class HpackDecoder {
  /** Dynamic table, oldest first: index 62 is the last entry. */
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private size = 0;
  private maxSize: number;

  /** `limit`: the SETTINGS_HEADER_TABLE_SIZE we advertised, the most the encoder may use. */
  constructor(private readonly limit = DEFAULT_HEADER_TABLE_SIZE) {
    this.maxSize = limit;
  }

  /** The dynamic table, newest entry first (for tests and debugging). */
  dynamicTable(): { entries: [string, string][]; size: number } {
    const entries: [string, string][] = [];
    for (let i = this.names.length - 1; i >= 0; i--) entries.push([this.names[i]!, this.values[i]!]);
    return { entries, size: this.size };
  }

  /** The block being decoded, and the position in it. */
  private block: Buffer = EMPTY;
  private pos = 0;

  /** The fields of one complete header block, as `[name, value, name, value, …]`. */
  decode(block: Buffer): string[] {
    const fields: string[] = [];
    this.block = block;
    this.pos = 0;
    let fieldSeen = false;
    while (this.pos < block.length) {
      const first = block[this.pos]!;
      if (first & 0x80) {
        // Indexed field (§6.1).
        const index = this.integer(7);
        fields.push(this.name(index), this.value(index));
      } else if (first & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const index = this.integer(6);
        const name = index === 0 ? this.string() : this.name(index);
        const value = this.string();
        fields.push(name, value);
        this.add(name, value);
      } else if (first & 0x20) {
        // Dynamic table size update (§6.3): only before the block's first field.
        if (fieldSeen) throw new HpackError("table size update after a header field");
        const size = this.integer(5);
        if (size > this.limit) throw new HpackError(`table size ${size} above the advertised ${this.limit}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        const index = this.integer(4);
        const name = index === 0 ? this.string() : this.name(index);
        fields.push(name, this.string());
      }
      fieldSeen = true;
    }
    this.block = EMPTY;
    return fields;
  }

  /** An integer with an `n`-bit prefix at the position (RFC 7541 §5.1). */
  private integer(n: number): number {
    const { block } = this;
    const mask = (1 << n) - 1;
    let value = block[this.pos++]! & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= block.length) throw new HpackError("truncated integer");
      if (shift > 21) throw new HpackError("integer too large");
      const byte = block[this.pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** A string literal at the position (RFC 7541 §5.2), as latin1: header values are octets. */
  private string(): string {
    const { block } = this;
    if (this.pos >= block.length) throw new HpackError("truncated string");
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const length = this.integer(7);
    const start = this.pos;
    if (start + length > block.length) throw new HpackError("truncated string");
    this.pos += length;
    if (!huffman) return block.toString("latin1", start, this.pos);
    try {
      return huffmanDecode(block, start, this.pos);
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError(err.message);
      throw err;
    }
  }

  private entry(index: number): number {
    const dynamic = index - STATIC_TABLE.length;
    if (index === 0 || dynamic > this.names.length) throw new HpackError(`invalid table index ${index}`);
    return this.names.length - dynamic;
  }

  private name(index: number): string {
    if (index <= STATIC_TABLE.length && index > 0) return STATIC_TABLE[index - 1]![0];
    return this.names[this.entry(index)]!;
  }

  private value(index: number): string {
    if (index <= STATIC_TABLE.length && index > 0) return STATIC_TABLE[index - 1]![1];
    return this.values[this.entry(index)]!;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(size);
    // An entry larger than the table empties it and is not added (§4.4).
    if (size > this.maxSize) return;
    this.names.push(name);
    this.values.push(value);
    this.size += size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.names.length) {
      this.size -= this.names[drop]!.length + this.values[drop]!.length + ENTRY_OVERHEAD;
      drop++;
    }
    if (drop > 0) {
      this.names.splice(0, drop);
      this.values.splice(0, drop);
    }
  }
}

/** Static-table index of each full field (`name\0value`) and of each name (its first entry). */
const STATIC_FIELDS = new Map<string, number>();
const STATIC_NAMES = new Map<string, number>();
for (const [i, [name, value]] of STATIC_TABLE.entries()) {
  STATIC_FIELDS.set(`${name}\0${value}`, i + 1);
  if (!STATIC_NAMES.has(name)) STATIC_NAMES.set(name, i + 1);
}

function pushInteger(out: number[], prefixBits: number, flags: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out.push(flags | value);
    return;
  }
  out.push(flags | mask);
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function pushString(out: number[], text: string): void {
  const bytes = Buffer.from(text, "latin1");
  pushInteger(out, 7, 0, bytes.length);
  for (const byte of bytes) out.push(byte);
}

/**
 * One field as the cheapest representation that leaves the server's dynamic table alone: a
 * static-table index for a field the table holds (`:method: POST`), else a literal without
 * indexing, naming the field by its static index when it has one (`:path`). Names are lowercase,
 * as HTTP/2 requires.
 */
export function encodeField(name: string, value: string): Buffer {
  const out: number[] = [];
  const indexed = STATIC_FIELDS.get(`${name}\0${value}`);
  if (indexed !== undefined) {
    pushInteger(out, 7, 0x80, indexed);
  } else {
    const nameIndex = STATIC_NAMES.get(name);
    pushInteger(out, 4, 0x00, nameIndex ?? 0);
    if (nameIndex === undefined) pushString(out, name);
    pushString(out, value);
  }
  return Buffer.from(out);
}

/** A whole header block of `fields`, in order. */
export function encodeHeaderBlock(fields: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) parts.push(encodeField(name, value));
  return Buffer.concat(parts);
}
