import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, test } from "vitest";
import { LibcontainerdError } from "../../src/errors.js";
import {
  acquireLock,
  identityOf,
  removeOrphanTemporaries,
  thisProcess,
  withLock,
} from "../../src/network/files.js";
import { ReservedPorts } from "../../src/network/reserved-ports.js";

const dir = mkdtempSync(join(tmpdir(), "net-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("temporaries of a writer that died are removed; a live writer's, records and other files stay", async () => {
  const dead = spawnSync("true").pid!;
  writeFileSync(join(dir, `web.json.${dead}.k3x9.tmp`), "{");
  writeFileSync(join(dir, `db.json.${process.pid}.a1b2.tmp`), "{");
  writeFileSync(join(dir, "web.json"), "{}");
  writeFileSync(join(dir, "notes.tmp"), "");
  await removeOrphanTemporaries(dir);
  expect(readdirSync(dir).sort()).toEqual([`db.json.${process.pid}.a1b2.tmp`, "notes.tmp", "web.json"]);
  await removeOrphanTemporaries(join(dir, "missing"));
});

describe("locks", () => {
  test("a lock left naming no owner (its creator killed between create and write) is taken over after a grace", async () => {
    const path = join(dir, "ownerless.lock");
    writeFileSync(path, "");
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(path, longAgo, longAgo);
    const release = await acquireLock(path, AbortSignal.timeout(5000));
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(thisProcess());
    await release();
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((name) => name.startsWith("ownerless"))).toEqual([]);
  });

  test("a lock its dead owner left, broken by many waiters at once, has one holder at a time", async () => {
    // The 50 attaches of a ctrd serve restarted after a SIGKILL that left its ports or hosts lock behind.
    const dead = spawnSync("true").pid!;
    // A second holder, or a holder whose lock file another waiter took away.
    let violations = 0;
    for (let round = 0; round < 30; round++) {
      const path = join(dir, `stale-${round}.lock`);
      writeFileSync(path, JSON.stringify({ pid: dead, startTime: "1" }));
      let holders = 0;
      await Promise.all(
        Array.from({ length: 20 }, () =>
          withLock(path, AbortSignal.timeout(10_000), async () => {
            holders++;
            if (holders > 1) violations++;
            await readFile(path).catch(() => violations++);
            await new Promise((resolve) => setImmediate(resolve));
            holders--;
          }),
        ),
      );
      expect(existsSync(path)).toBe(false);
    }
    expect(violations).toBe(0);
    expect(readdirSync(dir).filter((name) => name.startsWith("stale-"))).toEqual([]);
  });

  test("a lock just created and not yet written is waited on, not broken", async () => {
    const path = join(dir, "fresh.lock");
    writeFileSync(path, "");
    await expect(acquireLock(path, AbortSignal.timeout(300))).rejects.toBeInstanceOf(LibcontainerdError);
    expect(readFileSync(path, "utf8")).toBe("");
    rmSync(path);
  });

  test("the kernel's reserved ports are best effort: a host lock held by a stuck process is not waited on for good", async () => {
    const sysctl = join(dir, "ip_local_reserved_ports");
    writeFileSync(sysctl, "\n");
    const hostLock = join(dir, "host.lock");
    // Held by a live process that never lets go (this one, as a stopped ctrd would).
    writeFileSync(hostLock, JSON.stringify(thisProcess()));
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const registry = join(dir, "registry.json");
    const reserved = new ReservedPorts(dir, logger, { sysctl, lock: hostLock, lockWaitMs: 200, registry });
    await reserved.update(async () => [40123]);
    expect(readFileSync(sysctl, "utf8")).toBe("\n");
    expect(lines.join("")).toMatch(/could not keep published ports out of the kernel's ephemeral ports/);
    rmSync(hostLock);
    await reserved.update(async () => [40123]);
    expect(readFileSync(sysctl, "utf8")).toBe("40123\n");
    await reserved.update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("\n");
  });

  test("a holder that took the host lock during a wait in vain is not named stuck: only one that held it throughout", async () => {
    const sysctl = join(dir, "ip_local_reserved_ports.2");
    writeFileSync(sysctl, "\n");
    const hostLock = join(dir, "host2.lock");
    const stopped = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      await new Promise((resolve) => stopped.once("spawn", resolve));
      writeFileSync(hostLock, JSON.stringify(identityOf(stopped.pid as number)));
      const registry = join(dir, "registry2.json");
      const reserved = new ReservedPorts(dir, undefined, {
        sysctl,
        lock: hostLock,
        lockWaitMs: 300,
        registry,
      });
      const updating = reserved.update(async () => [40124]);
      // The first holder lets go and a busy one (this process) takes the lock while the update waits.
      await new Promise((resolve) => setTimeout(resolve, 100));
      writeFileSync(hostLock, JSON.stringify(thisProcess()));
      await updating;
      expect(existsSync(`${hostLock}.stuck`)).toBe(false);
    } finally {
      stopped.kill("SIGKILL");
      rmSync(hostLock, { force: true });
      rmSync(`${hostLock}.stuck`, { force: true });
    }
  });

  test("entries a removed state dir left in the kernel's list are taken out by the next update of another", async () => {
    const sysctl = join(dir, "reserved-list");
    const registry = join(dir, "reserved-registry.json");
    const host = { sysctl, lock: join(dir, "reserved.lock"), lockWaitMs: 2000, registry };
    const gone = mkdtempSync(join(dir, "gone-"));
    const kept = mkdtempSync(join(dir, "kept-"));
    const mine = mkdtempSync(join(dir, "mine-"));
    writeFileSync(sysctl, "1234\n"); // an administrator's entry: never ours to take out
    await new ReservedPorts(gone, undefined, host).update(async () => [40001]);
    await new ReservedPorts(kept, undefined, host).update(async () => [40002]);
    expect(readFileSync(sysctl, "utf8")).toBe("1234,40001-40002\n");
    rmSync(gone, { recursive: true }); // its ports still published, as a test's temporary dir removed
    await new ReservedPorts(mine, undefined, host).update(async () => [40010]);
    expect(readFileSync(sysctl, "utf8")).toBe("1234,40002,40010\n");
    expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({ "40002": kept, "40010": mine });
    await new ReservedPorts(kept, undefined, host).update(async () => []);
    await new ReservedPorts(mine, undefined, host).update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("1234\n");
    expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({});
  });
});

