// Runtimes proven against a real containerd 1.6: each runtime name resolves to a shim and options
// that containerd accepts, the container runs, and containerd's own record shows what was sent.
// Driven through the generated API so that only src/runtime is under test here.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Tasks } from "../../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { OptionsSchema } from "../../src/gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";
import { mkfifo, openFifoReader } from "../../src/libcontainerd/remote/fifo.js";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { defaultLinuxSpec } from "../../src/oci/defaults.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import type { ResolvedRuntime } from "../../src/runtime/types.js";
import { requireBinary } from "../harness/binaries.js";
import { startContainerd, type TestContainerd } from "../harness/containerd.js";
import { writeCrunWrapper } from "../harness/crun-wrapper.js";

const namespace = "runtimes";
/** Arguments a shell would mangle if the wrapper script quoted them wrongly. */
const hostileRuntimeArgs = [
  "--flag with spaces",
  "it's",
  '"double quoted"',
  "$(touch /tmp/lcd-runtime-pwned)",
  "`id`",
  "$HOME;|&<>*?",
  "two\nlines",
  "",
];

let ctrd: TestContainerd;
let containers: ReturnType<typeof serviceClient<typeof Containers>>;
let tasks: ReturnType<typeof serviceClient<typeof Tasks>>;
let crunWrapper: string;
let argvLogDir: string;

/**
 * A runtime that records each invocation's argv (NUL-separated, one file per call), drops the
 * runtimeArgs it was configured with, and execs runc with the shim's own arguments.
 */
function writeArgvLoggingRuntime(dir: string, configuredArgs: number): string {
  const path = join(dir, "argv-logging-runtime");
  writeFileSync(
    path,
    `#!/bin/sh
out=$(mktemp "${argvLogDir}/argv.XXXXXX") || exit 125
printf '%s\\0' "$@" > "$out"
shift ${configuredArgs}
exec '${requireBinary("runc")}' "$@"
`,
    { mode: 0o755 },
  );
  return path;
}

beforeAll(async () => {
  requireBinary("crun");
  requireBinary("unshare");
  requireBinary("containerd-shim");
  ctrd = await startContainerd({ prefix: "lcd-runtimes-" });
  const transport = createContainerdTransport({ address: ctrd.address, namespace });
  containers = serviceClient(Containers, transport);
  tasks = serviceClient(Tasks, transport);
  crunWrapper = writeCrunWrapper(ctrd.dir);
  argvLogDir = join(ctrd.dir, "argv-log");
  mkdirSync(argvLogDir);
});
afterAll(async () => {
  await ctrd?.stop();
});

function registry(opts: { defaultRuntime?: string } = {}): RuntimeRegistry {
  return new RuntimeRegistry({
    stateDir: ctrd.stateDir,
    runtimes: {
      crun: { path: crunWrapper },
      logged: {
        path: writeArgvLoggingRuntime(ctrd.dir, hostileRuntimeArgs.length),
        runtimeArgs: hostileRuntimeArgs,
      },
    },
    ...opts,
  });
}

function collect(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      out += chunk;
    });
    stream.on("end", () => resolve(out));
    stream.on("error", reject);
  });
}

interface Run {
  stdout: string;
  stderr: string;
  exitStatus: number;
  /** containerd's stored record of the container's runtime. */
  recorded: { name: string; optionsTypeUrl: string | undefined; optionsValue: Uint8Array | undefined };
}

/** Containers.Create with the resolved runtime, then a task with stdout/stderr FIFOs, run to exit. */
async function run(id: string, runtime: ResolvedRuntime, args: string[]): Promise<Run> {
  const spec = defaultLinuxSpec({ args, rootfs: ctrd.rootfs, cgroupsPath: `${ctrd.cgroupParent}/${id}` });
  await containers.create({
    container: {
      id,
      runtime: {
        name: runtime.shim,
        ...(runtime.options
          ? { options: { typeUrl: runtime.options.typeUrl, value: runtime.options.value } }
          : {}),
      },
      spec: {
        typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
        value: Buffer.from(JSON.stringify(spec)),
      },
    },
  });
  try {
    const { container } = await containers.get({ id });
    const fifoDir = join(ctrd.stateDir, namespace, id);
    mkdirSync(fifoDir, { recursive: true, mode: 0o700 });
    const stdoutPath = join(fifoDir, "stdout");
    const stderrPath = join(fifoDir, "stderr");
    await mkfifo(stdoutPath);
    await mkfifo(stderrPath);
    const stdout = collect(openFifoReader(stdoutPath));
    const stderr = collect(openFifoReader(stderrPath));
    await tasks.create({ containerId: id, stdout: stdoutPath, stderr: stderrPath });
    const waited = tasks.wait({ containerId: id });
    await tasks.start({ containerId: id });
    const exit = await waited;
    await tasks.delete({ containerId: id });
    return {
      stdout: await stdout,
      stderr: await stderr,
      exitStatus: exit.exitStatus,
      recorded: {
        name: container?.runtime?.name ?? "",
        optionsTypeUrl: container?.runtime?.options?.typeUrl,
        optionsValue: container?.runtime?.options?.value,
      },
    };
  } finally {
    await containers.delete({ id });
  }
}

