import { spawn } from "node:child_process";
import { expect, test } from "vitest";
import { nextCgroup, readAll, uniqueId, useRemote } from "../harness/remote.js";

const fx = useRemote("koffi-free");

test("importing the package and running a remote container maps no koffi: FIFOs come from native/fifo", async () => {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "test/fixtures/koffi-free-client.ts",
      fx.ctrd.address,
      fx.ctrd.stateDir,
      fx.ctrd.rootfs,
      nextCgroup(fx.ctrd),
      uniqueId("koffi-free"),
    ],
    { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 },
  );
  const stdout = readAll(child.stdout);
  const stderr = readAll(child.stderr);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  expect(code, await stderr).toBe(0);
  const report = JSON.parse(await stdout) as { stdout: string; exitCode: number; natives: string[] };
  expect(report).toMatchObject({ stdout: "hello\n", exitCode: 0 });
  expect(report.natives.filter((path) => /koffi/.test(path))).toEqual([]);
  expect(report.natives.some((path) => path.endsWith("native/fifo/build/fifo.node"))).toBe(true);
});
