// `node --import tsx bench/rpc.ts [--base DIR] [--calls N] [--rounds N]`: client CPU and wall per
// unary RPC straight through the transport (no library above it), on one private containerd:
// Version (the smallest call), Containers.Get of a missing container (an error answer, as every
// container delete asks for) and Containers.List. With `--base` (another checkout, e.g. main's),
// both trees' transports run round by round in alternating order, so load hits both alike.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Containers } from "../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import { Version } from "../src/gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import * as thisTransport from "../src/libcontainerd/grpc/transport.js";
import { startContainerd } from "../test/harness/containerd.js";
import { median } from "./measure.js";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    calls: { type: "string", default: "2000" },
    rounds: { type: "string", default: "6" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
type TransportModule = typeof thisTransport;
const sides: Record<string, TransportModule> = { this: thisTransport };
if (values.base) {
  // Where the base tree keeps its transport: grpc/ now, remote/ before the folder existed.
  const base = resolve(values.base);
  const transport = ["grpc", "remote"]
    .map((folder) => join(base, `src/libcontainerd/${folder}/transport.ts`))
    .find((path) => existsSync(path));
  if (!transport) throw new Error(`no src/libcontainerd/{grpc,remote}/transport.ts under ${base}`);
  sides.base = (await import(pathToFileURL(transport).href)) as TransportModule;
}

const ctrd = await startContainerd({ prefix: "lcd-rpc-" });
const clients = Object.entries(sides).map(([name, mod]) => {
  const transport = mod.createContainerdTransport({ address: ctrd.address, namespace: `rpc-${name}` });
  return {
    name,
    transport,
    version: mod.serviceClient(Version, transport),
    containers: mod.serviceClient(Containers, transport),
  };
});
type Side = (typeof clients)[number];
const kinds = {
  version: (c: Side) => c.version.version({}),
  "get (not found)": (c: Side) => c.containers.get({ id: "missing" }).catch(() => undefined),
  list: (c: Side) => c.containers.list({}),
};

const results = new Map<string, { cpu: number[]; wall: number[] }>();
try {
  for (const c of clients)
    for (const call of Object.values(kinds)) for (let i = 0; i < 200; i++) await call(c);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? clients : [...clients].reverse();
    for (const c of order) {
      for (const [kind, call] of Object.entries(kinds)) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < calls; i++) await call(c);
        const wall = (performance.now() - t0) / calls;
        const cpu = process.cpuUsage(cpu0);
        const key = `${kind}|${c.name}`;
        const entry = results.get(key) ?? { cpu: [], wall: [] };
        entry.cpu.push((cpu.user + cpu.system) / 1000 / calls);
        entry.wall.push(wall);
        results.set(key, entry);
      }
    }
  }
  console.log(`${calls} calls × ${rounds} rounds per side; medians per call (µs)`);
  for (const kind of Object.keys(kinds)) {
    const line = clients.map((c) => {
      const { cpu, wall } = results.get(`${kind}|${c.name}`)!;
      return `${c.name}: CPU ${(median(cpu) * 1000).toFixed(0)} wall ${(median(wall) * 1000).toFixed(0)}`;
    });
    console.log(`${kind.padEnd(16)} ${line.join("   ")}`);
  }
} finally {
  for (const c of clients) c.transport.close();
  await ctrd.stop();
}