describe.each([
  ["runc", "io.containerd.runc.v2", "containerd.runc.v1.Options", "runc"],
  ["io.containerd.runc.v2", "io.containerd.runc.v2", "containerd.runc.v1.Options", "runc"],
  [
    "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v1.linux",
    "containerd.linux.runc.RuncOptions",
    undefined,
  ],
  ["crun", "io.containerd.runc.v2", "containerd.runc.v1.Options", "crun"],
])("runtime %s", (name, shim, typeUrl, binaryName) => {
  const idBase = name.replaceAll(".", "-");

  test(`echo runs with the right output and exit code; containerd records ${shim} with ${typeUrl}`, async () => {
    const resolved = await registry().resolve(name);
    const result = await run(`${idBase}-echo`, resolved, ["/bin/echo", "hello from", name]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(`hello from ${name}\n`);
    expect(result.exitStatus).toBe(0);
    expect(result.recorded.name).toBe(shim);
    expect(result.recorded.optionsTypeUrl).toBe(typeUrl);
    if (binaryName !== undefined) {
      const recorded = fromBinary(OptionsSchema, result.recorded.optionsValue ?? new Uint8Array());
      expect(recorded.binaryName).toBe(binaryName === "crun" ? crunWrapper : binaryName);
      expect(recorded.root).toBe(join(ctrd.stateDir, "runtime-runc"));
    }
  });

  test("a non-zero exit status comes back unchanged", async () => {
    const resolved = await registry().resolve(name);
    const result = await run(`${idBase}-exit`, resolved, ["/bin/sh", "-c", "echo to-stderr >&2; exit 3"]);
    expect([result.stdout, result.stderr, result.exitStatus]).toEqual(["", "to-stderr\n", 3]);
  });
});

test.each([
  ["runc", "state.json"],
  ["io.containerd.runtime.v1.linux", "state.json"],
  ["crun", "status"],
])(
  "the shim honours %s's options: the runtime's state lands in <stateDir>/runtime-runc as %s",
  async (name, stateFile) => {
    // Proves the options were decoded by the shim, not merely stored by containerd: the state goes to
    // our Root (the shims add the namespace), and crun's `status` file, where runc keeps
    // `state.json`, catches the wrapper silently running runc.
    const resolved = await registry().resolve(name);
    const id = `${name.replaceAll(".", "-")}-state`;
    const spec = defaultLinuxSpec({
      args: ["/bin/sleep", "30"],
      rootfs: ctrd.rootfs,
      cgroupsPath: `${ctrd.cgroupParent}/${id}`,
    });
    await containers.create({
      container: {
        id,
        runtime: { name: resolved.shim, ...(resolved.options ? { options: resolved.options } : {}) },
        spec: {
          typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
          value: Buffer.from(JSON.stringify(spec)),
        },
      },
    });
    try {
      await tasks.create({ containerId: id });
      const files = readdirSync(join(ctrd.stateDir, "runtime-runc", namespace, id));
      expect(files).toContain(stateFile);
      expect(files).not.toContain(stateFile === "status" ? "state.json" : "status");
      await tasks.kill({ containerId: id, signal: 9, all: true });
      await tasks.wait({ containerId: id }).catch(() => undefined);
      await tasks.delete({ containerId: id });
    } finally {
      await containers.delete({ id });
    }
  },
);

test("a custom runtime with runtimeArgs receives exactly those arguments, before the shim's", async () => {
  const resolved = await registry().resolve("logged");
  const result = await run("logged-echo", resolved, ["/bin/echo", "through the wrapper"]);
  expect([result.stdout, result.exitStatus]).toEqual(["through the wrapper\n", 0]);
  const invocations = readdirSync(argvLogDir).map((file) =>
    readFileSync(join(argvLogDir, file), "utf8").slice(0, -1).split("\0"),
  );
  expect(invocations.length).toBeGreaterThanOrEqual(2);
  for (const argv of invocations) {
    expect(argv.slice(0, hostileRuntimeArgs.length)).toEqual(hostileRuntimeArgs);
  }
  const subcommands = invocations.map((argv) => argv.slice(hostileRuntimeArgs.length));
  expect(subcommands.some((argv) => argv.includes("create") && argv.includes("logged-echo"))).toBe(true);
  expect(subcommands.some((argv) => argv.includes("start"))).toBe(true);
  expect(() => readFileSync("/tmp/lcd-runtime-pwned")).toThrow();
});

test("defaultRuntime switches what a container without a runtime gets; a per-container runtime overrides it", async () => {
  const crunByDefault = registry({ defaultRuntime: "crun" });
  const unnamed = await run("default-crun", await crunByDefault.resolve(), ["/bin/echo", "default"]);
  expect(unnamed.stdout).toBe("default\n");
  expect(fromBinary(OptionsSchema, unnamed.recorded.optionsValue ?? new Uint8Array()).binaryName).toBe(
    crunWrapper,
  );

  const overridden = await run("override-v1", await crunByDefault.resolve("io.containerd.runtime.v1.linux"), [
    "/bin/echo",
    "override",
  ]);
  expect(overridden.stdout).toBe("override\n");
  expect(overridden.recorded.name).toBe("io.containerd.runtime.v1.linux");
});

test("a configured runtime whose binary is missing fails at create with InvalidArgumentError, before containerd", async () => {
  const broken = new RuntimeRegistry({ stateDir: ctrd.stateDir, addRuntimes: ["gone=/nonexistent/crun"] });
  const error = await broken.resolve("gone").catch((err: unknown) => err);
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect((error as Error).message).toMatch(/runtime 'gone': its binary '\/nonexistent\/crun' was not found/);
  expect((await containers.list({})).containers).toEqual([]);
});
