// Every row of the backend rules, with platform, environment and the socket probe injected.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { type BackendInputs, chooseBackend, createClient } from "../../src/libcontainerd/factory.js";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { WindowsBuild } from "../../src/platform/index.js";

const PIPE = "\\\\.\\pipe\\containerd-containerd";
const SOCKET = "/run/containerd/containerd.sock";

function windows(build: number, extra: Partial<BackendInputs> = {}): BackendInputs {
  return { os: "windows", windowsBuild: build, env: {}, ...extra };
}

function linux(extra: Partial<BackendInputs> = {}): BackendInputs {
  return { os: "linux", env: {}, ...extra };
}

function invalid(inputs: BackendInputs, message: RegExp): void {
  let thrown: unknown;
  try {
    chooseBackend(inputs);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(InvalidArgumentError);
  expect((thrown as Error).message).toMatch(message);
}

describe("Windows", () => {
  const remoteInputs = {
    experimental: true,
    containerdAddress: PIPE,
    env: { DOCKER_WINDOWS_CONTAINERD: "1" },
  };

  test.each([
    ["RS4", WindowsBuild.RS4, { major: 1, minor: 0 }],
    ["RS5", WindowsBuild.RS5, { major: 2, minor: 1 }],
    ["LTSC2022", WindowsBuild.LTSC2022, { major: 2, minor: 1 }],
  ])("%s without the opt-in → local, HCS schema %o", (_name, build, schema) => {
    const choice = chooseBackend(windows(build));
    expect(choice).toMatchObject({ backend: "local", windowsBuild: build, hcsSchema: schema });
    expect(choice.reason).toMatch(/without experimental, containerdAddress, DOCKER_WINDOWS_CONTAINERD/);
  });

  test.each([
    ["DOCKER_WINDOWS_CONTAINERD", { DOCKER_WINDOWS_CONTAINERD: "1" }],
    ["DOCKER_WINDOWS_CONTAINERD_RUNTIME", { DOCKER_WINDOWS_CONTAINERD_RUNTIME: "1" }],
  ])("experimental + pipe address + %s → remote over the pipe", (name, env) => {
    for (const build of [WindowsBuild.RS4, WindowsBuild.RS5]) {
      const choice = chooseBackend(windows(build, { ...remoteInputs, env }));
      expect(choice).toEqual({
        backend: "remote",
        containerd: "external",
        address: PIPE,
        reason: expect.stringContaining(name),
      });
    }
  });

  test.each([
    ["experimental off", { experimental: false }, /without experimental\b/],
    ["no address", { containerdAddress: undefined }, /without containerdAddress/],
    ["env var unset", { env: {} }, /without DOCKER_WINDOWS_CONTAINERD/],
    [
      "env var empty",
      { env: { DOCKER_WINDOWS_CONTAINERD: "", DOCKER_WINDOWS_CONTAINERD_RUNTIME: "" } },
      /without DOCKER/,
    ],
  ])("one of the three missing (%s) → local", (_name, override, reason) => {
    const choice = chooseBackend(windows(WindowsBuild.RS5, { ...remoteInputs, ...override }));
    expect(choice.backend).toBe("local");
    expect(choice.reason).toMatch(reason);
  });

  test("an address that the rules do not use is named in the reason", () => {
    const choice = chooseBackend(windows(WindowsBuild.RS5, { containerdAddress: PIPE }));
    expect(choice.backend).toBe("local");
    expect(choice.reason).toContain(`containerdAddress ${JSON.stringify(PIPE)} ignored`);
  });

  test("npipe:// and tcp:// addresses work for the remote backend; a unix socket does not", () => {
    expect(
      chooseBackend(
        windows(WindowsBuild.RS5, { ...remoteInputs, containerdAddress: "npipe:////./pipe/ctrd" }),
      ),
    ).toMatchObject({ backend: "remote", address: "\\\\.\\pipe\\ctrd" });
    expect(
      chooseBackend(windows(WindowsBuild.RS5, { ...remoteInputs, containerdAddress: "tcp://10.0.0.2:2376" })),
    ).toMatchObject({ backend: "remote", address: "tcp://10.0.0.2:2376" });
    invalid(windows(WindowsBuild.RS5, { ...remoteInputs, containerdAddress: SOCKET }), /named pipe/);
  });

  test("explicit remote: the given pipe, or the default pipe", () => {
    expect(
      chooseBackend(windows(WindowsBuild.RS4, { backend: "remote", containerdAddress: PIPE })),
    ).toMatchObject({
      backend: "remote",
      address: PIPE,
    });
    expect(chooseBackend(windows(WindowsBuild.RS5, { backend: "remote" }))).toMatchObject({
      backend: "remote",
      containerd: "external",
      address: PIPE,
    });
  });

  test("explicit local wins over the opt-in; with an address it is a contradiction", () => {
    expect(chooseBackend(windows(WindowsBuild.RS5, { backend: "local", experimental: true }))).toMatchObject({
      backend: "local",
      hcsSchema: { major: 2, minor: 1 },
    });
    invalid(windows(WindowsBuild.RS5, { ...remoteInputs, backend: "local" }), /for the remote backend/);
  });

  test("an unknown or pre-RS1 build cannot run the local backend", () => {
    invalid({ os: "windows", env: {} }, /pass platform.windowsBuild/);
    invalid(windows(10586), /needs 14393 \(RS1/);
    expect(chooseBackend(windows(WindowsBuild.RS1)).backend).toBe("local");
  });
});

describe("Linux", () => {
  test("no address → remote with a managed containerd", () => {
    expect(chooseBackend(linux())).toEqual({
      backend: "remote",
      containerd: "managed",
      reason: expect.stringContaining("managed containerd"),
    });
  });

  test.each([
    [SOCKET, SOCKET],
    [`unix://${SOCKET}`, SOCKET],
    ["tcp://127.0.0.1:1234", "tcp://127.0.0.1:1234"],
  ])("address %s → that containerd", (address, expected) => {
    expect(chooseBackend(linux({ containerdAddress: address, probeSocket: () => "socket" }))).toMatchObject({
      backend: "remote",
      containerd: "external",
      address: expected,
    });
  });

  test("the Windows opt-in changes nothing on Linux", () => {
    const optIn = { experimental: true, env: { DOCKER_WINDOWS_CONTAINERD: "1" } };
    expect(chooseBackend(linux(optIn))).toMatchObject({ backend: "remote", containerd: "managed" });
    expect(chooseBackend(linux({ ...optIn, containerdAddress: SOCKET }))).toMatchObject({
      containerd: "external",
    });
  });

  test("explicit remote is the same as the default", () => {
    expect(chooseBackend(linux({ backend: "remote" }))).toMatchObject({
      backend: "remote",
      containerd: "managed",
    });
    expect(chooseBackend(linux({ backend: "remote", containerdAddress: SOCKET }))).toMatchObject({
      containerd: "external",
      address: SOCKET,
    });
  });

  test("a Windows pipe name is refused", () => {
    invalid(linux({ containerdAddress: PIPE }), /Windows named pipe, but this is linux/);
    invalid(linux({ backend: "remote", containerdAddress: "npipe:////./pipe/x" }), /named pipe/);
  });

  test("an address that exists but is not a socket is refused; a missing one is allowed", () => {
    invalid(
      linux({ containerdAddress: "/etc/containerd/config.toml", probeSocket: () => "not-socket" }),
      /exists but is not a socket/,
    );
    const waiting = chooseBackend(linux({ containerdAddress: SOCKET, probeSocket: () => "missing" }));
    expect(waiting).toMatchObject({ backend: "remote", containerd: "external" });
    expect(waiting.reason).toMatch(/no socket there yet/);
  });

  test("malformed addresses are refused", () => {
    invalid(linux({ containerdAddress: "relative/containerd.sock" }), /must be absolute/);
    invalid(linux({ containerdAddress: "http://host:1" }), /unsupported containerd address scheme/);
  });

  test("an empty address counts as none", () => {
    expect(chooseBackend(linux({ containerdAddress: "  " }))).toMatchObject({ containerd: "managed" });
  });

  test("explicit local needs a vmcompute library; with one it emulates a Windows build", () => {
    invalid(linux({ backend: "local" }), /vmcompute\.dll.*pass vmcomputeLibrary/s);
    expect(chooseBackend(linux({ backend: "local", vmcomputeLibrary: "/x/libvmcompute.so" }))).toMatchObject({
      backend: "local",
      vmcomputeLibrary: "/x/libvmcompute.so",
      windowsBuild: WindowsBuild.LTSC2022,
      hcsSchema: { major: 2, minor: 1 },
    });
    expect(
      chooseBackend(
        linux({ backend: "local", vmcomputeLibrary: "/x/lib.so", windowsBuild: WindowsBuild.RS3 }),
      ),
    ).toMatchObject({ windowsBuild: WindowsBuild.RS3, hcsSchema: { major: 1, minor: 0 } });
    invalid(
      linux({ backend: "local", vmcomputeLibrary: "/x/lib.so", containerdAddress: SOCKET }),
      /remote backend/,
    );
  });

  test("a vmcompute library alone does not switch Linux to local", () => {
    expect(chooseBackend(linux({ vmcomputeLibrary: "/x/lib.so" }))).toMatchObject({ backend: "remote" });
  });
});

describe("other hosts", () => {
  test("remote needs an address (no managed containerd off Linux)", () => {
    invalid({ os: "other", env: {} }, /only runs on Linux/);
    expect(chooseBackend({ os: "other", env: {}, containerdAddress: "tcp://vm:2375" })).toMatchObject({
      backend: "remote",
      address: "tcp://vm:2375",
    });
  });
});

describe("createClient", () => {
  test("refuses impossible combinations before connecting or starting anything", async () => {
    await expect(createClient({ platform: { os: "linux" }, backend: "local" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(createClient({ platform: { os: "linux" }, containerdAddress: PIPE })).rejects.toThrow(
      /named pipe/,
    );
    // /etc exists on every Linux host and is not a socket: the real probe runs.
    await expect(createClient({ platform: { os: "linux" }, containerdAddress: "/etc" })).rejects.toThrow(
      /exists but is not a socket/,
    );
  });

  test("an external address gives a remote client without connecting", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "lcd-factory-"));
    const client = await createClient({
      platform: { os: "linux" },
      containerdAddress: "/nonexistent/containerd.sock",
      stateDir,
    });
    try {
      expect(client.backend).toBe("remote");
      expect(client.choice).toMatchObject({
        containerd: "external",
        address: "/nonexistent/containerd.sock",
      });
      expect(client.managedContainerd).toBeUndefined();
    } finally {
      await client.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe("every combination", () => {
  const addresses = fc.constantFrom(
    undefined,
    "",
    PIPE,
    "npipe:////./pipe/x",
    SOCKET,
    `unix://${SOCKET}`,
    "tcp://127.0.0.1:1",
    "relative.sock",
    "http://x:1",
  );
  const inputs = fc.record({
    os: fc.constantFrom("linux" as const, "windows" as const, "other" as const),
    windowsBuild: fc.option(fc.constantFrom(10586, ...Object.values(WindowsBuild)), { nil: undefined }),
    env: fc.record({
      DOCKER_WINDOWS_CONTAINERD: fc.constantFrom(undefined, "", "1"),
      DOCKER_WINDOWS_CONTAINERD_RUNTIME: fc.constantFrom(undefined, "", "1"),
    }),
    experimental: fc.option(fc.boolean(), { nil: undefined }),
    containerdAddress: addresses,
    backend: fc.constantFrom(undefined, "local" as const, "remote" as const),
    vmcomputeLibrary: fc.constantFrom(undefined, "/x/lib.so"),
    probe: fc.constantFrom("socket" as const, "missing" as const, "not-socket" as const),
  });

  test("either a choice that follows the rules, or an InvalidArgumentError; nothing else", () => {
    fc.assert(
      fc.property(inputs, ({ probe, ...rest }) => {
        let choice: ReturnType<typeof chooseBackend>;
        try {
          choice = chooseBackend({ ...rest, probeSocket: () => probe });
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        expect(choice.reason).not.toBe("");
        if (rest.backend !== undefined) expect(choice.backend).toBe(rest.backend);
        if (rest.os === "linux" && rest.backend === undefined) expect(choice.backend).toBe("remote");
        if (choice.backend === "local") {
          expect(choice.hcsSchema).toEqual(
            choice.windowsBuild >= WindowsBuild.RS5 ? { major: 2, minor: 1 } : { major: 1, minor: 0 },
          );
          expect(rest.containerdAddress?.trim() && rest.backend === "local").toBeFalsy();
        } else if (choice.containerd === "managed") {
          expect(rest.os).toBe("linux");
        } else if (rest.os !== "windows") {
          expect(choice.address).not.toMatch(/pipe/);
        }
        if (rest.os === "windows" && rest.backend === undefined && choice.backend === "remote") {
          expect(rest.experimental).toBe(true);
          expect(rest.env.DOCKER_WINDOWS_CONTAINERD || rest.env.DOCKER_WINDOWS_CONTAINERD_RUNTIME).toBe("1");
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
