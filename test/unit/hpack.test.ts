// HPACK against RFC 7541's own examples (Appendix C, as golang.org/x/net/http2/hpack's tests
// transcribe them): integers and literals, each representation, the dynamic table with evictions,
// with and without Huffman coding; and our encoder's blocks read back by that decoder.
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError } from "../../src/libcontainerd/grpc/http2/hpack.js";
import { HuffmanError, huffmanDecode } from "../../src/libcontainerd/grpc/http2/huffman.js";
import * as huffmanTable from "../../src/libcontainerd/grpc/http2/huffman-table.js";

const dehex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");
const pairs = (fields: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
};

interface Step {
  block: string;
  fields: [string, string][];
  table: [string, string][];
  size: number;
}

function series(tableSize: number, steps: Step[]): void {
  const decoder = new HpackDecoder(tableSize);
  for (const step of steps) {
    expect(pairs(decoder.decode(dehex(step.block)))).toEqual(step.fields);
    expect(decoder.dynamicTable()).toEqual({ entries: step.table, size: step.size });
  }
}

const requests = (blocks: [string, string, string]): Step[] => [
  {
    block: blocks[0],
    fields: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ],
    table: [[":authority", "www.example.com"]],
    size: 57,
  },
  {
    block: blocks[1],
    fields: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ],
    table: [
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    size: 110,
  },
  {
    block: blocks[2],
    fields: [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
    table: [
      ["custom-key", "custom-value"],
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    size: 164,
  },
];

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const responses = (blocks: [string, string, string]): Step[] => [
  {
    block: blocks[0],
    fields: [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", DATE1],
      ["location", "https://www.example.com"],
    ],
    table: [
      ["location", "https://www.example.com"],
      ["date", DATE1],
      ["cache-control", "private"],
      [":status", "302"],
    ],
    size: 222,
  },
  {
    block: blocks[1],
    fields: [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", DATE1],
      ["location", "https://www.example.com"],
    ],
    table: [
      [":status", "307"],
      ["location", "https://www.example.com"],
      ["date", DATE1],
      ["cache-control", "private"],
    ],
    size: 222,
  },
  {
    block: blocks[2],
    fields: [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", DATE2],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", COOKIE],
    ],
    table: [
      ["set-cookie", COOKIE],
      ["content-encoding", "gzip"],
      ["date", DATE2],
    ],
    size: 215,
  },
];

describe("HPACK decoder: RFC 7541 Appendix C", () => {
  it("C.2: each field representation", () => {
    const one = (block: string, tableSize = 4096) => {
      const decoder = new HpackDecoder(tableSize);
      return { fields: pairs(decoder.decode(dehex(block))), table: decoder.dynamicTable().entries };
    };
    expect(one("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")).toEqual({
      fields: [["custom-key", "custom-header"]],
      table: [["custom-key", "custom-header"]],
    });
    expect(one("040c 2f73 616d 706c 652f 7061 7468")).toEqual({
      fields: [[":path", "/sample/path"]],
      table: [],
    });
    expect(one("1008 7061 7373 776f 7264 0673 6563 7265 74")).toEqual({
      fields: [["password", "secret"]],
      table: [],
    });
    expect(one("82")).toEqual({ fields: [[":method", "GET"]], table: [] });
  });

  it("C.3: requests without Huffman coding", () => {
    series(
      4096,
      requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ]),
    );
  });

  it("C.4: requests with Huffman coding", () => {
    series(
      4096,
      requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ]),
    );
  });

  it("C.5: responses without Huffman coding, evicting from a 256-octet table", () => {
    series(
      256,
      responses([
        `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d`,
        "4803 3330 37c1 c0bf",
        `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31`,
      ]),
    );
  });

  it("C.6: responses with Huffman coding, evicting from a 256-octet table", () => {
    series(
      256,
      responses([
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        "4883 640e ffc1 c0bf",
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      ]),
    );
  });
});

