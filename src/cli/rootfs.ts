import { spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { stateDirLayout } from "../platform/state-dir.js";
import { CliError } from "./errors.js";

/** Applets linked when `busybox --list` is unavailable: what a shell session and the tests use. */
export const FALLBACK_APPLETS: readonly string[] = [
  "sh",
  "echo",
  "sleep",
  "true",
  "false",
  "cat",
  "ls",
  "env",
  "id",
  "ps",
  "pwd",
  "yes",
  "head",
  "dd",
  "kill",
  "wc",
  "tr",
  "hostname",
  "stty",
  "printf",
  "seq",
  "mkdir",
  "rm",
  "touch",
  "tail",
  "grep",
  "test",
  "uname",
  "date",
  "whoami",
  "sed",
  "awk",
  "top",
  "free",
  "df",
  "mount",
  "vi",
  "less",
];

const SEARCH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** busybox on PATH or in the usual dirs (Debian's busybox-static installs /bin/busybox). */
export function findBusybox(path = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(delimiter), ...SEARCH_DIRS]) {
    if (!dir) continue;
    const candidate = join(dir, "busybox");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function listApplets(busybox: string): string[] {
  const listed = spawnSync(busybox, ["--list"], { encoding: "utf8" });
  const applets =
    listed.status === 0 ? listed.stdout.split("\n").filter((name) => /^[\w.[-]+$/.test(name)) : [];
  return applets.includes("sh") ? applets : [...FALLBACK_APPLETS];
}

/**
 * A minimal root filesystem: the static busybox, a symlink per applet (all it has, or `applets`),
 * the directories runc mounts onto, and passwd/group so `id` and `--user nobody` resolve.
 */
export function buildBusyboxRootfs(
  dir: string,
  busybox: string,
  applets: readonly string[] = listApplets(busybox),
): string {
  for (const sub of ["bin", "proc", "dev", "sys", "tmp", "etc", "run", "root"])
    mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(busybox, join(dir, "bin/busybox"));
  for (const applet of applets) {
    if (applet !== "busybox") symlinkSync("busybox", join(dir, "bin", applet));
  }
  writeFileSync(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  writeFileSync(join(dir, "etc/group"), "root:x:0:\nnobody:x:65534:\n");
  writeFileSync(join(dir, "etc/hostname"), "ctrd\n");
  return dir;
}

/** Where `ctrd run` without `--rootfs` finds its rootfs: a name no containerd namespace can take. */
export function defaultRootfsDir(stateDir: string): string {
  return join(stateDirLayout(stateDir).ctrd, "rootfs-busybox");
}

/**
 * The default rootfs, built on first use. It is built beside its final place and renamed into it,
 * so two first runs at once, or an interrupted one, never leave a half-built rootfs in use.
 */
export function ensureDefaultRootfs(stateDir: string): string {
  const target = defaultRootfsDir(stateDir);
  if (existsSync(join(target, "bin/sh"))) return target;
  const busybox = findBusybox();
  if (!busybox) {
    throw new CliError(
      "no --rootfs given and busybox is not installed to build the default one: install busybox-static (apt-get install busybox-static) or pass --rootfs DIR",
      "failed_precondition",
    );
  }
  mkdirSync(dirname(target), { recursive: true, mode: 0o711 });
  const building = `${target}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  try {
    buildBusyboxRootfs(building, busybox);
    renameSync(building, target);
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    // Someone else finished first: theirs is as good as ours.
    if (existsSync(join(target, "bin/sh"))) return target;
    throw new CliError(
      `cannot build the default rootfs in ${target}: ${(err as Error).message}`,
      "internal",
      125,
      {
        cause: err,
      },
    );
  }
  return target;
}
