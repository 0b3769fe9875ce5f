// fast-check against a real containerd: newContainer with fuzzed ids, spec fields, labels and runtime
// names, and exec with fuzzed exec ids. Valid input works; invalid input throws a typed error before
// anything is created; no other error escapes; afterwards containerd holds no container and the
// state dir no FIFO directory or file.
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { Container, Process, Task } from "../../src/libcontainerd/types/client.js";
import { LibcontainerdError } from "../../src/libcontainerd/types/errors.js";
import type { OciSpec } from "../../src/oci/spec.js";
import { useRemote } from "../harness/remote.js";

const fx = useRemote("fuzz");

const CONTAINERD_IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const isValidId = (id: string) => CONTAINERD_IDENTIFIER.test(id) && id.length <= 76;

const alnum = fc.stringMatching(/^[A-Za-z0-9]{1,10}$/);
const validId = fc
  .tuple(alnum, fc.array(fc.tuple(fc.constantFrom(".", "_", "-"), alnum), { maxLength: 4 }))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(""));
const anyId = fc.oneof(
  { weight: 3, arbitrary: validId },
  fc.string({ maxLength: 80 }),
  fc.tuple(validId, fc.constantFrom("/", "..", " ", "\0", "é", "-", "")).map(([id, junk]) => id + junk),
);

const ABSENT = Symbol("absent");
type Maybe<T> = T | typeof ABSENT;
const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<Maybe<T>> =>
  fc.oneof({ weight: 4, arbitrary }, fc.constant(ABSENT));

interface SpecFuzz {
  ociVersion: Maybe<unknown>;
  args: Maybe<unknown>;
  rootPath: Maybe<unknown>;
  hostname: Maybe<string>;
  annotations: Maybe<Record<string, string>>;
  extra: Record<string, unknown>;
}

function specFuzz(rootfs: string, aFile: string): fc.Arbitrary<SpecFuzz> {
  return fc.record({
    ociVersion: maybe(
      fc.oneof({ weight: 4, arbitrary: fc.constant("1.0.2-dev") }, fc.string(), fc.integer()),
    ),
    args: maybe(
      fc.oneof(
        { weight: 4, arbitrary: fc.constant(["true"]) },
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
        fc.string(),
      ),
    ),
    rootPath: maybe(
      fc.oneof(
        { weight: 4, arbitrary: fc.constant(rootfs) },
        fc.constantFrom("rootfs", "./rootfs", "/nonexistent/rootfs", aFile, "", "/"),
        fc.string({ maxLength: 20 }),
        fc.integer(),
      ),
    ),
    hostname: maybe(fc.string({ maxLength: 20 })),
    annotations: maybe(
      fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
    ),
    extra: fc.dictionary(
      fc
        .string({ maxLength: 8 })
        .filter((k) => !["ociVersion", "process", "root", "linux", "windows", "__proto__"].includes(k)),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 3 },
    ),
  });
}

function buildSpec(base: OciSpec, fuzz: SpecFuzz): OciSpec {
  const spec: Record<string, unknown> = { ...base, ...fuzz.extra };
  const process = { ...base.process } as Record<string, unknown>;
  const root = { ...base.root } as Record<string, unknown>;
  const set = (target: Record<string, unknown>, key: string, value: Maybe<unknown>) => {
    if (value === ABSENT) delete target[key];
    else target[key] = value;
  };
  set(spec, "ociVersion", fuzz.ociVersion);
  set(process, "args", fuzz.args);
  set(root, "path", fuzz.rootPath);
  set(spec, "hostname", fuzz.hostname);
  set(spec, "annotations", fuzz.annotations);
  spec.process = process;
  spec.root = root;
  return spec as OciSpec;
}

/**
 * What newContainer's contract says about the spec: the oracle, written from the docs. Without a
 * snapshot the rootfs is any absolute host path to a directory (a generated "/" is one: CI found it).
 */
function specIsValid(fuzz: SpecFuzz): boolean {
  return (
    typeof fuzz.ociVersion === "string" &&
    Array.isArray(fuzz.args) &&
    fuzz.args.length > 0 &&
    isHostDirectory(fuzz.rootPath)
  );
}

function isHostDirectory(path: unknown): boolean {
  return typeof path === "string" && isAbsolute(path) && existsSync(path) && statSync(path).isDirectory();
}

/** containerd stores labels as bolt keys, which may not be empty. */
function labelsAreValid(labels: Record<string, string> | undefined): boolean {
  return !labels || !Object.hasOwn(labels, "");
}

function fifoEntries(): string[] {
  const dir = join(fx.ctrd.stateDir, fx.namespace);
  return existsSync(dir) ? readdirSync(dir) : [];
}

interface BranchCounts {
  created: number;
  rejected: number;
}

/**
 * newContainer with fuzzed ids, specs, labels and runtime names: valid input creates a container
 * (deleted again at once), invalid input is a typed error. Counts what each branch got.
 */
