/**
 * The local backend's signal map against hcsshim's own table (internal/signals/signal.go
 * ValidateWCOW / ValidateLCOW with signals supported, signalmap.go; 7c9ff7f48), number by number.
 */
import { describe, expect, it } from "vitest";
import { hcsSignal } from "../../src/libcontainerd/local/signals.js";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";

/** hcsshim's ValidateWCOW(signal, true), transcribed: undefined = ErrInvalidSignal, null = Terminate. */
function hcsshimWcow(signal: number): string | null | undefined {
  switch (signal) {
    case 0x0:
      return "CtrlC";
    case 0x1:
      return "CtrlBreak";
    case 0x2:
      return "CtrlClose";
    case 0x5:
      return "CtrlLogOff";
    case 0x6:
    case 0xf:
      return "CtrlShutdown";
    case 0x9:
      return null;
    default:
      return undefined;
  }
}

/** signalMapLcow's values: 1–31. */
const LCOW_VALUES = new Set([
  0x6, 0xe, 0x7, 0x11, 0x12, 0x8, 0x1, 0x4, 0x2, 0x1d, 0x9, 0xd, 0x1b, 0x1e, 0x3, 0xb, 0x10, 0x13, 0x1f, 0xf,
  0x5, 0x14, 0x15, 0x16, 0x17, 0xa, 0xc, 0x1a, 0x1c, 0x18, 0x19,
]);

describe("hcsSignal", () => {
  it("a Windows guest: every number 0–64 as hcsshim's ValidateWCOW", () => {
    for (let n = 0; n <= 64; n++) {
      const expected = hcsshimWcow(n);
      if (expected === undefined) {
        expect(() => hcsSignal("windows", n), String(n)).toThrow(InvalidArgumentError);
      } else if (expected === null) {
        expect(hcsSignal("windows", n)).toEqual({ kind: "terminate" });
      } else {
        expect(hcsSignal("windows", n)).toEqual({ kind: "signal", options: { Signal: expected } });
      }
    }
  });

  it("a Windows guest: POSIX names by their number, console events by name in any case", () => {
    expect(hcsSignal("windows", "SIGTERM")).toEqual({ kind: "signal", options: { Signal: "CtrlShutdown" } });
    expect(hcsSignal("windows", "INT")).toEqual({ kind: "signal", options: { Signal: "CtrlClose" } });
    expect(hcsSignal("windows", "SIGKILL")).toEqual({ kind: "terminate" });
    expect(hcsSignal("windows", "0")).toEqual({ kind: "signal", options: { Signal: "CtrlC" } });
    expect(hcsSignal("windows", "ctrlbreak")).toEqual({ kind: "signal", options: { Signal: "CtrlBreak" } });
    expect(hcsSignal("windows", " CtrlLogOff ")).toEqual({
      kind: "signal",
      options: { Signal: "CtrlLogOff" },
    });
    expect(() => hcsSignal("windows", "SIGUSR1")).toThrow(InvalidArgumentError);
    expect(() => hcsSignal("windows", "CtrlX")).toThrow(InvalidArgumentError);
  });

  it("a Linux guest: the POSIX number when signalMapLcow has it", () => {
    for (let n = 0; n <= 64; n++) {
      if (n === 9) expect(hcsSignal("linux", n)).toEqual({ kind: "terminate" });
      else if (LCOW_VALUES.has(n))
        expect(hcsSignal("linux", n)).toEqual({ kind: "signal", options: { Signal: n } });
      else expect(() => hcsSignal("linux", n), String(n)).toThrow(InvalidArgumentError);
    }
    expect(hcsSignal("linux", "SIGUSR1")).toEqual({ kind: "signal", options: { Signal: 10 } });
    expect(() => hcsSignal("linux", "CtrlC")).toThrow(InvalidArgumentError);
  });
});
