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
    async cleanup() {
      await client.close();
      await ctrd.stop();
    },
  };
});
