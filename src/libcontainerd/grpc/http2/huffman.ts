import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "./huffman-table.js";

/** A string literal whose Huffman coding is invalid (RFC 7541 §5.2): a COMPRESSION_ERROR. */
export class HuffmanError extends Error {}

const MIN_BITS = 5;
const MAX_BITS = 30;

/**
 * The code is canonical (codes of one length are consecutive, shorter codes sort first), so a code
 * of `length` bits decodes as `SYMBOLS[FIRST_INDEX[length] + code - FIRST_CODE[length]]` when
 * `code - FIRST_CODE[length] < COUNT[length]`.
 */
const COUNT = new Int32Array(MAX_BITS + 1);
const FIRST_CODE = new Int32Array(MAX_BITS + 1);
const FIRST_INDEX = new Int32Array(MAX_BITS + 1);
const SYMBOLS = new Uint8Array(256);
/** Codes of up to 8 bits, by the next 8 input bits: `symbol << 4 | length`, or -1. */
const BY_BYTE = new Int16Array(256).fill(-1);

{
  const order = [...Array(256).keys()].sort(
    (a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || HUFFMAN_CODES[a]! - HUFFMAN_CODES[b]!,
  );
  for (const [index, symbol] of order.entries()) {
    const length = HUFFMAN_LENGTHS[symbol]!;
    const code = HUFFMAN_CODES[symbol]!;
    if (COUNT[length] === 0) {
      FIRST_CODE[length] = code;
      FIRST_INDEX[length] = index;
    }
    COUNT[length]!++;
    SYMBOLS[index] = symbol;
    if (length <= 8) {
      const shift = 8 - length;
      for (let low = 0; low < 1 << shift; low++) BY_BYTE[(code << shift) | low] = (symbol << 4) | length;
    }
  }
}

/**
 * Decodes `input[start, end)` into latin1 text: header values are octets, and those containerd
 * sends are ASCII. Padding must be at most 7 bits, all ones (the start of EOS); EOS itself is an
 * error.
 */
export function huffmanDecode(input: Uint8Array, start: number, end: number): string {
  // Every symbol takes at least 5 bits.
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / MIN_BITS));
  let written = 0;
  /** The low `bits` bits of `acc` are input not yet decoded. */
  let acc = 0;
  let bits = 0;
  let i = start;
  for (;;) {
    while (bits <= 16 && i < end) {
      acc = ((acc << 8) | input[i++]!) & 0xffffff;
      bits += 8;
    }
    if (bits === 0) break;
    if (bits >= 8) {
      const entry = BY_BYTE[(acc >>> (bits - 8)) & 0xff]!;
      if (entry >= 0) {
        out[written++] = entry >> 4;
        bits -= entry & 0xf;
        continue;
      }
    }
    // A code longer than 8 bits, or the last few bits: one bit at a time.
    let code = 0;
    let length = 0;
    for (;;) {
      if (bits === 0) {
        if (i === end) {
          // Input ended inside a code: that must be padding, up to 7 one bits.
          if (length > 7 || code !== (1 << length) - 1) throw new HuffmanError("invalid Huffman padding");
          return out.toString("latin1", 0, written);
        }
        acc = input[i++]!;
        bits = 8;
      }
      bits--;
      code = (code << 1) | ((acc >>> bits) & 1);
      length++;
      if (length >= MIN_BITS) {
        const offset = code - FIRST_CODE[length]!;
        if (offset >= 0 && offset < COUNT[length]!) {
          out[written++] = SYMBOLS[FIRST_INDEX[length]! + offset]!;
          break;
        }
        if (length === MAX_BITS) throw new HuffmanError("invalid Huffman code (EOS)");
      }
    }
  }
  return out.toString("latin1", 0, written);
}
