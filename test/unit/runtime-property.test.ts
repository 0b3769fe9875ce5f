import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/libcontainerd/types/errors.js";
import { parseDaemonJson } from "../../src/runtime/daemon-json.js";
import type { LookPath } from "../../src/runtime/lookpath.js";
import { isPermissibleContainerdRuntimeName, RESERVED_RUNTIME_NAMES } from "../../src/runtime/names.js";
import { RuntimeRegistry } from "../../src/runtime/registry.js";
import type { RuntimeConfig } from "../../src/runtime/types.js";

let stateDir: string;
beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), "lcd-runtime-prop-"));
});
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** Every binary exists: these properties are about configuration, not the host. */
const everythingExists: LookPath = async (command) => command;

function registryFrom(document: unknown, lookPath: LookPath = everythingExists): RuntimeRegistry {
  const settings = parseDaemonJson(document);
  return new RuntimeRegistry({
    stateDir,
    wrapperDir: join(stateDir, "runtimes"),
    lookPath,
    ...(settings.runtimes ? { runtimes: settings.runtimes } : {}),
    ...(settings.defaultRuntime ? { defaultRuntime: settings.defaultRuntime } : {}),
  });
}

/** Runs `action`; anything thrown other than an InvalidArgumentError fails the property. */
async function onlyInvalidArgument(action: () => unknown): Promise<"ok" | "invalid"> {
  try {
    await action();
    return "ok";
  } catch (err) {
    if (err instanceof InvalidArgumentError) return "invalid";
    throw err;
  }
}

const text = fc.string({ maxLength: 16 }).filter((s) => !s.includes("\0"));
const runtimeName = fc
  .stringMatching(/^[a-zA-Z][a-zA-Z0-9._-]{0,15}$/)
  .filter((name) => !RESERVED_RUNTIME_NAMES.has(name.toLowerCase()));
const shimName = fc.stringMatching(/^io\.containerd\.[a-z]{1,8}\.v[1-3]$/);

