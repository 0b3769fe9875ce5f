// Network namespace files, through native/network and (in a child process) through unshare/umount:
// a real namespace of its own, gone with its file; stacked mounts all removed; typed errors.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { InternalError } from "../../src/libcontainerd/types/errors.js";
import { createNetns, isMounted, isNetns, removeNetns } from "../../src/network/netns.js";

const dir = mkdtempSync(join(tmpdir(), "netns-"));
afterAll(() => {
  spawnSync("umount", ["-R", dir], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
});

/** The namespace `path` holds, as `nsenter` sees it from inside: its inode, not the host's. */
function inode(path: string): string {
  const result = spawnSync("nsenter", [`--net=${path}`, "readlink", "/proc/self/ns/net"], {
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim();
}

test("create: a namespace of its own on the file; remove: unmounted and gone, idempotent", async () => {
  const a = join(dir, "a");
  const b = join(dir, "b");
  await createNetns(a);
  await createNetns(b);
  expect(isNetns(a) && isNetns(b)).toBe(true);
  const host = readlinkSync("/proc/self/ns/net");
  expect(new Set([host, inode(a), inode(b)]).size).toBe(3);
  // This process's threads stayed in the host's namespace.
  expect(readlinkSync("/proc/thread-self/ns/net")).toBe(host);
  await removeNetns(a);
  expect(existsSync(a) || isMounted(a)).toBe(false);
  await removeNetns(a);
  await removeNetns(b);
  expect(existsSync(b)).toBe(false);
});

test("remove takes every mount stacked on the file off", async () => {
  const path = join(dir, "stacked");
  await createNetns(path);
  expect(spawnSync("mount", ["--bind", path, path]).status).toBe(0);
  await removeNetns(path);
  expect(isMounted(path) || existsSync(path)).toBe(false);
});

test("an existing file or a missing dir: InternalError naming the path, nothing left", async () => {
  const path = join(dir, "taken");
  await createNetns(path);
  await expect(createNetns(path)).rejects.toThrow(/EEXIST/);
  await removeNetns(path);
  const missing = join(dir, "missing", "netns");
  const err = await createNetns(missing).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  expect(existsSync(missing)).toBe(false);
  await expect(createNetns(join(dir, "nul\0"))).rejects.toBeInstanceOf(InternalError);
});

test("without the addon (CTRD_NETWORK_ADDON=none): unshare and umount do the same", () => {
  const script = `
    import { createNetns, isNetns, removeNetns, isMounted } from "./src/network/netns.ts";
    import { existsSync } from "node:fs";
    const path = ${JSON.stringify(join(dir, "fallback"))};
    await createNetns(path);
    if (!isNetns(path)) throw new Error("not a namespace");
    await removeNetns(path);
    if (existsSync(path) || isMounted(path)) throw new Error("left behind");
    // The commands were what ran: without them on PATH, creating fails and leaves no file.
    process.env.PATH = "/nonexistent";
    const failed = await createNetns(path).then(() => false, () => true);
    if (!failed || existsSync(path)) throw new Error("the addon ran, not unshare");
  `;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: join(import.meta.dirname, "..", ".."),
    env: { ...process.env, CTRD_NETWORK_ADDON: "none" },
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
});
