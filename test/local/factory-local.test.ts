// createClient choosing the local backend, on Linux through the fake vmcompute library.
import { expect, test } from "vitest";
import { createClient } from "../../src/libcontainerd/factory.js";
import { WindowsBuild } from "../../src/platform/index.js";
import { ensureFakeLibrary } from "./fake.js";

test.each([
  ["RS4", WindowsBuild.RS4, "1.0"],
  ["RS5", WindowsBuild.RS5, "2.1"],
])(
  "backend local, emulating %s (build %i): a LocalClient speaking HCS schema %s",
  async (_name, windowsBuild, schema) => {
    const client = await createClient({
      platform: { os: "linux", windowsBuild },
      backend: "local",
      vmcomputeLibrary: ensureFakeLibrary(),
      namespace: "factory-local",
    });
    try {
      expect(client.backend).toBe("local");
      expect(client.namespace).toBe("factory-local");
      expect(client.choice).toMatchObject({ backend: "local", windowsBuild });
      expect(client.choice.reason).toContain(`schema ${schema}`);
      expect((await client.version()).version).toContain(`schema ${schema}`);
      expect(await client.listContainers()).toEqual([]);
    } finally {
      await client.close();
    }
  },
);

test("Windows without the containerd opt-in gets the local backend (injected platform)", async () => {
  const client = await createClient({
    platform: { os: "windows", windowsBuild: WindowsBuild.LTSC2022 },
    containerdAddress: "\\\\.\\pipe\\containerd-containerd",
    env: {},
    vmcomputeLibrary: ensureFakeLibrary(),
  });
  try {
    expect(client.backend).toBe("local");
    expect(client.choice.reason).toMatch(/without experimental, DOCKER_WINDOWS_CONTAINERD.*ignored/);
  } finally {
    await client.close();
  }
});
