// The state dir is checked as Docker checks its root: ours, not writable by others, and no
// component another user could swap. Runs as root (as the suite does), using uid 65534 as "another user".
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { FailedPreconditionError } from "../../src/errors.js";
import { ensurePrivateDir, writeFileNoFollow } from "../../src/fs/private-dir.js";
import { ensureWrapperScript } from "../../src/runtime/wrapper-script.js";
import { scratchDir } from "../harness/temp-dirs.js";

const scratch = scratchDir("lcd-private-");
afterAll(() => scratch.cleanup());
const NOBODY = 65534;

describe("ensurePrivateDir", () => {
  test("creates the missing components, ours, mode 0711", () => {
    const dir = join(scratch.dir, "a", "b", "state");
    expect(ensurePrivateDir(dir)).toBe(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o711);
    expect(statSync(dir).uid).toBe(process.geteuid?.());
  });

  test("a dir owned by another user is refused, naming it", () => {
    const dir = join(scratch.dir, "nobodys");
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, NOBODY, NOBODY);
    expect(() => ensurePrivateDir(dir)).toThrow(FailedPreconditionError);
    expect(() => ensurePrivateDir(dir)).toThrow(`${dir} is owned by uid ${NOBODY}`);
    // Nor may it sit inside one: its owner could rename ours away and put a symlink in its place.
    expect(() => ensurePrivateDir(join(dir, "state"))).toThrow(`${dir} is owned by uid ${NOBODY}`);
  });

  test("a group- or world-writable dir is refused; a sticky shared ancestor (like /tmp) is fine", () => {
    const dir = join(scratch.dir, "open");
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o777);
    expect(() => ensurePrivateDir(dir)).toThrow(/is writable by other users \(mode 777\)/);
    expect(() => ensurePrivateDir(join(dir, "state"))).toThrow(`${dir} is writable by other users`);
    const sticky = join(scratch.dir, "sticky");
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    expect(ensurePrivateDir(join(sticky, "state"))).toBe(join(sticky, "state"));
  });

  test("a symlinked state dir, or a symlink another user owns on the way, is refused", () => {
    const target = join(scratch.dir, "elsewhere");
    mkdirSync(target, { mode: 0o711 });
    const link = join(scratch.dir, "link-state");
    symlinkSync(target, link);
    expect(() => ensurePrivateDir(link)).toThrow(`${link} is a symbolic link`);
    // A root-owned link on the way (as /var/run → /run) is resolved.
    expect(ensurePrivateDir(join(link, "state"))).toBe(join(target, "state"));
  });
});

describe("writeFileNoFollow", () => {
  test("a symlink planted at the file's name is refused and its target left untouched", () => {
    const victim = join(scratch.dir, "victim");
    writeFileSync(victim, "precious\n");
    const planted = join(scratch.dir, "containerd.pid");
    symlinkSync(victim, planted);
    expect(() => writeFileNoFollow(planted, "123\n", 0o644)).toThrow(FailedPreconditionError);
    expect(() => writeFileNoFollow(planted, "123\n", 0o644)).toThrow(`${planted} is a symbolic link`);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
  });
});

describe("the runtimes dir", () => {
  test("a symlinked <state>/runtimes is refused: no wrapper script is written (or trusted) at its target", async () => {
    const state = join(scratch.dir, "rt-state");
    mkdirSync(state, { mode: 0o711 });
    const target = join(scratch.dir, "rt-elsewhere");
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, join(state, "runtimes"));
    await expect(
      ensureWrapperScript(join(state, "runtimes", "crun.sh"), join(state, "runtimes"), "#!/bin/sh\n"),
    ).rejects.toThrow(`${join(state, "runtimes")} is a symbolic link`);
    expect(readdirSync(target)).toEqual([]);
  });
});
