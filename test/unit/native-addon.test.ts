// The loader both native addons go through (native/fifo, native/network): scripts/setup.sh builds
// them, so here they must load; elsewhere null sends their callers to the fallbacks.
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { errnoName, nativeAddon } from "../../src/platform/native-addon.js";
import { packagePath } from "../../src/platform/package-dir.js";

// A variable of this test's own: the loader reads it on the first call only.
const envVar = `CTRD_TEST_ADDON_${process.pid}`;
afterEach(() => {
  delete process.env[envVar];
});

const fifoNode = "native/fifo/build/fifo.node";
type FifoAddon = { mkfifo: unknown };

test("the addon is found under the package, loaded on the first call and kept", () => {
  const load = nativeAddon<FifoAddon>(fifoNode, envVar);
  const addon = load();
  expect(typeof addon?.mkfifo).toBe("function");
  process.env[envVar] = "none";
  expect(load()).toBe(addon);
});

test("the variable names another build", () => {
  process.env[envVar] = packagePath(fifoNode);
  expect(typeof nativeAddon<FifoAddon>("native/no-such/build/none.node", envVar)()?.mkfifo).toBe("function");
});

test("none where the variable says none, or names a file that is not there", () => {
  for (const value of ["none", join(packagePath("native"), "no-such.node")]) {
    process.env[envVar] = value;
    expect(nativeAddon<FifoAddon>(fifoNode, envVar)()).toBeNull();
  }
});

test("errno names", () => {
  expect(errnoName(17)).toBe("EEXIST");
  expect(errnoName(99_999)).toBe("errno 99999");
});
