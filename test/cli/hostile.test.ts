// Input a hostile or careless user gives ctrd: caught up front, typed, one line; output that cannot be forged.
import { describe, expect, test } from "vitest";
import { ctrd, useHarnessCtrd } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-hostile-");

describe("ctrd and hostile input", () => {
  test("run -w with a relative directory fails before anything runs, as docker's does", async () => {
    const result = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rm",
      "--rootfs",
      fx.containerd.rootfs,
      "-w",
      "relative",
      "--",
      "true",
    ]);
    expect(result.code, result.stderr).toBe(125);
    expect(result.stderr).toMatch(
      /^ctrd: [^\n]*working directory "relative" is invalid: it must be an absolute path \(invalid_argument\)\n$/,
    );
    const ps = await ctrd(["ps", "-a", "--json", ...fx.global]);
    expect(JSON.parse(ps.stdout)).toEqual([]);
  });

  test("info shows a runtime path with a newline escaped, on one line", async () => {
    const result = await ctrd(["info", ...fx.global, "--add-runtime", "evil=/opt/x\nInjected: yes"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toMatch(/^Injected: yes/m);
    expect(result.stdout).toContain("path /opt/x\\nInjected: yes");
  });
});
