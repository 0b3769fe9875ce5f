// ctrd import --rootfs and ctrd commit against a private containerd.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { busyboxLayer, layerTar } from "../harness/images.js";
import { collectGarbage, storeContents } from "../images/gc.js";
import { ctrd, useHarnessCtrd } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-commit-");

async function ok(args: string[]): Promise<string> {
  const result = await ctrd([args[0] ?? "", ...fx.global, ...args.slice(1)]);
  if (result.code !== 0) throw new Error(`ctrd ${args.join(" ")}: ${result.code}\n${result.stderr}`);
  return result.stdout;
}

describe("ctrd import --rootfs and ctrd commit", () => {
  test("a rootfs tarball imported with --change runs; a container's changes committed run too", async () => {
    const file = join(fx.containerd.dir, "rootfs.tar.gz");
    writeFileSync(file, gzipSync(await layerTar(busyboxLayer({ "etc/motd": "imported\n" }))));
    const imported = await ok([
      "import",
      "--rootfs",
      "-c",
      'CMD ["cat", "/etc/motd"]',
      "-c",
      "ENV PATH=/bin",
      file,
      "cli/base:1",
    ]);
    expect(imported).toMatch(/^docker\.io\/cli\/base:1: sha256:[a-f0-9]{64}\n$/);
    expect(await ok(["run", "--rm", ...fx.cgroup, "cli/base:1"])).toBe("imported\n");

    await ok([
      "run",
      "--name",
      "cli-writer",
      ...fx.cgroup,
      "cli/base:1",
      "sh",
      "-c",
      "echo changed > /etc/motd; rm /etc/group",
    ]);
    const committed = await ok([
      "commit",
      "-c",
      "ENV MARK=committed",
      "-m",
      "from the cli",
      "cli-writer",
      "cli/committed:1",
    ]);
    expect(committed).toMatch(/^docker\.io\/cli\/committed:1: sha256:[a-f0-9]{64}\n$/);
    // The base's CMD, the new ENV beside the base's, the file changed and the deleted one gone.
    expect(await ok(["run", "--rm", ...fx.cgroup, "cli/committed:1"])).toBe("changed\n");
    expect(
      await ok([
        "run",
        "--rm",
        ...fx.cgroup,
        "cli/committed:1",
        "sh",
        "-c",
        'echo "$MARK $PATH"; ls /etc/group || true',
      ]),
    ).toBe("committed /bin\n");
    await ok(["rm", "cli-writer"]);

    await collectGarbage(fx.containerd.address, "ctrd");
    expect((await storeContents(fx.containerd.address, "ctrd")).leases).toEqual([]);
  });

  test("commits a running container, frozen meanwhile and running again after", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "cli-runner",
      ...fx.cgroup,
      "cli/base:1",
      "sh",
      "-c",
      "echo up > /up; sleep 600",
    ]);
    for (let attempt = 0; attempt < 200; attempt++) {
      const probe = await ctrd(["exec", ...fx.global, "cli-runner", "cat", "/up"]);
      if (probe.code === 0) break;
      await sleep(50);
    }
    // Without a name the image is dangling: its id is what is printed, <none> what ctrd images shows.
    expect(await ok(["commit", "cli-runner"])).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    expect(await ok(["images"])).toMatch(/\n<none>\s+<none>\s+[a-f0-9]{12}\s/);
    await ok(["commit", "cli-runner", "cli/running:1"]);
    expect(await ok(["inspect", "-f", "{{.State.Status}}", "cli-runner"])).toBe("running\n");
    expect(await ok(["run", "--rm", ...fx.cgroup, "cli/running:1", "cat", "/up"])).toBe("up\n");
    await ok(["rm", "-f", "cli-runner"]);
  });

  test("refuses what docker refuses: a change that is not allowed, a missing container, a name without --rootfs", async () => {
    const change = await ctrd(["commit", ...fx.global, "-c", "RUN true", "nosuch"]);
    expect(change.code).not.toBe(0);
    const missing = await ctrd(["commit", ...fx.global, "nosuch"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no such container: nosuch");
    const nameless = await ctrd(["import", ...fx.global, "some.tar", "name:1"]);
    expect(nameless.code).not.toBe(0);
    expect(nameless.stderr).toContain("go with --rootfs only");
    const file = join(fx.containerd.dir, "rootfs.tar");
    writeFileSync(file, await layerTar(busyboxLayer()));
    const badChange = await ctrd(["import", ...fx.global, "--rootfs", "-c", "RUN true", file]);
    expect(badChange.code).not.toBe(0);
    expect(badChange.stderr).toContain("run is not a valid change command");
  });
});