describe("the kernel's reserved ports after a crash", () => {
  test("an entry added to the kernel's list by an update that died before its record is taken out by the next update of the same state dir", async () => {
    // updateLocked writes the registry, then the kernel's list, then the state dir's record: a ctrd
    // killed between the last two leaves the list and registry holding the port and the record not.
    const sysctl = join(dir, "crash-list");
    const registry = join(dir, "crash-registry.json");
    const host = { sysctl, lock: join(dir, "crash.lock"), lockWaitMs: 2000, registry };
    const mine = mkdtempSync(join(dir, "crashed-"));
    writeFileSync(sysctl, "1234,40020\n");
    writeFileSync(registry, JSON.stringify({ "40020": mine }));
    // Its container is gone: nothing published.
    await new ReservedPorts(mine, undefined, host).update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("1234\n");
    expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({});

    // Its container still publishes the port: kept, and taken out once it no longer does.
    writeFileSync(sysctl, "1234,40020\n");
    writeFileSync(registry, JSON.stringify({ "40020": mine }));
    await new ReservedPorts(mine, undefined, host).update(async () => [40020, 40021]);
    expect(readFileSync(sysctl, "utf8")).toBe("1234,40020-40021\n");
    await new ReservedPorts(mine, undefined, host).update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("1234\n");
    expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({});
  });
});

test("a port two state dirs publish (on different host addresses) stays reserved until neither does", async () => {
  // -p 127.0.0.1:40060:80 under one data root and -p 127.0.0.2:40060:80 under another: one port number
  // in the kernel's list, which the first to stop publishing it must not take out while the other still does.
  const sysctl = join(dir, "shared-list");
  const registry = join(dir, "shared-registry.json");
  const host = { sysctl, lock: join(dir, "shared.lock"), lockWaitMs: 2000, registry };
  const first = mkdtempSync(join(dir, "first-"));
  const second = mkdtempSync(join(dir, "second-"));
  writeFileSync(sysctl, "1234\n");
  for (const [stopsFirst, stopsLast] of [
    [first, second],
    [second, first],
  ] as const) {
    await new ReservedPorts(first, undefined, host).update(async () => [40060]);
    await new ReservedPorts(second, undefined, host).update(async () => [40060]);
    expect(readFileSync(sysctl, "utf8")).toBe("1234,40060\n");
    await new ReservedPorts(stopsFirst, undefined, host).update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("1234,40060\n");
    await new ReservedPorts(stopsLast, undefined, host).update(async () => []);
    expect(readFileSync(sysctl, "utf8")).toBe("1234\n");
    expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({});
  }
  // One of them removed while both publish it (a test's temporary dir): the other still holds it.
  await new ReservedPorts(first, undefined, host).update(async () => [40060]);
  await new ReservedPorts(second, undefined, host).update(async () => [40060]);
  rmSync(first, { recursive: true });
  await new ReservedPorts(second, undefined, host).update(async () => [40060]);
  expect(readFileSync(sysctl, "utf8")).toBe("1234,40060\n");
  await new ReservedPorts(second, undefined, host).update(async () => []);
  expect(readFileSync(sysctl, "utf8")).toBe("1234\n");
  expect(JSON.parse(readFileSync(registry, "utf8"))).toEqual({});
});
