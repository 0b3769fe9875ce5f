// `node --import tsx bench/codec.ts [--rounds N] [--iterations K] [--cold]`: µs per message, protobuf-es
// against the compiled codec (src/libcontainerd/grpc/codec.ts), for what one null-IO lifecycle sends
// and receives (bench/cpu-profile.ts: Containers.Create/Update/Delete, Tasks.Create/Start/Wait/Delete):
// - encode: the request as the library builds it (an init object) to its bytes: protobuf-es's
//   `create()` + `toBinary()` (and the 5-byte gRPC frame copy the transport makes after it), against
//   the codec's `encode(init, 5)`;
// - decode: containerd's reply bytes to a message: `fromBinary()` against the codec's `decode()`.
// - the same codec built from closures rather than `new Function` (bench/codec-closures.ts).
// CPU time (process.cpuUsage, not wall), the subjects interleaved round by round, the median round.
// `--cold`: instead, each of the first 50 uses of a message type in fresh processes (compiling
// included), as a command-line run or a process's first lifecycles see them.
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
  create,
  type DescMessage,
  equals,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ContainerSchema,
  CreateContainerRequestSchema,
  CreateContainerResponseSchema,
  DeleteContainerRequestSchema,
  UpdateContainerRequestSchema,
  UpdateContainerResponseSchema,
} from "../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import {
  CreateTaskRequestSchema,
  CreateTaskResponseSchema,
  DeleteResponseSchema,
  DeleteTaskRequestSchema,
  StartRequestSchema,
  StartResponseSchema,
  WaitRequestSchema,
  WaitResponseSchema,
} from "../src/gen/github.com/containerd/containerd/api/services/tasks/v1/tasks_pb.js";
import { OptionsSchema } from "../src/gen/github.com/containerd/containerd/runtime/v2/runc/options/oci_pb.js";
import { codecOf } from "../src/libcontainerd/grpc/codec.js";
import { bareAny, jsonAny, TYPE_URL } from "../src/libcontainerd/remote/any.js";
import { defaultLinuxSpec } from "../src/oci/defaults.js";
import { closureCodec } from "./codec-closures.js";
import { median } from "./measure.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    iterations: { type: "string", default: "2000" },
    cold: { type: "boolean", default: false },
    "cold-child": { type: "string" },
  },
});

// ---- one lifecycle's messages, as the library builds them and as containerd answers ----
const id = "bench-codec-1";
const spec = defaultLinuxSpec({
  args: ["/bin/true"],
  rootfs: "/var/lib/ctrd/rootfs",
  cgroupsPath: `/cost-this/${id}`,
});
const runcOptions = bareAny(
  "containerd.runc.v1.Options",
  toBinary(
    OptionsSchema,
    create(OptionsSchema, { binaryName: "/var/lib/ctrd/runtimes/runc-wrapper-0123456789ab" }),
  ),
);
const labels = { "io.ctrd.cgroup.parent": "/cost-this" };
const started = { "io.ctrd.state.startedAt": new Date().toISOString(), "io.ctrd.state.restartCount": "0" };
const fifo = (name: string) => `/run/ctrd/fifo/default/${id}/init-${name}`;
const now = timestampFromDate(new Date());
const record = (extra: Record<string, string>) =>
  create(ContainerSchema, {
    id,
    labels: { ...labels, ...extra },
    runtime: { name: "io.containerd.runc.v2", options: runcOptions },
    spec: jsonAny(TYPE_URL.spec, spec),
    createdAt: now,
    updatedAt: now,
  });

