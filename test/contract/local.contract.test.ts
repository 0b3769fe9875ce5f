import { LocalClient } from "../../src/libcontainerd/local/client.js";
import { defaultWindowsSpec } from "../../src/oci/index.js";
import { ensureFakeLibrary, FAKE_LAYERS, FAKE_VOLUME, FakeControl } from "../local/fake.js";
import { defineContractSuite } from "./suite.js";

defineContractSuite("local (HCS fake)", async () => {
  const library = ensureFakeLibrary();
  const fake = new FakeControl(library);
  const client = new LocalClient({ library, windowsBuild: 17763, namespace: "contract" });
  return {
    client,
    runOptions: {
      rootfs: FAKE_VOLUME,
      customizeSpec: (spec) => ({ ...spec, windows: { ...spec.windows, layerFolders: [...FAKE_LAYERS] } }),
    },
    spec: (args, opts) => {
      const spec = defaultWindowsSpec({
        args,
        layerFolders: FAKE_LAYERS,
        terminal: opts?.terminal,
        env: opts?.env,
      });
      spec.root = { path: FAKE_VOLUME };
      return spec;
    },
    async cleanup() {
      await client.close();
      const { liveAllocations, openHandles } = await fake.settled();
      fake.close();
      if (liveAllocations !== 0 || openHandles !== 0) {
        throw new Error(`fake leaked: ${liveAllocations} allocations, ${openHandles} handles`);
      }
    },
  };
});
