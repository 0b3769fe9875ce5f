// Runtime selection through the CLI: the v1 shim, --add-runtime with --runtime, --default-runtime in info and run.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { requireBinary } from "../harness/binaries.js";
import { ctrd, type PsRow, useHarnessCtrd } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-rt-");

describe("runtimes", () => {
  test("--runtime io.containerd.runtime.v1.linux runs on the v1 shim", async () => {
    const result = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rm",
      "--rootfs",
      fx.containerd.rootfs,
      "--runtime",
      "io.containerd.runtime.v1.linux",
      "--",
      "sh",
      "-c",
      "echo v1; exit 5",
    ]);
    expect(result).toMatchObject({ code: 5, stdout: "v1\n" });
  });

  test("a -d container on the v1 shim (no log driver there) starts and restarts again", async () => {
    const id = `v1-again-${process.pid}`;
    const v1 = ["--runtime", "io.containerd.runtime.v1.linux"];
    const run = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      ...v1,
      "-d",
      "--name",
      id,
      "--",
      "sleep",
      "60",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect((await ctrd(["stop", "-t", "0", ...fx.global, id])).code).toBe(0);
    const started = await ctrd(["start", ...fx.global, id]);
    expect(started, started.stderr).toMatchObject({ code: 0, stdout: `${id}\n` });
    const restarted = await ctrd(["restart", "-t", "0", ...fx.global, id]);
    expect(restarted, restarted.stderr).toMatchObject({ code: 0, stdout: `${id}\n` });
    const ps = JSON.parse((await ctrd(["ps", "--json", ...fx.global])).stdout) as PsRow[];
    expect(ps.find((row) => row.id === id)?.status).toBe("running");
    expect((await ctrd(["rm", "-f", ...fx.global, id])).code).toBe(0);
  });

  test("--add-runtime NAME=PATH with --runtime NAME runs that binary", async () => {
    const marker = join(fx.containerd.dir, "wrapper-ran");
    const wrapper = join(fx.containerd.dir, "runc-wrapper");
    writeFileSync(wrapper, `#!/bin/sh\ntouch ${marker}\nexec ${requireBinary("runc")} "$@"\n`, {
      mode: 0o755,
    });
    const result = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--add-runtime",
      `wrapped=${wrapper}`,
      "--runtime",
      "wrapped",
      "--rm",
      "--rootfs",
      fx.containerd.rootfs,
      "--",
      "echo",
      "wrapped",
    ]);
    expect(result).toMatchObject({ code: 0, stdout: "wrapped\n" });
    expect(existsSync(marker)).toBe(true);
  });

  test("--default-runtime changes what info reports and what a new container gets", async () => {
    const flags = [...fx.global, "--default-runtime", "io.containerd.runtime.v1.linux"];
    const info = await ctrd(["info", "--json", ...flags]);
    expect(info.code, info.stderr).toBe(0);
    const report = JSON.parse(info.stdout) as {
      defaultRuntime: string;
      backend: string;
      containerd: { address: string; version: string };
      namespace: string;
      runtimes: { name: string; shim: string; isDefault: boolean }[];
    };
    expect(report).toMatchObject({
      backend: "remote",
      defaultRuntime: "io.containerd.runtime.v1.linux",
      namespace: "ctrd",
      containerd: { address: fx.containerd.address },
    });
    expect(report.containerd.version).toMatch(/^\d+\.\d+/);
    expect(report.runtimes.filter((r) => r.isDefault).map((r) => r.name)).toEqual([
      "io.containerd.runtime.v1.linux",
    ]);
    const human = await ctrd(["info", ...flags]);
    expect(human.stdout).toMatch(/Default runtime: io\.containerd\.runtime\.v1\.linux/);
    // runc answers `runc features` (1.1+): the OCI versions the default runtime accepts.
    expect(report).toMatchObject({
      defaultRuntimeOci: { min: expect.stringMatching(/^1\./), max: expect.stringMatching(/^1\./) },
    });
    expect(human.stdout).toMatch(/^ {2}OCI versions: {2}1\.\S+ to 1\.\S+$/m);
    expect(human.stdout).toMatch(
      /^ {2}\* io\.containerd\.runtime\.v1\.linux\s+shim io\.containerd\.runtime\.v1\.linux/m,
    );
    expect(human.stdout).toMatch(/^ {4}runc\s+shim io\.containerd\.runc\.v2/m);

    const started = await ctrd([
      "run",
      ...flags,
      ...fx.cgroup,
      "-d",
      "--name",
      "v1-default",
      "--rootfs",
      fx.containerd.rootfs,
      "--",
      "sleep",
      "30",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const ps = await ctrd(["ps", "--json", ...fx.global]);
    expect((JSON.parse(ps.stdout) as PsRow[]).map((row) => [row.id, row.runtime])).toEqual([
      ["v1-default", "io.containerd.runtime.v1.linux"],
    ]);
    expect((await ctrd(["rm", "-f", ...fx.global, "v1-default"])).code).toBe(0);
  });

  test("--config daemon.json: its runtimes and default-runtime, with the flag winning", async () => {
    const config = join(fx.containerd.dir, "daemon.json");
    writeFileSync(
      config,
      JSON.stringify({ runtimes: { plain: { path: requireBinary("runc") } }, "default-runtime": "plain" }),
    );
    const info = await ctrd(["info", "--json", ...fx.global, "--config", config]);
    expect(info.code, info.stderr).toBe(0);
    const report = JSON.parse(info.stdout) as {
      defaultRuntime: string;
      runtimes: { name: string; source: string }[];
    };
    expect(report.defaultRuntime).toBe("plain");
    expect(report.runtimes).toContainEqual(expect.objectContaining({ name: "plain", source: "configured" }));
    const overridden = await ctrd([
      "info",
      "--json",
      ...fx.global,
      "--config",
      config,
      "--default-runtime",
      "runc",
    ]);
    expect(JSON.parse(overridden.stdout)).toMatchObject({ defaultRuntime: "runc" });
    const result = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--config",
      config,
      "--rm",
      "--rootfs",
      fx.containerd.rootfs,
      "--",
      "echo",
      "plain",
    ]);
    expect(result).toMatchObject({ code: 0, stdout: "plain\n" });
  });
});