async function fuzzNewContainer(runs: { numRuns: number; seed?: number }): Promise<BranchCounts> {
  const aFile = join(fx.ctrd.dir, "not-a-directory");
  writeFileSync(aFile, "");
  const rootfs = fx.ctrd.rootfs;
  const base = fx.spec(["true"]);
  let created = 0;
  let rejected = 0;
  await fc.assert(
    fc.asyncProperty(
      anyId,
      specFuzz(rootfs, aFile),
      fc.option(
        fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 24 }), {
          maxKeys: 3,
        }),
        {
          nil: undefined,
        },
      ),
      fc.option(
        fc.oneof(
          fc.constantFrom("runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux"),
          fc.string({ maxLength: 20 }),
        ),
        { nil: undefined, freq: 3 },
      ),
      async (id, fuzz, labels, runtime) => {
        let container: Container | undefined;
        try {
          container = await fx.client.newContainer(id, buildSpec(base, fuzz), {
            ...(labels ? { labels } : {}),
            ...(runtime !== undefined ? { runtime } : {}),
          });
        } catch (err) {
          if (!(err instanceof LibcontainerdError)) throw err;
          expect(err.code).toBe("invalid_argument");
          // Only input the oracle calls invalid (or a runtime name nobody checked) may be refused.
          if (runtime === undefined)
            expect(isValidId(id) && specIsValid(fuzz) && labelsAreValid(labels)).toBe(false);
          rejected += 1;
          return;
        }
        try {
          expect(isValidId(id)).toBe(true);
          expect(specIsValid(fuzz)).toBe(true);
          expect(labelsAreValid(labels)).toBe(true);
          expect((await container.info()).id).toBe(id);
        } finally {
          // A failed run leaves nothing for the tests after it to trip over.
          await container.delete();
        }
        created += 1;
      },
    ),
    runs,
  );
  return { created, rejected };
}

/**
 * A seed whose 200 runs make only 4 valid inputs (fast-check 4.11.0): about one input in twelve is
 * valid, 17 in 200 runs on average, but one seed in a few thousand makes 5 or fewer.
 */
const SEED_WITH_FEW_VALID = 2133;

/**
 * Both branches must really be exercised: a generator change could starve one. At least one each,
 * not "more than 5", which a sound generator misses too (SEED_WITH_FEW_VALID).
 */
function expectBothBranches({ created, rejected }: BranchCounts): void {
  expect(created).toBeGreaterThan(0);
  expect(rejected).toBeGreaterThan(0);
}

describe("fuzzing the remote client against a real containerd", () => {
  test("newContainer: valid ids and specs create a container, anything else is a typed error; nothing leaks", async () => {
    expectBothBranches(await fuzzNewContainer({ numRuns: 200 }));
    expect(await fx.client.listContainers()).toEqual([]);
    expect(fifoEntries()).toEqual([]);
  });

  test("newContainer, replayed with a seed that makes few valid inputs: still passes", async () => {
    expectBothBranches(await fuzzNewContainer({ numRuns: 200, seed: SEED_WITH_FEW_VALID }));
  });

  test("exec ids: a valid one runs, an invalid one is InvalidArgumentError before any FIFO exists", async () => {
    // Outlives any number of runs (a raised numRuns ran past a 120 s sleep: "cannot exec in a stopped
    // state"); forceDelete ends it.
    const container = await fx.client.newContainer("exec-host", fx.spec(["sleep", "86400"]));
    const task: Task = await container.newTask();
    await task.start();
    try {
      await fc.assert(
        fc.asyncProperty(
          anyId.filter((id) => id !== "exec-host"),
          async (execId) => {
            let process: Process | undefined;
            try {
              process = await task.exec(
                execId,
                { args: ["true"], cwd: "/", user: { uid: 0, gid: 0 } },
                { stdio: { stdout: true, stderr: true } },
              );
            } catch (err) {
              if (!(err instanceof LibcontainerdError) || err.code !== "invalid_argument") throw err;
              expect(isValidId(execId)).toBe(false);
            }
            if (process) {
              const exited = process.wait();
              try {
                expect(isValidId(execId)).toBe(true);
                expect((await exited).exitCode).toBe(0);
              } finally {
                // A failed run leaves no exec or FIFO behind for the runs fast-check shrinks with next.
                await exited;
                await process.delete();
              }
            }
            const execFifoDir = join(fx.ctrd.stateDir, fx.namespace, "exec-host");
            expect(existsSync(execFifoDir) ? readdirSync(execFifoDir) : []).toEqual([]);
          },
        ),
        { numRuns: 100 },
      );
    } finally {
      await task.forceDelete();
      await container.delete();
    }
    expect(await fx.client.listContainers()).toEqual([]);
    expect(fifoEntries()).toEqual([]);
  });

  // Found by the fuzzing above: containerd's bolt store refuses an empty label key with "key
  // required" (gRPC Unknown), which reached the caller as InternalError.
  test("an empty label key is refused as InvalidArgumentError, before containerd", async () => {
    const refused = await fx.client
      .newContainer("empty-label-key", fx.spec(["true"]), { labels: { "": "value" } })
      .then(
        (container) => container.delete().then(() => undefined),
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(LibcontainerdError);
    expect((refused as LibcontainerdError).code).toBe("invalid_argument");
  });

  // Found by the flake hunt: a "__proto__" key (JSON.parse makes one) was dropped without a word.
  test("a __proto__ label key is refused as InvalidArgumentError, not dropped", async () => {
    const labels = JSON.parse('{"__proto__": "value", "kept": "yes"}') as Record<string, string>;
    const refused = await fx.client.newContainer("proto-label-key", fx.spec(["true"]), { labels }).then(
      (container) => container.delete().then(() => undefined),
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(LibcontainerdError);
    expect((refused as LibcontainerdError).code).toBe("invalid_argument");
  });
});