interface Case {
  name: string;
  schema: DescMessage;
  /** A request: built anew each time, as the library does (its spec JSON is made once per container). */
  init?: () => MessageInitShape<DescMessage>;
  /** A reply: its bytes. */
  bytes?: Uint8Array;
}
const specAny = jsonAny(TYPE_URL.spec, spec);
const cases: Case[] = [
  {
    name: "Containers.Create request",
    schema: CreateContainerRequestSchema,
    init: () => ({
      container: {
        id,
        labels: { ...labels },
        runtime: { name: "io.containerd.runc.v2", options: bareAny(runcOptions.typeUrl, runcOptions.value) },
        spec: specAny,
      },
    }),
  },
  {
    name: "Tasks.Create request",
    schema: CreateTaskRequestSchema,
    init: () => ({
      containerId: id,
      stdin: "",
      stdout: fifo("stdout"),
      stderr: fifo("stderr"),
      terminal: false,
      rootfs: [],
    }),
  },
  { name: "Tasks.Wait request", schema: WaitRequestSchema, init: () => ({ containerId: id }) },
  { name: "Tasks.Start request", schema: StartRequestSchema, init: () => ({ containerId: id }) },
  {
    name: "Containers.Update request",
    schema: UpdateContainerRequestSchema,
    init: () => ({
      container: { id, labels: { ...started } },
      updateMask: { paths: Object.keys(started).map((key) => `labels.${key}`) },
    }),
  },
  { name: "Tasks.Delete request", schema: DeleteTaskRequestSchema, init: () => ({ containerId: id }) },
  { name: "Containers.Delete request", schema: DeleteContainerRequestSchema, init: () => ({ id }) },
  {
    name: "Containers.Create reply",
    schema: CreateContainerResponseSchema,
    bytes: toBinary(
      CreateContainerResponseSchema,
      create(CreateContainerResponseSchema, { container: record({}) }),
    ),
  },
  {
    name: "Tasks.Create reply",
    schema: CreateTaskResponseSchema,
    bytes: toBinary(
      CreateTaskResponseSchema,
      create(CreateTaskResponseSchema, { containerId: id, pid: 123456 }),
    ),
  },
  {
    name: "Tasks.Start reply",
    schema: StartResponseSchema,
    bytes: toBinary(StartResponseSchema, create(StartResponseSchema, { pid: 123456 })),
  },
  {
    name: "Containers.Update reply",
    schema: UpdateContainerResponseSchema,
    bytes: toBinary(
      UpdateContainerResponseSchema,
      create(UpdateContainerResponseSchema, { container: record(started) }),
    ),
  },
  {
    name: "Tasks.Wait reply",
    schema: WaitResponseSchema,
    bytes: toBinary(WaitResponseSchema, create(WaitResponseSchema, { exitStatus: 0, exitedAt: now })),
  },
  {
    name: "Tasks.Delete reply",
    schema: DeleteResponseSchema,
    bytes: toBinary(
      DeleteResponseSchema,
      create(DeleteResponseSchema, { id, pid: 123456, exitStatus: 0, exitedAt: now }),
    ),
  },
  // Containers.Delete answers google.protobuf.Empty: no bytes.
];

/** protobuf-es as the transport uses it before the codec: create + toBinary, then the framed copy. */
function protobufEs(c: Case): () => unknown {
  if (c.init) {
    const { schema, init } = c;
    return () => {
      const bytes = toBinary(schema, create(schema, init()));
      const out = Buffer.allocUnsafe(5 + bytes.byteLength);
      out.set(bytes, 5);
      return out;
    };
  }
  const { schema, bytes } = c;
  return () => fromBinary(schema, bytes!);
}

function compiled(c: Case): () => unknown {
  const codec = codecOf(c.schema);
  if (c.init) {
    const { init } = c;
    return () => codec.encode(init(), 5);
  }
  const { bytes } = c;
  return () => codec.decode(bytes!);
}

function closures(c: Case): () => unknown {
  const codec = closureCodec(c.schema);
  if (c.init) {
    const { init } = c;
    return () => codec.encode(init(), 5);
  }
  const { bytes } = c;
  return () => codec.decode(bytes!);
}

// The three agree on every case (or the comparison means nothing).
for (const c of cases) {
  if (c.init) {
    const expected = toBinary(c.schema, create(c.schema, c.init()));
    for (const fn of [compiled(c), closures(c)])
      if (!Buffer.from(expected).equals((fn() as Buffer).subarray(5)))
        throw new Error(`${c.name}: other bytes`);
  } else {
    const expected = fromBinary(c.schema, c.bytes!);
    for (const fn of [compiled(c), closures(c)])
      if (!equals(c.schema, expected, fn() as typeof expected)) throw new Error(`${c.name}: another message`);
  }
}

const SUBJECTS = { "protobuf-es": protobufEs, codec: compiled, closures } as const;
type SubjectName = keyof typeof SUBJECTS;

const cpuUs = (fn: () => unknown, n: number): number => {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / n;
};

