import { readdirSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import { RemoteClient } from "../../src/libcontainerd/remote/client.js";
import { defaultLinuxSpec } from "../../src/oci/index.js";
import { startContainerd } from "../harness/containerd.js";
import { nextCgroup } from "../harness/remote.js";
import { defineContractSuite } from "./suite.js";

defineContractSuite("remote (containerd + runc)", async () => {
  const ctrd = await startContainerd();
  const client = new RemoteClient({ address: ctrd.address, namespace: "contract", stateDir: ctrd.stateDir });
  return {
    client,
    runOptions: { rootfs: ctrd.rootfs },
    spec: (args, opts) =>
      defaultLinuxSpec({
        args,
        rootfs: ctrd.rootfs,
        cgroupsPath: nextCgroup(ctrd),
        terminal: opts?.terminal,
        env: opts?.env,
      }),
    clientWith: ({ namespace, defaultTimeoutMs }) =>
      new RemoteClient({
        address: ctrd.address,
        namespace: namespace ?? "contract",
        stateDir: ctrd.stateDir,
        ...(defaultTimeoutMs !== undefined ? { defaultTimeoutMs } : {}),
      }),
    // A stopped containerd accepts connections and answers nothing.
    async hang() {
      process.kill(ctrd.pid, "SIGSTOP");
      // The stop takes effect when its threads next run: until then it may still answer.
      await expect.poll(() => processState(ctrd.pid), { timeout: 10_000 }).toBe("T");
      return {
        call: (target, opts) => target.listContainers(opts),
        resume: async () => {
          process.kill(ctrd.pid, "SIGCONT");
        },
      };
    },
    runtimeWithoutCheckpoints: "io.containerd.runtime.v1.linux",
    async cleanup() {
      await client.close();
      await ctrd.stop();
    },
  };
});

/** "T" once every thread of the process is stopped. */
function processState(pid: number): string {
  const states = readdirSync(`/proc/${pid}/task`).map(
    (tid) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? "",
  );
  return states.every((state) => state === "T") ? "T" : states.join("");
}
