// fast-check over the inputs the library parses before anything reaches containerd or HCS: valid
// ones work, invalid ones throw the typed error (a LibcontainerdError with `code`), nothing else is
// ever thrown. daemon.json documents are fuzzed in test/unit/runtime-property.test.ts.
import { constants } from "node:os";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { validateIdentifier } from "../../src/libcontainerd/core/identifiers.js";
import { type ContainerdAddress, formatAddress, parseAddress } from "../../src/libcontainerd/grpc/address.js";
import { errorCodeForHresult, hcsError, parseResultError } from "../../src/libcontainerd/local/hresult.js";
import { parseSignal } from "../../src/libcontainerd/signals.js";
import { LibcontainerdError } from "../../src/libcontainerd/types/errors.js";

const RUNS = { numRuns: 2000 };

/** The result, or "invalid" for an InvalidArgumentError; any other throw fails the property. */
function outcome<T>(action: () => T): T | "invalid" {
  try {
    return action();
  } catch (err) {
    if (err instanceof LibcontainerdError && err.code === "invalid_argument") return "invalid";
    throw err;
  }
}

// containerd's pkg/identifiers, written out independently as the oracle.
const CONTAINERD_IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const alnum = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/);
const validIdentifier = fc
  .tuple(alnum, fc.array(fc.tuple(fc.constantFrom(".", "_", "-"), alnum), { maxLength: 5 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(""))
  .filter((id) => id.length <= 76);
/** Mostly near misses of valid ids, plus anything at all. */
const anyIdentifier = fc.oneof(
  validIdentifier,
  fc
    .tuple(validIdentifier, fc.constantFrom("..", "--", "/", " ", "\0", "é", ":", "", "."), fc.boolean())
    .map(([id, junk, before]) => (before ? junk + id : id + junk)),
  fc.string({ maxLength: 90 }),
  fc.string({ unit: "binary", maxLength: 90 }),
  fc.stringMatching(/^[A-Za-z0-9]{70,90}$/),
);

describe("container and exec ids", () => {
  test("a valid id is accepted as it is", () => {
    fc.assert(
      fc.property(
        validIdentifier,
        fc.constantFrom("container id", "exec id", "namespace") as fc.Arbitrary<
          "container id" | "exec id" | "namespace"
        >,
        (id, kind) => {
          expect(validateIdentifier(kind, id)).toBe(id);
        },
      ),
      RUNS,
    );
  });

  test("any string: accepted exactly when containerd would accept it, otherwise InvalidArgumentError", () => {
    fc.assert(
      fc.property(anyIdentifier, (id) => {
        const expected = CONTAINERD_IDENTIFIER.test(id) && id.length <= 76 ? id : "invalid";
        expect(outcome(() => validateIdentifier("container id", id))).toBe(expected);
      }),
      RUNS,
    );
  });

  test("non-strings (from untyped callers) are InvalidArgumentError too", () => {
    fc.assert(
      fc.property(
        fc.anything().filter((v) => typeof v !== "string"),
        (value) => {
          expect(outcome(() => validateIdentifier("exec id", value))).toBe("invalid");
        },
      ),
      RUNS,
    );
  });
});

const signalTable = Object.entries(constants.signals as Record<string, number>);

describe("signal names (parseSignal)", () => {
  test("every signal Node knows, spelled any way, parses to its number", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...signalTable),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom("", " ", "\t"),
        ([name, number], keepPrefix, lowerCase, padding) => {
          let spelled = keepPrefix ? name : name.slice(3);
          if (lowerCase) spelled = spelled.toLowerCase();
          expect(parseSignal(`${padding}${spelled}${padding}`)).toBe(number);
        },
      ),
      RUNS,
    );
  });

  test("numbers 1–64 and SIGRTMIN+n / SIGRTMAX-n within range", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.boolean(), (number, asString) => {
        expect(parseSignal(asString ? String(number) : number)).toBe(number);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), (offset) => {
        expect(parseSignal(`SIGRTMIN+${offset}`)).toBe(34 + offset);
        expect(parseSignal(`RTMAX-${offset}`)).toBe(64 - offset);
      }),
    );
  });

  test("anything else: a signal number in 1–64, or InvalidArgumentError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.string({ unit: "binary", maxLength: 20 }),
          fc.stringMatching(/^(SIG|sig)?(RTM|rtm)(IN|AX|in|ax)[+-]?\d{0,3}$/),
          fc.double(),
          fc.integer(),
          fc.constantFrom(
            "0",
            "65",
            "-9",
            "9.5",
            "1e1",
            "SIG",
            "",
            "SIGKILLX",
            "KILL9",
            "__proto__",
            "SIGTOSTRING",
          ),
        ),
        (input) => {
          const result = outcome(() => parseSignal(input));
          if (result !== "invalid") {
            expect(Number.isInteger(result)).toBe(true);
            expect(result).toBeGreaterThanOrEqual(1);
            expect(result).toBeLessThanOrEqual(64);
          }
        },
      ),
      RUNS,
    );
  });
});

const pathSegment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
const absolutePath = fc
  .array(pathSegment, { minLength: 1, maxLength: 5 })
  .map((parts) => `/${parts.join("/")}`);
const host = fc.oneof(
  fc.ipV4(),
  fc.domain(),
  fc.ipV6().map((ip) => `[${ip}]`),
);

