import { describe, expect, it } from "vitest";
import {
  hcsError,
  hresultName,
  parseResultError,
  win32FromHresult,
} from "../../src/libcontainerd/local/hresult.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
} from "../../src/libcontainerd/types/errors.js";

describe("HRESULT mapping", () => {
  it.each([
    [0xc037010e, NotFoundError, "ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND"],
    [0x80070490, NotFoundError, "ERROR_NOT_FOUND"],
    [0xc037010f, AlreadyExistsError, "ERROR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS"],
    [0xc037010d, InvalidArgumentError, "ERROR_VMCOMPUTE_INVALID_JSON"],
    [0xc0370105, FailedPreconditionError, "ERROR_VMCOMPUTE_INVALID_STATE"],
    [0xc0370110, FailedPreconditionError, "ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED"],
    [0x80070005, FailedPreconditionError, "ERROR_ACCESS_DENIED"],
    [0x8037011b, FailedPreconditionError, "HCS_E_ACCESS_DENIED"],
    [0x80070032, NotImplementedError, "ERROR_NOT_SUPPORTED"],
    [0x80004005, InternalError, "E_FAIL"],
  ])("0x%s → %o", (hresult, type, name) => {
    const err = hcsError(hresult | 0, { operation: "HcsX", subject: "c1" });
    expect(err).toBeInstanceOf(type);
    expect(err.origin).toEqual({ backend: "hcs", hresult, hresultName: name });
    expect(err.message).toContain(name);
  });

  it("puts ErrorMessage and every ErrorEvents message in the message", () => {
    const json = JSON.stringify({
      Error: -1070137075,
      ErrorMessage: "The compute system does not exist.",
      ErrorEvents: [{ Message: "layer C:\\l\\base is missing" }, { Message: "second event" }],
    });
    const err = hcsError(0xc037010d | 0, {
      operation: "HcsCreateComputeSystem",
      subject: "c1",
      resultJson: json,
    });
    expect(err.message).toBe(
      "HcsCreateComputeSystem c1: ERROR_VMCOMPUTE_INVALID_JSON (0xC037010D): The compute system does not exist.; layer C:\\l\\base is missing; second event",
    );
  });

  it("tolerates malformed result documents", () => {
    expect(hcsError(-1, { operation: "op", resultJson: "{not json" }).message).toBe("op: 0xFFFFFFFF");
  });

  it("names unknown codes in hex and reduces Win32 HRESULTs like hcsshim", () => {
    expect(hresultName(0x80371234 | 0)).toBe("0x80371234");
    expect(win32FromHresult(0x80070490 | 0)).toBe(1168);
    expect(win32FromHresult(0xc0370103 | 0)).toBe(0xc0370103);
  });
});

describe("parseResultError", () => {
  it("drops fields of the wrong type instead of trusting the document", () => {
    expect(parseResultError('{"ErrorEvents":5,"ErrorMessage":{"a":1},"Error":"x"}')).toEqual({});
    expect(parseResultError('{"ErrorEvents":[null,3,{"Message":7},{"Message":"kept","EventId":4}]}')).toEqual(
      {
        ErrorEvents: [{}, { Message: "kept", EventId: 4 }],
      },
    );
    expect(
      hcsError(0xc037010d | 0, { operation: "op", resultJson: '{"ErrorEvents":[null],"ErrorMessage":{}}' })
        .message,
    ).toBe("op: ERROR_VMCOMPUTE_INVALID_JSON (0xC037010D)");
  });
});
