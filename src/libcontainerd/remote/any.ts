import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";

/** Non-protobuf payloads travel as JSON under these type URLs (containerd's typeurl registry). */
export const TYPE_URL = {
  spec: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
  process: "types.containerd.io/opencontainers/runtime-spec/1/Process",
  linuxResources: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
  windowsResources: "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources",
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function jsonAny(typeUrl: string, value: unknown): Any {
  return create(AnySchema, { typeUrl, value: encoder.encode(toJson(value)) });
}

/**
 * Marks a bigint's digits in JSON.stringify's output, to be unquoted after: unique, so no string can hold
 * it. Made on first use: a spec with no rlimit of 2^64-1 (the usual one) never needs it, and ctrd's start
 * does not pay for a random UUID.
 */
let bigintMark: { prefix: string; marked: RegExp } | undefined;
function bigintMarks(): { prefix: string; marked: RegExp } {
  if (!bigintMark) {
    const prefix = `bigint-${randomUUID()}:`;
    bigintMark = { prefix, marked: new RegExp(`"${prefix}(\\d+)"`, "g") };
  }
  return bigintMark;
}

/**
 * JSON.stringify, with a bigint written as the exact number it is (an rlimit of RLIM_INFINITY is
 * 2^64-1, beyond a double's precision; Go reads it as uint64). Node 20 has no JSON.rawJSON.
 */
export function toJson(value: unknown): string {
  let bigints = false;
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item !== "bigint") return item;
    bigints = true;
    return `${bigintMarks().prefix}${item}`;
  });
  return bigints ? text.replace(bigintMarks().marked, "$1") : text;
}

export function parseJsonAny<T>(any: Any | undefined): T | undefined {
  return any && any.value.length > 0 ? (fromJson(decoder.decode(any.value)) as T) : undefined;
}

/**
 * JSON.parse, with an integer beyond int64 read as a bigint (toJson writes it back the same): a spec
 * read, changed and sent again keeps an rlimit of 2^64-1, where a double would round it to
 * 18446744073709552000, which Go refuses as a uint64. Only the uint64 fields (rlimits) hold such
 * values; every other number stays a number, as code reading a spec does arithmetic on them.
 */
const INT64_MAX = 2n ** 63n - 1n;

export function fromJson(text: string): unknown {
  if (!/\d{19}/.test(text)) return JSON.parse(text);
  let marked = "";
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char !== undefined && ((char >= "0" && char <= "9") || char === "-")) {
      // The whole number, its sign too: a negative one stays a number.
      let end = i;
      while (end < text.length && /[0-9.eE+-]/.test(text[end] ?? "")) end++;
      const number = text.slice(i, end);
      if (/^\d{19,}$/.test(number) && BigInt(number) > INT64_MAX) {
        marked += `${text.slice(from, i)}"${bigintMarks().prefix}${number}"`;
        from = end;
      }
      i = end - 1;
    }
  }
  if (from === 0) return JSON.parse(text);
  const { prefix } = bigintMarks();
  return JSON.parse(marked + text.slice(from), (_key, item: unknown) =>
    typeof item === "string" && item.startsWith(prefix) ? BigInt(item.slice(prefix.length)) : item,
  );
}

/** An Any with a bare type URL: containerd 1.6's shims do not accept the `type.googleapis.com/` prefix. */
export function bareAny(typeUrl: string, value: Uint8Array): Any {
  return create(AnySchema, { typeUrl, value });
}