describe("containerd addresses (parseAddress)", () => {
  test("valid unix, tcp and named-pipe addresses parse, and format back to what they mean", () => {
    const valid: fc.Arbitrary<[string, ContainerdAddress]> = fc.oneof(
      absolutePath
        .filter((p) => !/^\/\/?\.\/pipe\//i.test(p))
        .map((path) => [path, { kind: "unix", path }] as [string, ContainerdAddress]),
      absolutePath.map((path) => [`unix://${path}`, { kind: "unix", path }] as [string, ContainerdAddress]),
      fc
        .tuple(host, fc.integer({ min: 1, max: 65535 }))
        .map(
          ([h, port]) =>
            [`tcp://${h}:${port}`, { kind: "tcp", host: h.replace(/^\[|\]$/g, ""), port }] as [
              string,
              ContainerdAddress,
            ],
        ),
      pathSegment.map(
        (name) =>
          [`\\\\.\\pipe\\${name}`, { kind: "pipe", path: `\\\\.\\pipe\\${name}` }] as [
            string,
            ContainerdAddress,
          ],
      ),
      pathSegment.map(
        (name) =>
          [`npipe:////./pipe/${name}`, { kind: "pipe", path: `\\\\.\\pipe\\${name}` }] as [
            string,
            ContainerdAddress,
          ],
      ),
    );
    fc.assert(
      fc.property(valid, ([input, expected]) => {
        const parsed = parseAddress(input);
        expect(parsed).toEqual(expected);
        expect(parseAddress(formatAddress(parsed))).toEqual(parsed);
      }),
      RUNS,
    );
  });

  test("anything else: an address or InvalidArgumentError, never another error", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.string({ unit: "binary", maxLength: 40 }),
          fc
            .tuple(
              fc.constantFrom(
                "unix://",
                "tcp://",
                "npipe://",
                "http://",
                "\\\\.\\pipe\\",
                "//./pipe/",
                "",
                "/",
              ),
              fc.string({ maxLength: 30 }),
            )
            .map(([scheme, rest]) => scheme + rest),
        ),
        (input) => {
          const result = outcome(() => parseAddress(input));
          if (result !== "invalid") {
            expect(["unix", "tcp", "pipe"]).toContain(result.kind);
            if (result.kind === "tcp") expect(result.port).toBeGreaterThan(0);
            else expect(result.path).not.toBe("");
          }
        },
      ),
      RUNS,
    );
  });
});

// HCS's `result` out-string (hcsshim's ResultError), as the fake vmcompute or a real HCS writes it.
const errorEvent = fc.record(
  {
    Message: fc.string({ maxLength: 30 }),
    StackTrace: fc.string({ maxLength: 30 }),
    Provider: fc.uuid(),
    EventId: fc.integer({ min: 0, max: 65535 }),
    Flags: fc.integer({ min: 0, max: 255 }),
    Source: fc.string({ maxLength: 10 }),
  },
  { requiredKeys: [] },
);
const resultError = fc.record(
  {
    Error: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    ErrorMessage: fc.string({ maxLength: 40 }),
    ErrorEvents: fc.array(errorEvent, { maxLength: 4 }),
  },
  { requiredKeys: [] },
);
const hresult = fc.oneof(
  fc.constantFrom(0x80370100, 0xc0370103, 0x80070002, 0xc037010e, 0x8037011f, 0x80370118),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

describe("HCS result documents (local/hresult)", () => {
  test("a well-formed ResultError becomes the typed error for its HRESULT, carrying every message", () => {
    fc.assert(
      fc.property(hresult, resultError, (code, document) => {
        const error = hcsError(code, {
          operation: "HcsCreateComputeSystem",
          subject: "c1",
          resultJson: JSON.stringify(document),
        });
        expect(error).toBeInstanceOf(LibcontainerdError);
        expect(error.code).toBe(errorCodeForHresult(code));
        expect(error.origin).toMatchObject({ backend: "hcs", hresult: code >>> 0 });
        expect(error.message).toContain("HcsCreateComputeSystem c1");
        if (document.ErrorMessage) expect(error.message).toContain(document.ErrorMessage);
        for (const event of document.ErrorEvents ?? [])
          if (event.Message) expect(error.message).toContain(event.Message);
      }),
      RUNS,
    );
  });

  test("parseResultError never throws: an object for a JSON object, undefined for anything else", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string(), fc.string({ unit: "binary" })), (text) => {
        const parsed = parseResultError(text);
        if (parsed !== undefined) {
          expect(typeof parsed).toBe("object");
          expect(Array.isArray(parsed)).toBe(false);
        }
      }),
      RUNS,
    );
  });

  // Was a known bug (hcsError trusted the parsed document's shape); parseResultError now drops
  // fields of the wrong type.
  test("a ResultError-shaped document with fields of any JSON type still yields the typed error", () => {
    const malformed = fc
      .dictionary(
        fc.constantFrom("Error", "ErrorMessage", "ErrorEvents"),
        fc.oneof(fc.jsonValue(), fc.array(fc.jsonValue())),
      )
      .map((document) => JSON.stringify(document));
    fc.assert(
      fc.property(hresult, fc.oneof(malformed, fc.json()), (code, text) => {
        const error = hcsError(code, { operation: "HcsStartComputeSystem", resultJson: text });
        expect(error).toBeInstanceOf(LibcontainerdError);
        expect(error.code).toBe(errorCodeForHresult(code));
        expect(error.message).not.toContain("[object Object]");
      }),
      RUNS,
    );
  });
});