describe("HPACK decoder: what it must reject", () => {
  it("C.1: integers of several octets", () => {
    // A literal without indexing whose new name is 1337 octets long: with a 7-bit prefix, 7f ba 09.
    const name = "x".repeat(1337);
    const block = Buffer.concat([
      Buffer.from([0x00, 0x7f, 0xba, 0x09]),
      Buffer.from(name),
      Buffer.from([0x01, 0x76]),
    ]);
    expect(pairs(new HpackDecoder().decode(block))).toEqual([[name, "v"]]);
  });

  it("a dynamic table size update: evicts, and may not exceed the advertised size or follow a field", () => {
    const decoder = new HpackDecoder(256);
    decoder.decode(dehex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    expect(decoder.dynamicTable().size).toBe(55);
    // 0x20: size 0 (evicts everything), then 0x3f e1 01 = 31 + 225 = 256.
    expect(decoder.decode(dehex("20 3fe101 82"))).toEqual([":method", "GET"]);
    expect(decoder.dynamicTable()).toEqual({ entries: [], size: 0 });
    expect(() => decoder.decode(dehex("3fe201"))).toThrow(HpackError);
    expect(() => decoder.decode(dehex("82 20"))).toThrow(HpackError);
  });

  it("indices outside the tables, truncated blocks, an entry larger than the table", () => {
    expect(() => new HpackDecoder().decode(dehex("80"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(dehex("be"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(dehex("040c 2f73"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(dehex("ff"))).toThrow(HpackError);
    const tiny = new HpackDecoder(40);
    expect(
      tiny.decode(dehex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")),
    ).toHaveLength(2);
    expect(tiny.dynamicTable()).toEqual({ entries: [], size: 0 });
  });

  it("Huffman: padding longer than 7 bits, padding not all ones, EOS", () => {
    const decode = (hex: string) => {
      const bytes = dehex(hex);
      return huffmanDecode(bytes, 0, bytes.length);
    };
    expect(decode("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).toBe("www.example.com");
    expect(decode("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3")).toBe("https://www.example.com");
    for (const bad of [
      "ff",
      "1fff",
      "1fffff",
      "1fffffff",
      "ff9fffffff",
      "52bc30ffffffff",
      "00",
      "fffffffffc",
    ]) {
      expect(() => decode(bad), bad).toThrow(HuffmanError);
    }
  });

  it("Huffman: every octet, decoded after the shorter codes around it", () => {
    // Each octet's code from the table, packed MSB-first, padded with ones.
    const { HUFFMAN_CODES, HUFFMAN_LENGTHS } = huffmanTable;
    const octets = [...Array(256).keys(), 97, 0, 255, 48];
    let bits = 0n;
    let count = 0;
    for (const octet of octets) {
      bits = (bits << BigInt(HUFFMAN_LENGTHS[octet]!)) | BigInt(HUFFMAN_CODES[octet]!);
      count += HUFFMAN_LENGTHS[octet]!;
    }
    const pad = (8 - (count % 8)) % 8;
    bits = (bits << BigInt(pad)) | ((1n << BigInt(pad)) - 1n);
    const bytes = Buffer.from(bits.toString(16).padStart(((count + pad) / 8) * 2, "0"), "hex");
    expect(huffmanDecode(bytes, 0, bytes.length)).toBe(Buffer.from(octets).toString("latin1"));
  });
});

describe("HPACK encoder", () => {
  it("static indices and literals without indexing: decoded as written, the server's table untouched", () => {
    const fields: [string, string][] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/containerd.services.tasks.v1.Tasks/Create"],
      [":authority", "localhost"],
      ["content-type", "application/grpc+proto"],
      ["te", "trailers"],
      ["containerd-namespace", "default"],
      ["grpc-timeout", "1500m"],
      ["x-long", "v".repeat(300)],
    ];
    const block = encodeHeaderBlock(fields);
    expect(block.subarray(0, 2)).toEqual(Buffer.from([0x83, 0x86]));
    const decoder = new HpackDecoder();
    expect(pairs(decoder.decode(block))).toEqual(fields);
    expect(decoder.dynamicTable().entries).toEqual([]);
  });
});
