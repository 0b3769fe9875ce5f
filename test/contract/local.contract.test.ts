import { expect } from "vitest";
import { LocalClient } from "../../src/libcontainerd/local/client.js";
import { defaultWindowsSpec } from "../../src/oci/index.js";
import type { OciSpec } from "../../src/oci/spec.js";
import { ensureFakeLibrary, FAKE_LAYERS, FAKE_VOLUME, FakeControl } from "../local/fake.js";
import { defineContractSuite } from "./suite.js";

defineContractSuite("local (HCS fake)", async () => {
  const library = ensureFakeLibrary();
  const fake = new FakeControl(library);
  const client = new LocalClient({ library, windowsBuild: 17763, namespace: "contract" });
  const spec = (
    args: string[],
    opts?: { terminal?: boolean | undefined; env?: string[] | undefined },
  ): OciSpec => {
    const made = defaultWindowsSpec({
      args,
      layerFolders: FAKE_LAYERS,
      terminal: opts?.terminal,
      env: opts?.env,
    });
    made.root = { path: FAKE_VOLUME };
    return made;
  };
  let hung = 0;
  return {
    client,
    runOptions: {
      rootfs: FAKE_VOLUME,
      customizeSpec: (made) => ({ ...made, windows: { ...made.windows, layerFolders: [...FAKE_LAYERS] } }),
    },
    spec,
    clientWith: ({ namespace, defaultTimeoutMs }) =>
      new LocalClient({
        library,
        windowsBuild: 17763,
        namespace: namespace ?? "contract",
        ...(defaultTimeoutMs !== undefined ? { defaultTimeoutMs } : {}),
      }),
    // Operations HCS completes through a notification (create, start) complete only much later.
    async hang() {
      const handles = fake.openHandles();
      fake.setOption("AsyncDelayMs", 5_000);
      return {
        call: (target, opts) =>
          target.newContainer(`contract-hung-${process.pid}-${++hung}`, spec(["true"]), opts),
        resume: async () => {
          fake.setOption("AsyncDelayMs", 0);
          await expect.poll(() => fake.openHandles(), { timeout: 15_000 }).toBeLessThanOrEqual(handles);
        },
      };
    },
    runtimeWithoutCheckpoints: undefined,
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