if (values["cold-child"] !== undefined) {
  // One fresh process: µs of each of the first 50 uses of every case, by one subject.
  const subject = SUBJECTS[values["cold-child"] as SubjectName];
  const out: number[] = [];
  let setupUs = 0;
  for (const c of cases) {
    const t0 = performance.now();
    const fn = subject(c);
    fn();
    setupUs += (performance.now() - t0) * 1000;
    for (let i = 1; i < 50; i++) fn();
    out.push(((performance.now() - t0) * 1000) / 50);
  }
  // Last: the first use of each type, summed (the codec compiles then).
  out.push(setupUs);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

if (values.cold) {
  // Wall time here (a process's CPU counter ticks too coarsely for 50 calls); many fresh processes,
  // the two subjects alternated.
  const runs = Number(values.rounds);
  const names = Object.keys(SUBJECTS) as SubjectName[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[][]])) as Record<
    SubjectName,
    number[][]
  >;
  for (let r = 0; r < runs; r++)
    for (const subject of names.map((_, k) => names[(k + r) % names.length]!)) {
      const child = spawnSync(
        process.execPath,
        [...process.execArgv, import.meta.filename, "--cold-child", subject],
        {
          encoding: "utf8",
        },
      );
      if (child.status !== 0) throw new Error(child.stderr);
      samples[subject].push(JSON.parse(child.stdout) as number[]);
    }
  console.log(
    `first 50 uses per message type in a fresh process, µs each (median of ${runs} processes); load ${load()}`,
  );
  console.log(`${"message".padEnd(28)} ${names.map((n) => n.padStart(12)).join(" ")}`);
  const sums = names.map(() => 0);
  for (const [i, c] of cases.entries()) {
    const row = names.map((name) => median(samples[name].map((s) => s[i]!)));
    row.forEach((v, k) => {
      sums[k]! += v;
    });
    console.log(`${c.name.padEnd(28)} ${row.map((v) => v.toFixed(2).padStart(12)).join(" ")}`);
  }
  console.log(`${"one lifecycle (sum)".padEnd(28)} ${sums.map((v) => v.toFixed(1).padStart(12)).join(" ")}`);
  // The first use of each type, compiling included, summed.
  const first = names.map((name) => median(samples[name].map((s) => s[cases.length]!)));
  console.log(
    `${"first use of all 13 (sum)".padEnd(28)} ${first.map((v) => v.toFixed(0).padStart(12)).join(" ")}`,
  );
} else {
  const rounds = Number(values.rounds);
  const n = Number(values.iterations);
  const names = Object.keys(SUBJECTS) as SubjectName[];
  const rows = cases.map((c) => ({ name: c.name, fns: names.map((name) => SUBJECTS[name](c)) }));
  // All of one lifecycle's messages in turn, as a process sends and receives them: protobuf-es's
  // generic functions then see every message shape, not one.
  rows.push({
    name: "one lifecycle, mixed",
    fns: names.map((_, k) => {
      const all = rows.map((row) => row.fns[k]!);
      return () => {
        for (const fn of all) fn();
      };
    }),
  });
  // Warm every subject to TurboFan first.
  for (const row of rows) for (const fn of row.fns) cpuUs(fn, n);
  const results = rows.map(() => names.map(() => [] as number[]));
  for (let r = 0; r < rounds; r++)
    for (const [i, row] of rows.entries())
      for (let j = 0; j < names.length; j++) {
        const k = (j + r) % names.length;
        results[i]![k]!.push(cpuUs(row.fns[k]!, n));
      }
  console.log(`warm: CPU µs per message, median of ${rounds} interleaved rounds of ${n}; load ${load()}`);
  console.log(`${"message".padEnd(28)} ${names.map((name) => name.padStart(12)).join(" ")}`);
  const sums = names.map(() => 0);
  for (const [i, row] of rows.entries()) {
    const medians = results[i]!.map((list) => median(list));
    if (i === rows.length - 1)
      console.log(
        `${"one lifecycle (sum above)".padEnd(28)} ${sums.map((v) => v.toFixed(1).padStart(12)).join(" ")}`,
      );
    medians.forEach((v, k) => {
      sums[k]! += v;
    });
    console.log(`${row.name.padEnd(28)} ${medians.map((v) => v.toFixed(2).padStart(12)).join(" ")}`);
  }
}
