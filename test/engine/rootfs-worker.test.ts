import { spawn } from "node:child_process";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { pack } from "tar-stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  archiveFromRoot,
  type ContainerRoot,
  extractIntoRoot,
  openProcessRoot,
} from "../../src/engine/containers/rootfs-worker.js";
import { ensureBuilt } from "../cli/helpers.js";

// The worker that docker cp's archive endpoints run in, chrooted into the container's root, on a plain
// directory as that root: what a container's processes could do to its files meanwhile cannot lead out.

beforeAll(ensureBuilt, 180_000);

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratch(): string {
  const base = mkdtempSync(join(tmpdir(), "rootfs-worker-"));
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  return base;
}

async function rootAt(path: string): Promise<ContainerRoot> {
  const handle = await open(path, "r");
  cleanups.push(() => handle.close());
  return { fd: handle.fd, running: false };
}

async function tarOf(fill: (archive: ReturnType<typeof pack>) => void): Promise<Buffer> {
  const archive = pack();
  fill(archive);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A "container process" exchanging `a` and `b` (a directory and a symlink to the host) without end. */
async function swapper(a: string, b: string): Promise<() => Promise<void>> {
  // Node with koffi (a dependency): renameat2(RENAME_EXCHANGE) in a loop, as a container's process could.
  const koffi = createRequire(import.meta.url).resolve("koffi");
  const code = `const libc = require(${JSON.stringify(koffi)}).load("libc.so.6");
const exchange = libc.func("int renameat2(int, const char *, int, const char *, unsigned int)");
for (;;) exchange(-100, ${JSON.stringify(a)}, -100, ${JSON.stringify(b)}, 2);`;
  const child = spawn(process.execPath, ["-e", code], { stdio: "ignore" });
  const stop = async (): Promise<void> => {
    child.kill("SIGKILL");
    if (child.exitCode === null && child.signalCode === null)
      await new Promise((resolve) => child.once("exit", resolve));
  };
  cleanups.push(stop);
  // It runs: `a` has been seen as the symlink (else the tests below could not fail).
  let swapped = false;
  for (let attempt = 0; attempt < 1000 && !swapped; attempt++) {
    swapped = lstatSync(a).isSymbolicLink();
    if (!swapped) await sleep(1);
  }
  expect(swapped).toBe(true);
  return stop;
}

const put = { container: "c", noOverwriteDirNonDir: false, readonlyRootfs: false, volumes: [] };

describe("the rootfs worker", () => {
  it("extracts a hard link to a symlink as a link: the host file it names keeps its mode and times", async () => {
    const base = scratch();
    const victim = join(base, "victim-on-host");
    writeFileSync(victim, "host secret");
    chmodSync(victim, 0o600);
    const root = join(base, "rootfs");
    mkdirSync(join(root, "dst"), { recursive: true });
    const tar = await tarOf((archive) => {
      archive.entry({ name: "a", type: "symlink", linkname: victim, mode: 0o777 });
      archive.entry({ name: "b", type: "link", linkname: "a", mode: 0o4777, mtime: new Date(0) });
    });
    await extractIntoRoot(
      await rootAt(root),
      { ...put, path: "/dst" },
      Readable.from([tar]),
      AbortSignal.timeout(60_000),
    );
    expect(readlinkSync(join(root, "dst/b"))).toBe(victim);
    expect(statSync(victim).mode & 0o7777).toBe(0o600);
    expect(statSync(victim).mtimeMs).not.toBe(0);
  });

  it("PUT: a directory swapped for a symlink to the host while extracting never gets a file out", async () => {
    const base = scratch();
    const hostDir = join(base, "host-dir");
    mkdirSync(hostDir);
    const root = join(base, "rootfs");
    mkdirSync(join(root, "dst/sub"), { recursive: true });
    symlinkSync(hostDir, join(root, "dst/evil"));
    const stop = await swapper(join(root, "dst/sub"), join(root, "dst/evil"));
    const container = await rootAt(root);
    for (let round = 0; round < 20; round++) {
      const tar = await tarOf((archive) => {
        for (let i = 0; i < 200; i++) archive.entry({ name: `sub/f${round}-${i}`, type: "file" }, "x");
      });
      // A lost race may fail the extraction (a file where a directory was): never write outside.
      await extractIntoRoot(
        container,
        { ...put, path: "/dst" },
        Readable.from([tar]),
        AbortSignal.timeout(60_000),
      ).catch(() => {});
      expect(readdirSync(hostDir)).toEqual([]);
    }
    await stop();
    // The files went into the container: the swapped directory holds them, whichever name it has now.
    const dirs = ["sub", "evil"].filter((name) => !lstatSync(join(root, "dst", name)).isSymbolicLink());
    expect(dirs).toHaveLength(1);
    expect(readdirSync(join(root, "dst", dirs[0] ?? "")).length).toBeGreaterThan(0);
  });

  it("GET: a directory swapped for a symlink to the host while archiving never sends a host file", async () => {
    const base = scratch();
    const hostDir = join(base, "host-dir");
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, "secret"), "HOST-SECRET\n");
    const root = join(base, "rootfs");
    mkdirSync(join(root, "dst/sub"), { recursive: true });
    writeFileSync(join(root, "dst/sub/secret"), "container file\n");
    symlinkSync(hostDir, join(root, "dst/evil"));
    await swapper(join(root, "dst/sub"), join(root, "dst/evil"));
    const container = await rootAt(root);
    let archived = 0;
    for (let attempt = 0; attempt < 100; attempt++) {
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on("data", (chunk: Buffer) => chunks.push(chunk));
      await archiveFromRoot(
        container,
        "/dst/sub/secret",
        "c",
        { signal: AbortSignal.timeout(60_000) },
        () => out,
      )
        .then(() => archived++)
        .catch(() => {});
      expect(Buffer.concat(chunks).includes("HOST-SECRET")).toBe(false);
    }
    expect(archived).toBeGreaterThan(0);
  });

  it("opens a process's root only for a process of the container", async () => {
    // This test's own process is no container's: a PID reused by a host process is refused so.
    expect(await openProcessRoot("0123456789abcdef", process.pid)).toBeUndefined();
    expect(await openProcessRoot("0123456789abcdef", 2 ** 22 + 1)).toBeUndefined();
  });
});
