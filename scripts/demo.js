#!/usr/bin/env node
// `npm start`: runs one container through the built ctrd on its embedded (managed) containerd and
// shows what it printed, so a new user sees a container run with one command. setup.sh has built
// dist/ and installed containerd, runc and busybox-static by the time this runs.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const ctrd = join(repo, "dist/cli/main.js");
if (!existsSync(ctrd)) {
  console.error(`demo: ${ctrd} is missing; run 'bash scripts/setup.sh' first`);
  process.exit(1);
}
// tsc does not keep the executable bit; package.json's bin entry points here.
chmodSync(ctrd, 0o755);

const script = "echo Hello from a container; uname -a; id; echo; ls /";
const args = ["run", "--rm", "--", "sh", "-c", script];
console.log(`$ ctrd ${args.slice(0, 3).join(" ")} sh -c '${script}'`);
const run = spawnSync(process.execPath, [ctrd, ...args], { stdio: "inherit" });
if (run.status !== 0) {
  console.error(`demo: ctrd exited with ${run.status ?? run.signal}`);
  process.exit(run.status ?? 1);
}
console.log(`
That ran in a fresh container on a containerd that ctrd started for you (it keeps running).
Next, try:
  node dist/cli/main.js run --rm -it -- sh         an interactive shell
  node dist/cli/main.js run -d --name web -- sleep 300; node dist/cli/main.js ps
  node dist/cli/main.js info                       backend, containerd, runtimes, platform
  node dist/cli/main.js daemon stop                stop the managed containerd`);
