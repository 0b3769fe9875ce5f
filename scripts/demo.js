#!/usr/bin/env node
// `npm start`: builds a small image offline (busybox-static in one layer), imports it with the built
// ctrd into its embedded (managed) containerd and runs it, so a new user sees an image run with one
// command. setup.sh has built dist/ and installed containerd, runc and busybox-static by then.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeDemoImage } from "./demo-image.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const ctrd = join(repo, "dist/cli/main.js");
if (!existsSync(ctrd)) {
  console.error(`demo: ${ctrd} is missing; run 'bash scripts/setup.sh' first`);
  process.exit(1);
}
// tsc does not keep the executable bit; package.json's bin entry points here.
chmodSync(ctrd, 0o755);

function step(args) {
  console.log(`$ ctrd ${args.join(" ")}`);
  const run = spawnSync(process.execPath, [ctrd, ...args], { stdio: "inherit" });
  if (run.status !== 0) {
    console.error(`demo: ctrd exited with ${run.status ?? run.signal}`);
    process.exit(run.status ?? 1);
  }
}

const image = "ctrd-demo/hello:1";
const dir = mkdtempSync(join(tmpdir(), "ctrd-demo-"));
try {
  const archive = join(dir, "hello.tar");
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  await writeDemoImage(archive, image, busybox);
  step(["import", archive]);
  step(["run", "--rm", image]);
  step(["images"]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`
That image ran in a fresh container, on a snapshot of its layer, on a containerd that ctrd started
for you (it keeps running). Next, try:
  node dist/cli/main.js run --rm -it ${image} sh        an interactive shell in the image
  node dist/cli/main.js run --rm -- echo hi                 a command on the default busybox rootfs
  node dist/cli/main.js pull 127.0.0.1:5000/app:1           from a registry (plain HTTP on localhost)
  node dist/cli/main.js save -o hello.tar ${image}      an OCI archive docker load and skopeo read
  node dist/cli/main.js info                                backend, containerd, runtimes, platform
  node dist/cli/main.js daemon stop                         stop the managed containerd`);
