import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireBinary } from "./binaries.js";

const APPLETS = [
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
];

/** A minimal root filesystem: busybox-static and its applets, plus the directories runc mounts onto. */
export function buildBusyboxRootfs(dir: string): string {
  const busybox = requireBinary("busybox");
  for (const sub of ["bin", "proc", "dev", "sys", "tmp", "etc", "run", "root"])
    mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(busybox, join(dir, "bin/busybox"));
  for (const applet of APPLETS) symlinkSync("busybox", join(dir, "bin", applet));
  writeFileSync(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  writeFileSync(join(dir, "etc/group"), "root:x:0:\nnobody:x:65534:\n");
  return dir;
}
