import fc from "fast-check";
import { expect, test } from "vitest";
import { fromJson, toJson } from "../../src/libcontainerd/remote/any.js";

test("a spec's rlimit of RLIM_INFINITY (2^64-1) goes to JSON and back exactly; strings that look like numbers stay strings", () => {
  const spec = {
    process: { rlimits: [{ type: "RLIMIT_CORE", soft: 2n ** 64n - 1n, hard: 2n ** 64n - 1n }] },
    env: ['X=:18446744073709551615,"', "Y=\\\\12345678901234567890"],
    small: [1, -2, 3.5, 1e300],
  };
  const text = toJson(spec);
  expect(text).toContain('"soft":18446744073709551615');
  expect(fromJson(text)).toEqual(spec);
  expect(toJson(fromJson(text))).toBe(text);
});

/** A bigint as the double JSON.parse would have read. */
const asNumbers = (value: unknown): unknown =>
  JSON.parse(
    JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? Number(item) : item)),
  );

test("fromJson reads what JSON.parse reads, with bigints only beyond int64", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.jsonValue(), fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }))),
      (value) => {
        const text = JSON.stringify(value);
        const read = fromJson(text);
        expect(asNumbers(read)).toEqual(JSON.parse(text));
        expect(toJson(read)).toBe(text);
      },
    ),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 2n ** 63n, max: 2n ** 64n - 1n }), fc.string(), (big, text) => {
      expect(fromJson(toJson({ big, text }))).toEqual({ big, text });
    }),
  );
  // A negative number beyond int64 stays a number, sign and all (the scanner once split it off).
  expect(fromJson('{"n": -123456789012345680000, "m": [-1e300, 5]}')).toEqual({
    n: Number("-123456789012345680000"),
    m: [-1e300, 5],
  });
  // int64 values (memory limits, …) stay numbers, as before.
  expect(fromJson('{"limit": 9223372036854771712}')).toEqual({ limit: Number("9223372036854771712") });
});
