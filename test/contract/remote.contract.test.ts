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
