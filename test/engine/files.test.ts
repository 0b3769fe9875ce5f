import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pack } from "tar-stream";
import { afterAll, describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

// docker cp, docker export and testcontainers' file copies: the archive endpoints and export.
const engine = useEngine("lcd-engine-files-");

/** The engine's temporary rootfs mounts of stopped containers. */
function engineMounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.includes(join(engine.containerd.dir, "engine", "mounts")));
}

/**
 * None left. A client may close a GET's connection once it has the whole tar, before the engine has
 * unmounted: the mount goes a moment later (and anything else done to the container waits for it).
 */
async function noMountsLeft(): Promise<string[]> {
  for (let attempt = 0; attempt < 100 && engineMounts().length > 0; attempt++) await sleep(50);
  return engineMounts();
}

/** A tar of the given entries (name → content, or a symlink / directory). */
async function tarOf(
  entries: { name: string; content?: string; linkname?: string; type?: "directory" }[],
): Promise<Buffer> {
  const archive = pack();
  for (const entry of entries) {
    if (entry.linkname !== undefined)
      archive.entry({ name: entry.name, type: "symlink", linkname: entry.linkname });
    else if (entry.type === "directory") archive.entry({ name: entry.name, type: "directory", mode: 0o755 });
    else archive.entry({ name: entry.name, mode: 0o644 }, entry.content ?? "");
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An Engine API request with a binary body and answer (the harness's api() is for text). */
function raw(method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: engine.socket,
        path,
        method,
        headers: body ? { "Content-Type": "application/x-tar", "Content-Length": String(body.length) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The names in a tar, as GNU tar lists them. */
function tarNames(tar: Buffer): string[] {
  return execFileSync("tar", ["-t"], { input: tar }).toString("utf8").split("\n").filter(Boolean);
}

describe("ctrd serve: docker cp", () => {
  it("copies files and directories both ways with a running container", async () => {
    const dir = join(engine.containerd.dir, "cp-running");
    mkdirSync(join(dir, "tree", "sub"), { recursive: true });
    writeFileSync(join(dir, "file.txt"), "from the host\n");
    writeFileSync(join(dir, "tree", "sub", "leaf"), "leaf\n");
    symlinkSync("leaf", join(dir, "tree", "sub", "link"));
    const name = `cp-run-${randomBytes(3).toString("hex")}`;
    expect((await engine.docker(["run", "-d", "--name", name, engine.image, "sleep", "300"])).code).toBe(0);
    expect(await engine.docker(["cp", join(dir, "file.txt"), `${name}:/tmp/`])).toMatchObject({ code: 0 });
    expect(await engine.docker(["cp", join(dir, "tree"), `${name}:/tmp/`])).toMatchObject({ code: 0 });
    const inside = await engine.docker([
      "exec",
      name,
      "sh",
      "-c",
      "cat /tmp/file.txt /tmp/tree/sub/leaf; readlink /tmp/tree/sub/link",
    ]);
    expect(inside).toMatchObject({ code: 0, stdout: "from the host\nleaf\nleaf\n" });
    expect(await engine.docker(["exec", name, "sh", "-c", "echo made inside > /tmp/made"])).toMatchObject({
      code: 0,
    });
    expect(await engine.docker(["cp", `${name}:/tmp/made`, join(dir, "made")])).toMatchObject({ code: 0 });
    expect(readFileSync(join(dir, "made"), "utf8")).toBe("made inside\n");
    expect(await engine.docker(["cp", `${name}:/tmp/tree`, join(dir, "back")])).toMatchObject({ code: 0 });
    expect(readFileSync(join(dir, "back", "sub", "leaf"), "utf8")).toBe("leaf\n");
    expect(lstatSync(join(dir, "back", "sub", "link")).isSymbolicLink()).toBe(true);
    const missing = await engine.docker(["cp", `${name}:/not/there`, join(dir, "x")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No such container:path/);
    // The whole filesystem of a running container: its /proc is not read (some of it blocks for good).
    const whole = await raw("GET", `/containers/${name}/archive?path=/`);
    expect(whole.status).toBe(200);
    const names = tarNames(whole.body);
    expect(names).toContain("./tmp/made");
    expect(names).toContain("./proc/");
    expect(names.filter((entry) => /^\.\/(proc|sys)\/./.test(entry))).toEqual([]);
    await engine.docker(["rm", "-f", name]);
  });

  it("copies into a created container before it starts, and out of a stopped one, leaving no mount", async () => {
    const dir = join(engine.containerd.dir, "cp-stopped");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "script.sh"), "echo copied before start\n");
    const name = `cp-created-${randomBytes(3).toString("hex")}`;
    expect(
      (await engine.docker(["create", "--name", name, engine.image, "sh", "/opt/new/script.sh"])).code,
    ).toBe(0);
    expect(await engine.docker(["cp", join(dir, "script.sh"), `${name}:/tmp/script.sh`])).toMatchObject({
      code: 0,
    });
    const put = await raw(
      "PUT",
      `/containers/${name}/archive?path=/`,
      await tarOf([{ name: "opt/new/script.sh", content: "echo copied before start\n" }]),
    );
    expect(put.status, put.body.toString()).toBe(200);
    expect(await noMountsLeft()).toEqual([]);
    const started = await engine.docker(["start", "-a", name]);
    expect(started).toMatchObject({ code: 0, stdout: "copied before start\n" });
    expect(await engine.docker(["cp", `${name}:/tmp/script.sh`, join(dir, "out.sh")])).toMatchObject({
      code: 0,
    });
    expect(readFileSync(join(dir, "out.sh"), "utf8")).toBe("echo copied before start\n");
    expect(await noMountsLeft()).toEqual([]);
    await engine.docker(["rm", name]);
  });

  it("resolves symlinks inside the container: neither the container's links nor the archive's lead out", async () => {
    const marker = `ctrd-cp-escape-${randomBytes(4).toString("hex")}`;
    const name = `cp-links-${randomBytes(3).toString("hex")}`;
    expect((await engine.docker(["run", "-d", "--name", name, engine.image, "sleep", "300"])).code).toBe(0);
    expect(
      await engine.docker([
        "exec",
        name,
        "sh",
        "-c",
        "ln -s / /tmp/up && ln -s ../../../../../../../../tmp /tmp/dots",
      ]),
    ).toMatchObject({ code: 0 });
    const host = join(engine.containerd.dir, marker);
    writeFileSync(host, "x\n");
    try {
      expect(await engine.docker(["cp", host, `${name}:/tmp/up`])).toMatchObject({ code: 0 });
      expect(await engine.docker(["cp", host, `${name}:/tmp/dots/`])).toMatchObject({ code: 0 });
      const archive = await tarOf([
        { name: "evil", linkname: "/" },
        { name: `evil/${marker}-archive`, content: "through a link\n" },
      ]);
      const put = await raw("PUT", `/containers/${name}/archive?path=/tmp`, archive);
      expect(put.status, put.body.toString()).toBe(200);
      const inside = await engine.docker([
        "exec",
        name,
        "sh",
        "-c",
        `ls /${marker} /tmp/${marker} /${marker}-archive`,
      ]);
      expect(inside).toMatchObject({ code: 0 });
      expect(existsSync(`/${marker}`)).toBe(false);
      expect(existsSync(`/tmp/${marker}`)).toBe(false);
      expect(existsSync(`/${marker}-archive`)).toBe(false);
      const outside = await tarOf([{ name: `../${marker}-dots`, content: "x" }]);
      const refused = await raw("PUT", `/containers/${name}/archive?path=/tmp`, outside);
      expect(refused.status).toBe(400);
      expect(refused.body.toString()).toMatch(/outside of the extraction point/);
    } finally {
      for (const path of [`/${marker}`, `/tmp/${marker}`, `/${marker}-archive`])
        rmSync(path, { force: true });
      await engine.docker(["rm", "-f", name]);
    }
  });

  it("copies a hard-linked symlink in as a link, leaving the host file it names alone", async () => {
    // `cp -al` of a tree, or `ln` on a symlink: the archive holds a hard link to a symlink. Its chmod and
    // utimes must not follow it (the engine runs them from the host's root): moby's handleLChmod.
    const base = join(engine.containerd.dir, `cp-hardlink-${randomBytes(3).toString("hex")}`);
    const victim = join(base, "host-victim");
    const tree = join(base, "tree");
    mkdirSync(tree, { recursive: true });
    writeFileSync(victim, "host file\n");
    chmodSync(victim, 0o600);
    utimesSync(victim, 1_000_000, 1_000_000);
    symlinkSync(victim, join(tree, "link"));
    execFileSync("ln", [join(tree, "link"), join(tree, "link2")]); // GNU ln: a hard link to the symlink itself
    for (const create of [
      ["run", "-d", engine.image, "sleep", "300"],
      ["create", engine.image, "true"],
    ]) {
      const created = await engine.docker(create);
      expect(created.code, created.stderr).toBe(0);
      const id = created.stdout.trim();
      try {
        expect(await engine.docker(["cp", tree, `${id}:/tmp/`])).toMatchObject({ code: 0 });
        const out = join(base, `out-${create[0]}`);
        expect(await engine.docker(["cp", `${id}:/tmp/tree`, out])).toMatchObject({ code: 0 });
        expect(readlinkSync(join(out, "link2"))).toBe(victim);
        expect(statSync(victim).mode & 0o7777).toBe(0o600);
        expect(statSync(victim).mtimeMs).toBe(1_000_000_000);
      } finally {
        await engine.docker(["rm", "-f", id]);
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  it("sends none of a running container's kernel files (/proc, /sys): dockerd's rootfs has them empty", async () => {
    const name = `cp-proc-${randomBytes(3).toString("hex")}`;
    expect((await engine.docker(["run", "-d", "--name", name, engine.image, "sleep", "300"])).code).toBe(0);
    try {
      const cpuinfo = await engine.docker(["cp", `${name}:/proc/cpuinfo`, "-"]);
      expect(cpuinfo.code).not.toBe(0);
      expect(cpuinfo.stderr).toMatch(/No such container:path: .*:\/proc\/cpuinfo/);
      const head = await raw("HEAD", `/containers/${name}/archive?path=/sys/kernel`);
      expect(head.status).toBe(404);
      const proc = await raw("GET", `/containers/${name}/archive?path=/proc`);
      expect(proc.status).toBe(200);
      expect(tarNames(proc.body)).toEqual(["proc/"]);
      const put = await raw(
        "PUT",
        `/containers/${name}/archive?path=/proc`,
        await tarOf([{ name: "x", content: "x" }]),
      );
      expect(put.status).toBe(403);
    } finally {
      await engine.docker(["rm", "-f", name]);
    }
  });

  it("an aborted PUT or GET leaves no mount and no worker, and the container still starts", async () => {
    const read = (path: string): string => {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return "";
      }
    };
    // This engine's workers (other tests run some too): children of the serve that uses this namespace.
    const workers = (): string[] =>
      readdirSync("/proc").filter((pid) => {
        if (!/^\d+$/.test(pid) || !read(`/proc/${pid}/cmdline`).includes("rootfs-worker.js")) return false;
        const parent = /^PPid:\s*(\d+)$/m.exec(read(`/proc/${pid}/status`))?.[1];
        return read(`/proc/${parent}/cmdline`).split("\0").includes(engine.namespace);
      });
    const created = await engine.docker(["create", engine.image, "true"]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    const big = await tarOf([{ name: "big", content: "x".repeat(8 * 1024 * 1024) }]);
    await new Promise<void>((resolve) => {
      const req = request({
        socketPath: engine.socket,
        method: "PUT",
        path: `/containers/${id}/archive?path=/tmp`,
        headers: { "Content-Length": String(big.length) },
      });
      req.on("error", () => resolve());
      // Half the archive, then the connection cut once the engine has begun to read it.
      req.write(big.subarray(0, 4 * 1024 * 1024), () => {
        req.destroy();
        resolve();
      });
    });
    await new Promise<void>((resolve) => {
      const req = request(
        { socketPath: engine.socket, method: "GET", path: `/containers/${id}/archive?path=/` },
        (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on("error", () => resolve());
      req.end();
    });
    expect(await noMountsLeft()).toEqual([]);
    for (let attempt = 0; attempt < 100 && workers().length > 0; attempt++) await sleep(50);
    expect(workers()).toEqual([]);
    const started = await engine.docker(["start", "-a", id]);
    expect(started.code, started.stderr).toBe(0);
    const removed = await engine.docker(["rm", id]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(engine.log()).not.toMatch(/unhandled/i);
    // A client that goes away is no failure of the engine's: not logged as one (it was, "Premature close").
    expect(engine.log()).not.toMatch(/request failed|Premature close/);
  });

  it("copies through a created container's volumes, read-write or read-only as bound, as dockerd mounts them", async () => {
    const base = join(engine.containerd.dir, `cp-volumes-${randomBytes(3).toString("hex")}`);
    const data = join(base, "data");
    const ro = join(base, "ro");
    const src = join(base, "src");
    for (const dir of [data, ro, src]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(data, "there"), "on the host\n");
    writeFileSync(join(src, "f"), "hello\n");
    const created = await engine.docker([
      "create",
      "--read-only",
      "-v",
      `${data}:/data`,
      "-v",
      `${ro}:/ro:ro`,
      engine.image,
      "cat",
      "/data/f",
    ]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    try {
      expect(await engine.docker(["cp", join(src, "f"), `${id}:/data/f`])).toMatchObject({ code: 0 });
      expect(readFileSync(join(data, "f"), "utf8")).toBe("hello\n");
      const out = await raw("GET", `/containers/${id}/archive?path=/data/there`);
      expect(out.status).toBe(200);
      expect(tarNames(out.body)).toEqual(["there"]);
      const readonly = await engine.docker(["cp", join(src, "f"), `${id}:/ro/`]);
      expect(readonly.code).not.toBe(0);
      expect(readonly.stderr).toMatch(/mounted volume is marked read-only/);
      const rootfs = await raw(
        "PUT",
        `/containers/${id}/archive?path=/tmp`,
        await tarOf([{ name: "x", content: "x" }]),
      );
      expect(rootfs.status).toBe(403);
      expect(rootfs.body.toString()).toMatch(/container rootfs is marked read-only/);
      expect(readdirSync(ro)).toEqual([]);
      expect(await noMountsLeft()).toEqual([]);
      expect(await engine.docker(["start", "-a", id])).toMatchObject({ code: 0, stdout: "hello\n" });
    } finally {
      await engine.docker(["rm", "-f", id]);
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("answers HEAD with the path's stat, and refuses what dockerd refuses", async () => {
    const name = `cp-stat-${randomBytes(3).toString("hex")}`;
    expect((await engine.docker(["create", "--name", name, "--read-only", engine.image, "true"])).code).toBe(
      0,
    );
    const head = await engine.api("HEAD", `/containers/${name}/archive?path=/etc`);
    expect(head.status).toBe(200);
    const stat = JSON.parse(
      Buffer.from(String(head.headers["x-docker-container-path-stat"]), "base64").toString("utf8"),
    ) as { name: string; mode: number; linkTarget: string };
    expect(stat).toMatchObject({ name: "etc", linkTarget: "" });
    // Go's os.ModeDir, as the docker CLI decodes it.
    expect(stat.mode >>> 31).toBe(1);
    expect((await engine.api("HEAD", `/containers/${name}/archive?path=/nope`)).status).toBe(404);
    const notDir = await engine.api("PUT", `/containers/${name}/archive?path=/etc/passwd`, "");
    expect(notDir).toMatchObject({ status: 400 });
    expect(notDir.body).toMatch(/not a directory/);
    const readOnly = await engine.api("PUT", `/containers/${name}/archive?path=/tmp`, "");
    expect(readOnly.status).toBe(403);
    expect(readOnly.body).toMatch(/read-only/);
    expect((await engine.api("PUT", `/containers/${name}/archive`, "")).status).toBe(400);
    expect(await noMountsLeft()).toEqual([]);
    await engine.docker(["rm", name]);
  });
});

describe("ctrd serve: docker export", () => {
  it("exports a stopped and a running container's rootfs, without /proc's contents", async () => {
    const name = `export-${randomBytes(3).toString("hex")}`;
    expect(
      (
        await engine.docker([
          "run",
          "-d",
          "--name",
          name,
          engine.image,
          "sh",
          "-c",
          "echo mark > /marked; sleep 300",
        ])
      ).code,
    ).toBe(0);
    const file = join(engine.containerd.dir, `${name}.tar`);
    const list = async (): Promise<string[]> => {
      const exported = await engine.docker(["export", "-o", file, name]);
      expect(exported.code, exported.stderr).toBe(0);
      return tarNames(readFileSync(file));
    };
    for (let attempt = 0; attempt < 100 && !(await list()).includes("./marked"); attempt++);
    const running = await list();
    expect(running).toContain("./marked");
    expect(running).toContain("./bin/busybox");
    expect(running.filter((entry) => entry.startsWith("./proc/") && entry !== "./proc/")).toEqual([]);
    await engine.docker(["stop", "-t", "0", name]);
    const stopped = await list();
    expect(stopped).toContain("./marked");
    expect(await noMountsLeft()).toEqual([]);
    await engine.docker(["rm", name]);
  });
});

describe("ctrd serve: testcontainers' file copies", () => {
  afterAll(() => {
    for (const name of readdirSync(tmpdir()))
      if (/^testcontainers-node-.*\.lock$/.test(name))
        rmSync(join(tmpdir(), name), { force: true, recursive: true });
  });

  it("copies content and files in before start and after, and an archive out", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
    const source = join(engine.containerd.dir, "tc-source.txt");
    writeFileSync(source, "a file from the host\n");
    const { GenericContainer } = await import("testcontainers");
    const container = await new GenericContainer(engine.image)
      .withCommand(["sleep", "300"])
      .withCopyContentToContainer([{ content: "content before start\n", target: "/www/index.html" }])
      .withCopyFilesToContainer([{ source, target: "/data/copied.txt" }])
      .start();
    try {
      const before = await container.exec(["cat", "/www/index.html", "/data/copied.txt"]);
      expect(before).toMatchObject({ exitCode: 0, output: "content before start\na file from the host\n" });
      await container.copyContentToContainer([{ content: "after start\n", target: "/later/after.txt" }]);
      expect((await container.exec(["cat", "/later/after.txt"])).output).toBe("after start\n");
      const archive = await container.copyArchiveFromContainer("/www/index.html");
      const chunks: Buffer[] = [];
      for await (const chunk of archive) chunks.push(chunk as Buffer);
      const tar = Buffer.concat(chunks);
      expect(tar.subarray(0, 10).toString("latin1").replace(/\0.*$/, "")).toBe("index.html");
      expect(tar.toString("latin1")).toContain("content before start\n");
    } finally {
      await container.stop();
    }
  });
});

describe("ctrd serve: docker diff", () => {
  it("lists what the container added, changed and deleted, not its mount points (it was a 404)", async () => {
    const name = `diff-${randomBytes(3).toString("hex")}`;
    const run = await engine.docker([
      "run",
      "-d",
      "--name",
      name,
      engine.image,
      "sh",
      "-c",
      "touch /added && mkdir -p /tree/sub && echo y > /tree/sub/f && rm /etc/group && echo x >> /etc/passwd && touch /ready && sleep 300",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const expected = [
      "A /added",
      "A /ready",
      "A /tree",
      "A /tree/sub",
      "A /tree/sub/f",
      "C /etc",
      "C /etc/passwd",
      "D /etc/group",
    ];
    const diff = async (): Promise<string[]> =>
      (await engine.docker(["diff", name])).stdout.split("\n").filter(Boolean).sort();
    for (let attempt = 0; attempt < 100 && !(await diff()).includes("A /ready"); attempt++) await sleep(50);
    expect(await diff()).toEqual(expected);
    await engine.docker(["stop", "-t", "0", name]);
    expect(await diff()).toEqual(expected);
    const created = await engine.docker(["create", engine.image, "true"]);
    expect(await engine.docker(["diff", created.stdout.trim()])).toMatchObject({ code: 0, stdout: "" });
    await engine.docker(["rm", "-f", name, created.stdout.trim()]);
  });
});

describe("ctrd serve: container sizes", () => {
  it("docker ps -s and inspect --size show what a container wrote (they were missing: 0B)", async () => {
    const name = `size-${randomBytes(3).toString("hex")}`;
    const run = await engine.docker([
      "run",
      "-d",
      "--name",
      name,
      engine.image,
      "sh",
      "-c",
      "head -c 300000 /dev/zero > /written && touch /ready && sleep 300",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const inspect = async (): Promise<{ SizeRw: number; SizeRootFs: number }> => {
      const answer = await engine.api("GET", `/containers/${name}/json?size=1`);
      return JSON.parse(answer.body) as { SizeRw: number; SizeRootFs: number };
    };
    for (let attempt = 0; attempt < 100 && (await inspect()).SizeRw < 300000; attempt++) await sleep(50);
    const sized = await inspect();
    expect(sized.SizeRw).toBeGreaterThanOrEqual(300000);
    expect(sized.SizeRootFs).toBeGreaterThan(sized.SizeRw);
    const ps = await engine.docker(["ps", "-s", "--filter", `name=${name}`, "--format", "{{.Size}}"]);
    expect(ps.stdout).toMatch(/^30\dkB \(virtual \d+(\.\d+)?[kM]B\)\n$/);
    await engine.docker(["rm", "-f", name]);
  });
});
