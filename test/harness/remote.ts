import type { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll } from "vitest";
import { RemoteClient, type RemoteClientOptions } from "../../src/libcontainerd/remote/client.js";
import type { LibcontainerdEvent } from "../../src/libcontainerd/types/events.js";
import { defaultLinuxSpec, type LinuxSpecOptions } from "../../src/oci/defaults.js";
import type { OciSpec } from "../../src/oci/spec.js";
import { startContainerd, type TestContainerd } from "./containerd.js";

export interface RemoteFixture {
  ctrd: TestContainerd;
  client: RemoteClient;
  namespace: string;
  spec(args: string[], opts?: Partial<LinuxSpecOptions>): OciSpec;
  /** A fresh client on the same containerd (as another process would have). */
  newClient(opts?: Partial<RemoteClientOptions>): RemoteClient;
}

/** One containerd for the test file, and a client on it; both torn down after the file. */
export function useRemote(namespace = "test"): RemoteFixture {
  const clients: RemoteClient[] = [];
  const fixture = {
    namespace,
    spec(args: string[], opts: Partial<LinuxSpecOptions> = {}) {
      return defaultLinuxSpec({
        args,
        rootfs: fixture.ctrd.rootfs,
        cgroupsPath: nextCgroup(fixture.ctrd),
        ...opts,
      });
    },
    newClient(opts: Partial<RemoteClientOptions> = {}) {
      const client = new RemoteClient({
        address: fixture.ctrd.address,
        namespace,
        stateDir: fixture.ctrd.stateDir,
        ...opts,
      });
      clients.push(client);
      return client;
    },
  } as RemoteFixture;
  beforeAll(async () => {
    fixture.ctrd = await startContainerd();
    fixture.client = fixture.newClient();
  });
  afterEach(({ task }) => {
    if (task.result?.state === "fail" && fixture.ctrd) printContainerdLog(fixture.ctrd, task.name);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await fixture.ctrd?.stop();
  });
  return fixture;
}

export function readAll(stream: Readable | null): Promise<string> {
  if (!stream) return Promise.resolve("");
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

/** Collects events for the given containers until `done(events)` says stop. */
export async function collectEvents(
  source: AsyncIterable<LibcontainerdEvent>,
  done: (events: LibcontainerdEvent[]) => boolean,
): Promise<LibcontainerdEvent[]> {
  const seen: LibcontainerdEvent[] = [];
  for await (const event of source) {
    seen.push(event);
    if (done(seen)) break;
  }
  return seen;
}

let cgroups = 0;
/** A cgroup under the harness's parent, so the harness can kill whatever a test leaves running. */
export function nextCgroup(ctrd: TestContainerd): string {
  cgroups += 1;
  return `${ctrd.cgroupParent}/c${cgroups}`;
}

let counter = 0;
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** When a test fails, containerd's side of the story is usually in its log. */
export function printContainerdLog(ctrd: TestContainerd, testName: string, lines = 40): void {
  const tail = ctrd.log().trimEnd().split("\n").slice(-lines).join("\n");
  process.stderr.write(
    `\n--- containerd log (last ${lines} lines) after "${testName}" failed ---\n${tail}\n---\n`,
  );
}
