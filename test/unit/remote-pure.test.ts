import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";
import { validateIdentifier, validateNamespace } from "../../src/libcontainerd/core/identifiers.js";
import { parseAddress } from "../../src/libcontainerd/grpc/address.js";
import { toTypedError } from "../../src/libcontainerd/grpc/errors.js";
import { parseSignal } from "../../src/libcontainerd/signals.js";

describe("parseAddress", () => {
  test.each([
    ["/run/containerd/containerd.sock", { kind: "unix", path: "/run/containerd/containerd.sock" }],
    ["unix:///run/c.sock", { kind: "unix", path: "/run/c.sock" }],
    ["\\\\.\\pipe\\containerd-containerd", { kind: "pipe", path: "\\\\.\\pipe\\containerd-containerd" }],
    ["//./pipe/docker-containerd", { kind: "pipe", path: "\\\\.\\pipe\\docker-containerd" }],
    ["npipe:////./pipe/x", { kind: "pipe", path: "\\\\.\\pipe\\x" }],
    ["tcp://127.0.0.1:1234", { kind: "tcp", host: "127.0.0.1", port: 1234 }],
    ["tcp://[::1]:80", { kind: "tcp", host: "::1", port: 80 }],
  ])("%s", (raw, parsed) => {
    expect(parseAddress(raw)).toEqual(parsed);
  });

  test.each([
    "",
    "relative.sock",
    "unix://relative",
    "tcp://host",
    "tcp://host:0",
    "tcp://host:70000",
    "http://x",
    "\\\\.\\pipe\\",
  ])("%j is refused", (raw) => {
    expect(() => parseAddress(raw)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });
});

describe("toTypedError", () => {
  test.each([
    [Code.NotFound, "container x: not found", "not_found"],
    [Code.AlreadyExists, "exists", "already_exists"],
    [Code.FailedPrecondition, "namespace is required", "failed_precondition"],
    [Code.Unavailable, "connection refused", "unavailable"],
    [Code.Unimplemented, "nope", "not_implemented"],
    [Code.DeadlineExceeded, "slow", "deadline_exceeded"],
    // connect's reading of an HTTP/2 reset: containerd went away.
    [Code.Canceled, "http/2 stream closed with error code CANCEL (0x8)", "unavailable"],
    [Code.Unknown, 'exec: "x": executable file not found in $PATH: unknown', "not_found"],
    [Code.Unknown, "cannot exec in a stopped state: unknown", "failed_precondition"],
    [Code.Unknown, "failed to delete task: cannot delete a running process: unknown", "failed_precondition"],
    [Code.Unknown, "something: failed precondition", "failed_precondition"],
    // The shim's state machine, as containerd 1.6 sends it (seen from start() twice, start after exit).
    [Code.Unknown, "cannot start a running process: unknown", "failed_precondition"],
    [Code.Unknown, "cannot start a stopped process: unknown", "failed_precondition"],
    [Code.Unknown, "cannot pause a stopped container: unknown", "failed_precondition"],
    [Code.Unknown, "cannot resume task in created state: unknown", "failed_precondition"],
    [Code.Unknown, "cannot update a stopped container: unknown", "failed_precondition"],
    [Code.Unknown, "permission denied", "failed_precondition"],
    [Code.Unknown, "something else", "internal"],
  ])("gRPC %i %j → %s", (code, message, kind) => {
    const typed = toTypedError(new ConnectError(message, code), "op on container c");
    expect(typed.code).toBe(kind);
    expect(typed.origin).toEqual({ backend: "containerd", grpcCode: code });
    expect(typed.message).toBe(`op on container c: ${message}`);
    expect(typed.cause).toBeInstanceOf(ConnectError);
  });

  test("socket errors are Unavailable", () => {
    const err = Object.assign(new Error("connect ENOENT /x.sock"), { code: "ENOENT" });
    expect(toTypedError(err, "version").code).toBe("unavailable");
  });
});

describe("identifiers and signals", () => {
  test("containerd's identifier rule", () => {
    expect(validateIdentifier("container id", "a.b_c-1")).toBe("a.b_c-1");
    for (const bad of ["", "a..b", "_a", "a_", "a b", "x".repeat(77)]) {
      expect(() => validateIdentifier("container id", bad)).toThrow(
        expect.objectContaining({ code: "invalid_argument" }),
      );
    }
  });

  test("namespaces the state dir uses for itself are refused", () => {
    expect(validateNamespace("moby")).toBe("moby");
    for (const reserved of ["daemon", "runtime-runc", "runc-v1", "runtimes", "containerd.sock"]) {
      expect(() => validateNamespace(reserved)).toThrow(
        expect.objectContaining({ code: "invalid_argument" }),
      );
    }
  });

  test("signal names, numbers, and real-time signals", () => {
    expect(parseSignal("SIGTERM")).toBe(15);
    expect(parseSignal("term")).toBe(15);
    expect(parseSignal("9")).toBe(9);
    expect(parseSignal(2)).toBe(2);
    expect(parseSignal("SIGRTMIN+2")).toBe(36);
    for (const bad of ["SIGNOPE", "", "0", 65, -1, 1.5, "RTMIN+40"]) {
      expect(() => parseSignal(bad)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    }
  });
});
