import { defineConfig } from "vitest/config";

// Integration tests start their own containerd (one per file) and real shims; on 2 cores
// two files at a time keeps them from starving each other.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ["default"],
  },
});