const pathEntry = fc.record(
  {
    path: fc.constantFrom("runc", "crun", "/usr/bin/crun", "/opt/my runtime/bin/run'c"),
    runtimeArgs: fc.array(text, { maxLength: 4 }),
  },
  { requiredKeys: ["path"] },
);
const runcEntry = fc.record(
  {
    runtimeType: fc.constant("io.containerd.runc.v2"),
    options: fc.record(
      {
        BinaryName: text,
        Root: text,
        SystemdCgroup: fc.boolean(),
        NoPivotRoot: fc.boolean(),
        ShimCgroup: text,
        IoUid: fc.nat({ max: 2 ** 32 - 1 }),
        IoGid: fc.nat({ max: 2 ** 32 - 1 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ["runtimeType"] },
);
const runhcsEntry = fc.record({
  runtimeType: fc.constant("io.containerd.runhcs.v1"),
  options: fc.record(
    {
      Debug: fc.boolean(),
      DebugType: fc.constantFrom("NPIPE", "FILE", "ETW", 0, 1, 2),
      SandboxIsolation: fc.constantFrom("PROCESS", "HYPERVISOR", 0, 1),
      VmProcessorCount: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      LogLevel: text,
      DefaultContainerAnnotations: fc.dictionary(text, text, { maxKeys: 3 }),
    },
    { requiredKeys: [] },
  ),
});
const genericEntry = fc.record(
  {
    runtimeType: shimName,
    options: fc.record({ TypeUrl: text, ConfigPath: text, ConfigBody: text }, { requiredKeys: [] }),
  },
  { requiredKeys: ["runtimeType"] },
);
const validEntry: fc.Arbitrary<RuntimeConfig> = fc.oneof(pathEntry, runcEntry, runhcsEntry, genericEntry);

const validDocument = fc
  .uniqueArray(fc.tuple(runtimeName, validEntry), {
    maxLength: 5,
    selector: ([name]) => name.toLowerCase(),
  })
  .chain((entries) =>
    fc.record(
      {
        runtimes: fc.constant(Object.fromEntries(entries)),
        "default-runtime": fc.constantFrom("runc", "io.containerd.runc.v2", ...entries.map(([name]) => name)),
      },
      { requiredKeys: ["runtimes"] },
    ),
  );

/** Each breaks exactly one rule; the registry must refuse the document with InvalidArgumentError. */
const faults: Array<[string, (entry: Record<string, unknown>) => Record<string, unknown>]> = [
  ["a shim key", (entry) => ({ ...entry, shim: { binary: "x" } })],
  ["an unknown key", (entry) => ({ ...entry, runtimeargs: [] })],
  [
    "path with runtimeType",
    (entry) => ({ ...entry, path: "/usr/bin/crun", runtimeType: "io.containerd.runc.v2" }),
  ],
  ["options without runtimeType", (entry) => ({ path: "/usr/bin/crun", options: entry.options ?? {} })],
  ["runtimeArgs without path", () => ({ runtimeType: "io.containerd.x.v1", runtimeArgs: [] })],
  ["neither path nor runtimeType", () => ({})],
  ["a non-string path", () => ({ path: 7 })],
  ["runtimeArgs not strings", () => ({ path: "/usr/bin/crun", runtimeArgs: [null] })],
  ["an unknown runc option", () => ({ runtimeType: "io.containerd.runc.v2", options: { Binary: "crun" } })],
  ["a wrong-typed runc option", () => ({ runtimeType: "io.containerd.runc.v2", options: { IoUid: 1.5 } })],
  ["an unknown generic option", () => ({ runtimeType: "io.containerd.kata.v2", options: { Path: "/x" } })],
];

describe("property: random daemon.json documents", () => {
  test("valid documents build a registry in which every configured name and the default resolve", async () => {
    await fc.assert(
      fc.asyncProperty(validDocument, async (document) => {
        const registry = registryFrom(JSON.stringify(document));
        for (const [name, entry] of Object.entries(document.runtimes)) {
          const resolved = await registry.resolve(name);
          expect(resolved.name).toBe(name.toLowerCase());
          expect(resolved.shim).toBe(entry.runtimeType ?? "io.containerd.runc.v2");
        }
        const unnamed = await registry.resolve();
        expect(unnamed.name).toBe((document["default-runtime"] ?? "runc").toLowerCase());
      }),
      { numRuns: 150 },
    );
  });

  test("a document with one broken rule is refused with InvalidArgumentError", async () => {
    await fc.assert(
      fc.asyncProperty(
        validDocument.filter((document) => Object.keys(document.runtimes).length > 0),
        fc.nat(),
        fc.constantFrom(...faults),
        fc.constantFrom("entry", "reserved name", "slashed name", "unknown default"),
        async (document, pick, [, breakEntry], where) => {
          const names = Object.keys(document.runtimes);
          const victim = names[pick % names.length] ?? "";
          const runtimes: Record<string, unknown> = { ...document.runtimes };
          const broken: Record<string, unknown> = { ...document, runtimes };
          if (where === "entry") {
            runtimes[victim] = breakEntry({ ...(runtimes[victim] as Record<string, unknown>) });
          } else if (where === "reserved name") {
            runtimes[pick % 2 === 0 ? "runc" : "IO.containerd.runc.v2"] = runtimes[victim];
          } else if (where === "slashed name") {
            runtimes[`/${victim}`] = runtimes[victim];
          } else {
            broken["default-runtime"] = `${victim}-unknown`.replaceAll(".", "");
          }
          expect(await onlyInvalidArgument(() => registryFrom(JSON.stringify(broken)))).toBe("invalid");
        },
      ),
      { numRuns: 200 },
    );
  });

  test("arbitrary documents and names: a registry or InvalidArgumentError, and resolve only InvalidArgumentError", async () => {
    // Mostly valid entries, some near misses, some junk: a map is only usable when every entry is
    // valid, so junk has to be the minority for registries to get built at all.
    const nearMiss = fc
      .tuple(validEntry, fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }))
      .map(([entry, key, value]) => ({ ...entry, [key]: value }));
    const runtimeMap = fc.dictionary(
      fc.oneof(
        { arbitrary: runtimeName, weight: 8 },
        { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
        { arbitrary: fc.constantFrom("runc", "a/b", "/abs", "__proto__", "constructor"), weight: 1 },
      ),
      fc.oneof(
        { arbitrary: validEntry, weight: 8 },
        { arbitrary: nearMiss, weight: 1 },
        { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
      ),
      { maxKeys: 3 },
    );
    const document = fc.oneof(
      { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
      { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
      {
        arbitrary: fc.record(
          {
            runtimes: runtimeMap,
            "default-runtime": fc.oneof(
              fc.string({ maxLength: 12 }),
              runtimeName,
              fc.jsonValue({ maxDepth: 1 }),
            ),
          },
          { requiredKeys: [] },
        ),
        weight: 3,
      },
      { arbitrary: fc.record({ runtimes: runtimeMap }).map((doc) => JSON.stringify(doc)), weight: 3 },
    );
    const names = fc.array(
      fc.oneof(
        fc.string({ maxLength: 16 }),
        runtimeName,
        shimName,
        fc.constantFrom("RUNC", "io.containerd.runtime.v1.linux"),
      ),
      { maxLength: 4 },
    );
    // Half the binaries are missing, so the preflight check is exercised too.
    const lookPath = async (command: string) => (command.length % 2 === 0 ? command : undefined);
    let registriesWithCustomRuntimes = 0;
    await fc.assert(
      fc.asyncProperty(document, names, async (doc, requested) => {
        let registry: RuntimeRegistry | undefined;
        await onlyInvalidArgument(() => {
          registry = registryFrom(doc, lookPath);
        });
        if (!registry) return;
        const built = registry;
        if (built.list().some((runtime) => runtime.source === "configured")) registriesWithCustomRuntimes++;
        const configured = new Set(built.list().map((runtime) => runtime.name));
        for (const name of [undefined, ...requested, ...configured]) {
          const outcome = await onlyInvalidArgument(() => built.resolve(name));
          const effective = name === undefined || name === "" ? built.defaultRuntime : name;
          if (!configured.has(effective.toLowerCase())) {
            expect(outcome).toBe(isPermissibleContainerdRuntimeName(effective) ? "ok" : "invalid");
          }
        }
      }),
      { numRuns: 300 },
    );
    // Guards against a generator drift that would make the property vacuous.
    expect(registriesWithCustomRuntimes).toBeGreaterThan(15);
  });
});
