import { describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { parseAddRuntime, parseDaemonJson } from "../../src/runtime/daemon-json.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";

function rejection(run: () => unknown): InvalidArgumentError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error("expected an InvalidArgumentError, nothing was thrown");
}

const runtimesDocument = (runtimes: unknown) => JSON.stringify({ runtimes });

describe("daemon.json runtime entries: every refusal names the runtime and the key", () => {
  test.each<[string, unknown, RegExp]>([
    [
      "a shim key (shim config is set in code only)",
      { custom: { path: "/usr/bin/crun", shim: { binary: "containerd-shim-foo-v1" } } },
      /runtime 'custom': key 'shim' is not allowed in daemon\.json; shim configuration is set in code only/,
    ],
    [
      "path together with runtimeType",
      { custom: { path: "/usr/bin/crun", runtimeType: "io.containerd.runc.v2" } },
      /runtime 'custom': 'path' and 'runtimeType' cannot both be set/,
    ],
    [
      "options without runtimeType",
      { custom: { path: "/usr/bin/crun", options: { BinaryName: "crun" } } },
      /runtime 'custom': 'options' is only allowed with 'runtimeType'/,
    ],
    [
      "runtimeArgs without path",
      { custom: { runtimeType: "io.containerd.runc.v2", runtimeArgs: ["--debug"] } },
      /runtime 'custom': 'runtimeArgs' is only allowed with 'path'/,
    ],
    [
      "neither path nor runtimeType",
      { custom: {} },
      /runtime 'custom': one of 'path' or 'runtimeType' is required/,
    ],
    [
      "an unknown key",
      { custom: { path: "/usr/bin/crun", runtimeargs: ["x"] } },
      /runtime 'custom': unknown key 'runtimeargs' \(allowed: path, runtimeArgs, runtimeType, options\)/,
    ],
    ["the reserved name runc", { runc: { path: "/usr/bin/runc" } }, /runtime name 'runc' is reserved/],
    ["runc in another case", { RunC: { path: "/usr/bin/runc" } }, /runtime name 'runc' is reserved/],
    [
      "the stock name io.containerd.runc.v2",
      { "io.containerd.runc.v2": { path: "/usr/bin/runc" } },
      /runtime name 'io\.containerd\.runc\.v2' is reserved/,
    ],
    [
      "the stock name io.containerd.runtime.v1.linux",
      { "io.containerd.runtime.v1.linux": { path: "/usr/bin/runc" } },
      /runtime name 'io\.containerd\.runtime\.v1\.linux' is reserved/,
    ],
    [
      "a name with a slash",
      { "my/runtime": { path: "/usr/bin/crun" } },
      /runtime name 'my\/runtime' is invalid: it must not contain '\/'/,
    ],
    [
      "an absolute name",
      { "/usr/bin/evil": { path: "/usr/bin/crun" } },
      /runtime name '\/usr\/bin\/evil' is invalid: .*absolute path/,
    ],
    ["an empty name", { "": { path: "/usr/bin/crun" } }, /runtime name must not be empty/],
    [
      "a name spelled twice",
      { Kata: { path: "/a" }, kata: { path: "/b" } },
      /runtime 'kata' is defined twice in .*'runtimes' \(as 'Kata' and 'kata'\)/,
    ],
    [
      "path of the wrong type",
      { custom: { path: 42 } },
      /runtime 'custom': 'path' must be a non-empty string, got a number/,
    ],
    [
      "an empty path",
      { custom: { path: "" } },
      /runtime 'custom': 'path' must be a non-empty string, got an empty string/,
    ],
    [
      "a relative path with a slash",
      { custom: { path: "bin/crun" } },
      /runtime 'custom': 'path' must be absolute or a command name found on PATH/,
    ],
    [
      "runtimeArgs that is not an array of strings",
      { custom: { path: "/usr/bin/crun", runtimeArgs: ["--debug", 1] } },
      /runtime 'custom': 'runtimeArgs' must be an array of strings/,
    ],
    [
      "runtimeArgs as a string",
      { custom: { path: "/usr/bin/crun", runtimeArgs: "--debug" } },
      /runtime 'custom': 'runtimeArgs' must be an array of strings, got a string/,
    ],
    [
      "runtimeType of the wrong type",
      { custom: { runtimeType: ["io.containerd.runc.v2"] } },
      /runtime 'custom': 'runtimeType' must be a non-empty string, got an array/,
    ],
    [
      "a runtimeType that is a relative path",
      { custom: { runtimeType: "shims/containerd-shim-x" } },
      /runtime 'custom': 'runtimeType' 'shims\/containerd-shim-x' is neither a containerd shim name/,
    ],
    [
      "options that is not an object",
      { custom: { runtimeType: "io.containerd.kata.v2", options: "x" } },
      /runtime 'custom': 'options' must be an object, got a string/,
    ],
    [
      "an entry that is not an object",
      { custom: "/usr/bin/crun" },
      /runtime 'custom': its configuration must be an object, got a string/,
    ],
    [
      "an unknown runc option key",
      { custom: { runtimeType: "io.containerd.runc.v2", options: { SystemdCgroups: true } } },
      /runtime 'custom': unknown option 'SystemdCgroups' for runtimeType 'io\.containerd\.runc\.v2' \(containerd\.runc\.v1\.Options accepts: .*SystemdCgroup/,
    ],
    [
      "a runc option of the wrong type",
      { custom: { runtimeType: "io.containerd.runc.v2", options: { SystemdCgroup: "true" } } },
      /runtime 'custom': option 'SystemdCgroup' must be a boolean, got a string/,
    ],
    [
      "a negative IoUid",
      { custom: { runtimeType: "io.containerd.runc.v2", options: { IoUid: -1 } } },
      /runtime 'custom': option 'IoUid' must be an unsigned 32-bit integer, got a number/,
    ],
    [
      "an unknown generic option",
      { custom: { runtimeType: "io.containerd.kata.v2", options: { ConfigFile: "/etc/kata.toml" } } },
      /runtime 'custom': unknown option 'ConfigFile' for runtimeType 'io\.containerd\.kata\.v2' \(runtimeoptions\.v1\.Options accepts: TypeUrl, ConfigPath, ConfigBody\)/,
    ],
    [
      "an unknown runhcs enum value",
      { custom: { runtimeType: "io.containerd.runhcs.v1", options: { SandboxIsolation: "VM" } } },
      /runtime 'custom': option 'SandboxIsolation' must be one of PROCESS, HYPERVISOR/,
    ],
  ])("%s", (_, runtimes, message) => {
    expect(rejection(() => parseDaemonJson(runtimesDocument(runtimes))).message).toMatch(message);
    // The registry applies the same rules to runtimes handed to it in code.
    expect(
      rejection(() => new RuntimeRegistry({ stateDir: "/nonexistent", runtimes: runtimes as never })).message,
    ).toMatch(message);
  });
});

describe("daemon.json documents", () => {
  test("malformed JSON is an InvalidArgumentError carrying the parser's message", () => {
    const error = rejection(() => parseDaemonJson('{"runtimes": {'));
    expect(error.message).toMatch(/^daemon\.json is not valid JSON: /);
    expect(error.message).toContain((error.cause as Error).message);
  });

  test.each<[unknown, RegExp]>([
    ["[]", /daemon\.json must hold a JSON object, got an array/],
    ["null", /daemon\.json must hold a JSON object, got null/],
    ['{"runtimes": []}', /daemon\.json 'runtimes' must be an object .* got an array/],
    ['{"default-runtime": 3}', /daemon\.json 'default-runtime' must be a non-empty string, got a number/],
  ])("%s is refused", (text, message) => {
    expect(rejection(() => parseDaemonJson(text)).message).toMatch(message);
  });

  test("runtimes and default-runtime are read, names lower-cased, other keys ignored", () => {
    const settings = parseDaemonJson({
      "log-level": "debug",
      "default-runtime": "crun",
      runtimes: {
        CRUN: { path: "/usr/bin/crun" },
        debug: { path: "runc", runtimeArgs: ["--debug"] },
        kata: { runtimeType: "io.containerd.kata.v2", options: { ConfigPath: "/etc/kata.toml" } },
      },
    });
    expect(settings).toEqual({
      defaultRuntime: "crun",
      runtimes: {
        crun: { path: "/usr/bin/crun" },
        debug: { path: "runc", runtimeArgs: ["--debug"] },
        kata: { runtimeType: "io.containerd.kata.v2", options: { ConfigPath: "/etc/kata.toml" } },
      },
    });
  });

  test("a document without runtime keys yields nothing", () => {
    expect(parseDaemonJson('{"storage-driver": "overlay2"}')).toEqual({});
  });
});

describe("--add-runtime", () => {
  test("name=path, lower-cased, split at the first '='", () => {
    expect(parseAddRuntime("CRUN=/usr/bin/crun")).toEqual({
      name: "crun",
      config: { path: "/usr/bin/crun" },
    });
    expect(parseAddRuntime("odd=/opt/a=b")).toEqual({ name: "odd", config: { path: "/opt/a=b" } });
  });

  test.each<[string, RegExp]>([
    ["crun", /--add-runtime 'crun' must have the form name=path/],
    ["=/usr/bin/crun", /must have the form name=path/],
    ["crun=", /must have the form name=path/],
    ["runc=/usr/bin/runc", /runtime name 'runc' is reserved/],
    ["a/b=/usr/bin/crun", /runtime name 'a\/b' is invalid/],
  ])("%s is refused", (flag, message) => {
    expect(rejection(() => parseAddRuntime(flag)).message).toMatch(message);
  });

  test("a name given by both --add-runtime and daemon.json is refused", () => {
    const error = rejection(
      () =>
        new RuntimeRegistry({
          stateDir: "/nonexistent",
          runtimes: { crun: { path: "/usr/bin/crun" } },
          addRuntimes: ["Crun=/usr/local/bin/crun"],
        }),
    );
    expect(error.message).toMatch(/runtime 'crun' is defined twice \(by --add-runtime and in runtimes\)/);
  });

  test("the same name given by two --add-runtime flags is refused", () => {
    const error = rejection(
      () => new RuntimeRegistry({ stateDir: "/nonexistent", addRuntimes: ["crun=/a", "CRUN=/b"] }),
    );
    expect(error.message).toMatch(
      /runtime 'crun' is defined twice \(by --add-runtime and by another --add-runtime\)/,
    );
  });
});
