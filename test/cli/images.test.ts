// ctrd pull / images / tag / rmi / run IMAGE against a private containerd and a real registry.
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { busyboxLayer } from "../harness/images.js";
import { startRegistryFront } from "../harness/registry-front.js";
import { collectGarbage, storeContents } from "../images/gc.js";
import { publish, useRegistry } from "../images/helpers.js";
import { ctrd, startCtrd, useHarnessCtrd } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-img-");

/**
 * A front to the registry that passes everything on, except the GET of one blob: it sends that blob's
 * first bytes and then nothing more (`stalled` resolves then), as a registry that hangs mid-blob.
 */
async function stallingFront(upstream: string, digest: string) {
  let stall: () => void = () => {};
  const stalled = new Promise<void>((resolve) => {
    stall = resolve;
  });
  const host = await startRegistryFront(upstream, {
    relay(req, answer, res) {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!(req.method === "GET" && (req.url ?? "").endsWith(`/blobs/${digest}`))) {
        answer.pipe(res);
        return;
      }
      answer.once("data", (chunk: Buffer) => {
        answer.destroy();
        res.write(chunk.subarray(0, 1024), () => stall());
      });
    },
  });
  return { host, stalled };
}
const reg = useRegistry();

describe("ctrd images", () => {
  test("pull prints plain progress lines off a terminal; images lists it; run runs its Cmd", async () => {
    const { ref } = await publish(reg, "cli/hello:1");
    const pulled = await ctrd(["pull", ...fx.global, ref]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(new RegExp(`^${ref}: sha256:[a-f0-9]{64}\\n$`));
    expect(pulled.stderr).toMatch(/[a-f0-9]{12}: unpacked/);
    const listed = await ctrd(["images", ...fx.global]);
    expect(listed.stdout).toMatch(new RegExp(`${reg.registry.host}/cli/hello\\s+1\\s+[a-f0-9]{12}\\s+\\d`));
    const ran = await ctrd(["run", "--rm", ...fx.global, ...fx.cgroup, ref]);
    expect(ran).toMatchObject({
      code: 0,
      stdout: "hello from the image\nindex.html\nlink\ngreeting=hi cwd=/www id=0:0\n",
    });
  });

  test("run IMAGE CMD replaces the Cmd, -e adds to its Env, -u and -w replace User and WorkingDir", async () => {
    const { ref } = await publish(reg, "cli/hello:2");
    const ran = await ctrd([
      "run",
      "--rm",
      ...fx.global,
      ...fx.cgroup,
      "-e",
      "EXTRA=1",
      "-u",
      "nobody",
      "-w",
      "/tmp",
      ref,
      "sh",
      "-c",
      'echo "$GREETING $EXTRA $(pwd) $(id -u)"; exit 4',
    ]);
    // Pulled because missing, as docker run does.
    expect(ran.stderr).toContain(`Unable to find image '${ref}' locally`);
    expect(ran).toMatchObject({ code: 4, stdout: "hi 1 /tmp 65534\n" });
  });

  test("run -d IMAGE: inspect names the image; stop sends the image's StopSignal, as docker stop does", async () => {
    const { ref } = await publish(reg, "cli/stopsignal:1", {
      layers: [busyboxLayer()],
      config: {
        Cmd: ["sh", "-c", "trap 'exit 7' INT; echo up; while true; do sleep 0.1; done"],
        Env: ["PATH=/bin"],
        StopSignal: "SIGINT",
      },
    });
    const id = `stopsignal-${process.pid}`;
    const run = await ctrd(["run", "-d", "--name", id, ...fx.global, ...fx.cgroup, ref]);
    expect(run.code, run.stderr).toBe(0);
    for (let logs = ""; logs !== "up\n"; logs = (await ctrd(["logs", id, ...fx.global])).stdout)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const image = await ctrd(["inspect", "-f", "{{.Config.Image}}", id, ...fx.global]);
    expect(image.stdout).toBe(`${ref}\n`);
    // A long grace: had SIGTERM been sent (sh as PID 1 ignores it), only SIGKILL would end it, after it.
    expect((await ctrd(["stop", "-t", "600", id, ...fx.global])).stdout).toBe(`${id}\n`);
    const exit = await ctrd(["inspect", "-f", "{{.State.ExitCode}}", id, ...fx.global]);
    expect(exit.stdout).toBe("7\n");
    expect((await ctrd(["rm", id, ...fx.global])).code).toBe(0);
  });

  test("--pull never with a missing image fails before anything is made; -- keeps the default rootfs", async () => {
    const missing = await ctrd([
      "run",
      "--rm",
      "--pull",
      "never",
      ...fx.global,
      `${reg.registry.host}/cli/none:1`,
    ]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain("(not_found)");
    const plain = await ctrd(["run", "--rm", ...fx.global, ...fx.cgroup, "--", "echo", "default rootfs"]);
    expect(plain).toMatchObject({ code: 0, stdout: "default rootfs\n" });
  });

  test("run IMAGE that fails at create (a taken --name, an unknown --runtime) leaves no snapshot", async () => {
    const { ref } = await publish(reg, "cli/created:1");
    const ns = ["--namespace", "snapleak"];
    const taken = await ctrd([
      "run",
      "-d",
      "--name",
      "taken",
      ...fx.global,
      ...ns,
      ...fx.cgroup,
      "--",
      "sleep",
      "60",
    ]);
    expect(taken.code, taken.stderr).toBe(0);
    const clash = await ctrd(["run", "--rm", "--name", "taken", ...fx.global, ...ns, ...fx.cgroup, ref]);
    expect(clash.code).toBe(125);
    expect(clash.stderr).toContain("(already_exists)");
    const runtime = await ctrd([
      "run",
      "--rm",
      "--runtime",
      "nosuch",
      "--name",
      "badrt",
      ...fx.global,
      ...ns,
      ref,
    ]);
    expect(runtime.code).toBe(125);
    expect(runtime.stderr).toContain("(invalid_argument)");
    const { snapshots } = await storeContents(fx.containerd.address, "snapleak");
    expect(snapshots.filter((key) => !key.startsWith("sha256:"))).toEqual([]);
    // The name is free once its container is removed.
    expect((await ctrd(["rm", "-f", "taken", ...fx.global, ...ns])).code).toBe(0);
    const again = await ctrd(["run", "--rm", "--name", "taken", ...fx.global, ...ns, ...fx.cgroup, ref]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("hello from the image");
  });

  test("Ctrl-C while run pulls its image stops the pull: exit 130, nothing left", async () => {
    const { ref, image } = await publish(reg, "cli/stalled:1", {
      layers: [busyboxLayer(), { files: { "big.bin": randomBytes(256 * 1024) }, uncompressed: true }],
      config: { Cmd: ["true"] },
    });
    const front = await stallingFront(reg.registry.host, image.layers[1]?.digest ?? "?");
    const proc = startCtrd(
      [
        "run",
        "--rm",
        ...fx.global,
        "--namespace",
        "stalled",
        ...fx.cgroup,
        ref.replace(reg.registry.host, front.host),
      ],
      { timeoutMs: 20_000 },
    );
    await front.stalled;
    proc.child.kill("SIGINT");
    const result = await proc.result;
    expect(result.code, result.stderr).toBe(130);
    expect(await storeContents(fx.containerd.address, "stalled")).toMatchObject({ images: [], leases: [] });
    await collectGarbage(fx.containerd.address, "stalled");
    expect(await storeContents(fx.containerd.address, "stalled")).toMatchObject({ blobs: [], snapshots: [] });
    expect((await ctrd(["ps", "-a", "-q", ...fx.global, "--namespace", "stalled"])).stdout).toBe("");
  });

  test("Ctrl-C during ctrd pull stops it: exit 130, no lease kept, nothing registered", async () => {
    const { ref, image } = await publish(reg, "cli/interrupted:1", {
      layers: [busyboxLayer(), { files: { "big.bin": randomBytes(256 * 1024) }, uncompressed: true }],
      config: { Cmd: ["true"] },
    });
    const front = await stallingFront(reg.registry.host, image.layers[1]?.digest ?? "?");
    const proc = startCtrd(
      ["pull", ...fx.global, "--namespace", "interrupted", ref.replace(reg.registry.host, front.host)],
      { timeoutMs: 20_000 },
    );
    await front.stalled;
    proc.child.kill("SIGINT");
    const result = await proc.result;
    expect(result.code, result.stderr).toBe(130);
    expect(await storeContents(fx.containerd.address, "interrupted")).toMatchObject({
      images: [],
      leases: [],
    });
  });

  test("tag gives a second name; rmi removes names, and a missing one fails alone", async () => {
    const { ref } = await publish(reg, "cli/tagme:1", {
      layers: [busyboxLayer()],
      config: { Cmd: ["echo", "tagged"], Env: ["PATH=/bin"] },
    });
    expect((await ctrd(["pull", "-q", ...fx.global, ref])).stdout).toBe(`${ref}\n`);
    expect((await ctrd(["tag", ...fx.global, ref, "local/tagged:v2"])).code).toBe(0);
    const ran = await ctrd(["run", "--rm", ...fx.global, ...fx.cgroup, "local/tagged:v2"]);
    expect(ran).toMatchObject({ code: 0, stdout: "tagged\n" });
    const names = (await ctrd(["images", "-q", ...fx.global])).stdout.split("\n");
    expect(names).toContain("docker.io/local/tagged:v2");
    const rmi = await ctrd(["rmi", ...fx.global, "local/tagged:v2", "local/nosuch", ref]);
    expect(rmi.code).toBe(125);
    expect(rmi.stdout).toBe(`Untagged: docker.io/local/tagged:v2\nUntagged: ${ref}\n`);
    expect(rmi.stderr).toContain("no such image: local/nosuch");
  });

  test("save -o, rmi, import back, push to a new name", async () => {
    const { ref } = await publish(reg, "cli/roundtrip:1");
    expect((await ctrd(["pull", "-q", ...fx.global, ref])).code).toBe(0);
    const file = join(reg.workDir, "cli-save.tar");
    const saved = await ctrd(["save", ...fx.global, "-o", file, ref]);
    expect(saved.code, saved.stderr).toBe(0);
    expect((await ctrd(["rmi", ...fx.global, ref])).code).toBe(0);
    const imported = await ctrd(["import", ...fx.global, file]);
    expect(imported.stdout).toMatch(new RegExp(`^${ref}: sha256:`));
    const target = `${reg.registry.host}/cli/pushed:1`;
    expect((await ctrd(["tag", ...fx.global, ref, target])).code).toBe(0);
    const pushed = await ctrd(["push", ...fx.global, target]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stderr).toMatch(/: (mounted|exists)\n/);
    const missing = await ctrd(["import", ...fx.global, join(reg.workDir, "nosuch.tar")]);
    expect(missing.code).toBe(125);
  });

  test("save -o: a failed save keeps the file that was there; a path it cannot write is one line", async () => {
    const { ref } = await publish(reg, "cli/saved:1");
    expect((await ctrd(["pull", "-q", ...fx.global, ref])).code).toBe(0);
    const dir = join(reg.workDir, "save-to");
    mkdirSync(dir);
    const kept = join(dir, "backup.tar");
    writeFileSync(kept, "an earlier save\n");
    const typo = await ctrd(["save", ...fx.global, "-o", kept, "cli/nosuch:1"]);
    expect(typo).toMatchObject({
      code: 125,
      stderr: expect.stringMatching(/^ctrd: no such image: cli\/nosuch:1/),
    });
    expect(readFileSync(kept, "utf8")).toBe("an earlier save\n");
    for (const [output, why] of [
      [join(dir, "no/such/dir/x.tar"), /ENOENT/],
      [dir, /is a directory/],
    ] as const) {
      const failed = await ctrd(["save", ...fx.global, "-o", output, ref]);
      expect(failed.code, failed.stderr).toBe(125);
      expect(failed.stderr).toMatch(new RegExp(`^ctrd: cannot write ${output}: .*${why.source}.*\\n$`));
    }
    const saved = await ctrd(["save", ...fx.global, "-o", kept, ref]);
    expect(saved.code, saved.stderr).toBe(0);
    expect(readFileSync(kept).subarray(0, 10).toString()).toBe("oci-layout");
    expect(readdirSync(dir)).toEqual(["backup.tar"]);
  });
});
