import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { type ClientRequest, createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBinary } from "../harness/binaries.js";
import { busyboxLayer, layerTar } from "../harness/images.js";
import { collectGarbage, storeContents } from "../images/gc.js";
import { eventActions, useEngine } from "./harness.js";

// docker commit and docker import against `ctrd serve`: the docker CLI and dockerode as clients.
const engine = useEngine("lcd-engine-commit-");

const dockerode = (): Docker => new Docker({ socketPath: engine.socket });

/** What containerd holds for the engine's namespace, after a GC: what a failed request must not add to. */
async function stored() {
  await collectGarbage(engine.containerd.address, engine.namespace);
  const contents = await storeContents(engine.containerd.address, engine.namespace);
  return { ...contents, blobs: contents.blobs.sort(), snapshots: contents.snapshots.sort() };
}

async function ok(args: string[], opts?: { input?: string }): Promise<string> {
  const result = await engine.docker(args, opts);
  if (result.code !== 0) throw new Error(`docker ${args.join(" ")}: ${result.code}\n${result.stderr}`);
  return result.stdout.trim();
}

/** The pids of `xz -dc` processes the engine (the ctrd serve on this test's socket) runs. */
function engineXz(): number[] {
  const cmdline = (pid: string): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return "";
    }
  };
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    if (cmdline(pid) !== "xz\0-dc\0") continue;
    let parent = "";
    try {
      parent = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "";
    } catch {}
    if (cmdline(parent).includes(engine.socket)) pids.push(Number(pid));
  }
  return pids;
}

/**
 * What containerd holds once the engine has cleaned up after a request that went away: asked again
 * (for a while) until it is `expected`, the engine's clean-up being asynchronous to the client.
 */
async function storedOnceSettled(expected: Awaited<ReturnType<typeof stored>>) {
  let now = await stored();
  for (let attempt = 0; attempt < 100 && JSON.stringify(now) !== JSON.stringify(expected); attempt++) {
    await sleep(100);
    now = await stored();
  }
  return now;
}

/** An import whose client sends half of `body` and is still connected (destroy the request to go). */
async function halfUpload(repo: string, body: Buffer): Promise<ClientRequest> {
  const req = request({
    socketPath: engine.socket,
    path: `/v1.41/images/create?fromSrc=-&repo=${repo}`,
    method: "POST",
    headers: { "Content-Type": "application/x-tar", "Content-Length": String(body.length) },
  });
  req.on("error", () => {});
  await new Promise<void>((resolve) => req.write(body.subarray(0, body.length >> 1), () => resolve()));
  return req;
}

/** Now, as `docker events --since` takes it (to the millisecond). */
const now = (): string => (Date.now() / 1000).toFixed(3);

/** The events of one container (or image) from `since` until a second from now, as `action` lines. */
const eventsOf = (since: string, filters: string[]): Promise<string[]> =>
  eventActions(engine, since, filters, String(Math.floor(Date.now() / 1000) + 1));

describe("docker commit", () => {
  it("makes an image of a stopped container's changes, with --change and the message and author, which runs", async () => {
    const since = now();
    await ok(["run", "--name", "writer", engine.image, "sh", "-c", "echo hello > /hello.txt"]);
    const id = await ok([
      "commit",
      "-c",
      'CMD ["cat", "/hello.txt"]',
      "-c",
      "ENV GREETING=hi",
      "-m",
      "wrote hello",
      "-a",
      "Tester <t@example.com>",
      "writer",
      "committed:1",
    ]);
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await ok(["run", "--rm", "committed:1"])).toBe("hello");
    // The base's Env is kept beside the new variable (the shell is found on its PATH).
    expect(await ok(["run", "--rm", "committed:1", "sh", "-c", "echo $GREETING"])).toBe("hi");

    const [inspect] = JSON.parse(await ok(["image", "inspect", "committed:1"])) as {
      Id: string;
      Author: string;
      Comment: string;
      Config: { Cmd: string[]; Env: string[] };
      RootFS: { Layers: string[] };
    }[];
    expect(inspect?.Id).toBe(id);
    expect(inspect?.Author).toBe("Tester <t@example.com>");
    expect(inspect?.Comment).toBe("wrote hello");
    expect(inspect?.Config.Cmd).toEqual(["cat", "/hello.txt"]);
    expect(inspect?.Config.Env).toContain("GREETING=hi");
    expect(inspect?.Config.Env.some((entry) => entry.startsWith("PATH="))).toBe(true);
    expect(inspect?.RootFS.Layers).toHaveLength(2);

    // docker history: the new layer on top, made by the container's command, with its comment.
    const history = (
      await ok(["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}|{{.Size}}", "committed:1"])
    ).split("\n");
    expect(history).toHaveLength(2);
    const [createdBy, comment, size] = (history[0] ?? "").split("|");
    expect(createdBy).toBe("sh -c echo hello > /hello.txt");
    expect(comment).toBe("wrote hello");
    expect(size).not.toBe("0B");

    const actions = await eventsOf(since, ["container=writer", "event=commit"]);
    expect(actions).toEqual(["commit"]);
    // The commit's lease is gone: what it made is held by the image alone.
    expect((await stored()).leases).toEqual([]);
  });

  it("pauses a running container for the diff and unpauses it after; --pause=false does not", async () => {
    await ok(["run", "-d", "--name", "runner", engine.image, "sh", "-c", "echo busy > /run.txt; sleep 600"]);
    for (let attempt = 0; attempt < 200; attempt++) {
      const probe = await engine.docker(["exec", "runner", "cat", "/run.txt"]);
      if (probe.code === 0) break;
      await sleep(50);
    }
    const since = now();
    await ok(["commit", "runner", "running:paused"]);
    expect(await ok(["inspect", "-f", "{{.State.Status}}", "runner"])).toBe("running");
    expect(await eventsOf(since, ["container=runner"])).toEqual(["pause", "unpause", "commit"]);
    expect(await ok(["run", "--rm", "running:paused", "cat", "/run.txt"])).toBe("busy");

    const later = now();
    await ok(["commit", "--pause=false", "runner", "running:unpaused"]);
    const afterUnpaused = await eventsOf(later, ["container=runner"]);
    expect(afterUnpaused).toEqual(["commit"]);
    // The committed image runs the container's command: its Cmd is the container's.
    expect(
      JSON.parse(await ok(["image", "inspect", "-f", "{{json .Config.Cmd}}", "running:unpaused"])),
    ).toEqual(["sh", "-c", "echo busy > /run.txt; sleep 600"]);
    await ok(["rm", "-f", "runner"]);
  });

  it("commits a running container several times at once: one pause for all, unpaused after the last", async () => {
    await ok(["run", "-d", "--name", "busy", engine.image, "sh", "-c", "echo busy > /run.txt; sleep 600"]);
    for (let attempt = 0; attempt < 200; attempt++) {
      if ((await engine.docker(["exec", "busy", "cat", "/run.txt"])).code === 0) break;
      await sleep(50);
    }
    const docker = dockerode();
    const container = docker.getContainer("busy");
    const made = await Promise.allSettled(
      [1, 2, 3, 4].map((n) => container.commit({ repo: "at-once", tag: String(n) })),
    );
    expect(
      made.filter((result) => result.status === "rejected").map((result) => String(result.reason)),
    ).toEqual([]);
    expect(await ok(["inspect", "-f", "{{.State.Status}}", "busy"])).toBe("running");
    for (const n of [1, 2, 3, 4])
      expect(await ok(["run", "--rm", `at-once:${n}`, "cat", "/run.txt"])).toBe("busy");
    await ok(["rm", "-f", "busy"]);
  });

  it("unpauses the container and leaves nothing in containerd when the client goes away mid-commit", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "big",
      engine.image,
      "sh",
      "-c",
      "dd if=/dev/urandom of=/big bs=1M count=48 && echo done > /done; sleep 600",
    ]);
    for (let attempt = 0; attempt < 400; attempt++) {
      if ((await engine.docker(["exec", "big", "cat", "/done"])).code === 0) break;
      await sleep(50);
    }
    const before = await stored();
    const since = now();
    const req = request({
      socketPath: engine.socket,
      path: "/v1.41/commit?container=big&repo=cut-commit",
      method: "POST",
    });
    req.on("error", () => {});
    req.end();
    // Gone while the diff is being made: the container is paused then.
    let status = "";
    for (let attempt = 0; attempt < 400 && status !== "paused"; attempt++)
      status = await ok(["inspect", "-f", "{{.State.Status}}", "big"]);
    expect(status).toBe("paused");
    req.destroy();
    for (let attempt = 0; attempt < 400 && status !== "running"; attempt++) {
      await sleep(25);
      status = await ok(["inspect", "-f", "{{.State.Status}}", "big"]);
    }
    expect(status).toBe("running");
    expect(await eventsOf(since, ["container=big"])).toEqual(["pause", "unpause"]);
    expect(await storedOnceSettled(before)).toEqual(before);
    expect(await ok(["images", "-q", "cut-commit"])).toBe("");
    await ok(["rm", "-f", "big"]);
  });

  it("records a deleted file as a whiteout: the committed image does not have it", async () => {
    await ok(["run", "--name", "deleter", engine.image, "rm", "/etc/group"]);
    await ok(["commit", "deleter", "deleted:1"]);
    const gone = await engine.docker(["run", "--rm", "deleted:1", "ls", "/etc/group"]);
    expect(gone.code).not.toBe(0);
    expect(await ok(["run", "--rm", "deleted:1", "cat", "/etc/passwd"])).toContain("root:x:0:0");
  });

  it("without a repository makes a dangling image, listed as <none>", async () => {
    await ok(["run", "--name", "nameless", engine.image, "touch", "/made"]);
    const id = await ok(["commit", "nameless"]);
    const dangling = await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"]);
    expect(dangling.split("\n")).toContain(id);
    expect(await ok(["images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])).toContain(
      `${id} <none>:<none>`,
    );
    // Named later, it is dangling no more.
    await ok(["tag", id, "named:later"]);
    expect(await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).not.toContain(id);
    expect(await ok(["run", "--rm", "named:later", "ls", "/made"])).toBe("/made");
  });

  it("keeps the image a commit or an import takes the name of, dangling, as dockerd does", async () => {
    await ok(["run", "--name", "first", engine.image, "sh", "-c", "echo one > /n"]);
    const first = await ok(["commit", "first", "renamed:1"]);
    await ok(["run", "--name", "second", engine.image, "sh", "-c", "echo two > /n"]);
    const second = await ok(["commit", "second", "renamed:1"]);
    expect(second).not.toBe(first);
    // The first is <none>:<none> now, still there by its id (containers made from it keep their image).
    expect((await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).split("\n")).toContain(
      first,
    );
    expect(await ok(["run", "--rm", first, "cat", "/n"])).toBe("one");
    const file = join(engine.containerd.dir, "renamed.tar");
    // A layer of its own: nothing shared with the import tests' images, which rmi here would let GC take.
    writeFileSync(file, await layerTar(busyboxLayer({ "etc/renamed": "yes\n" })));
    const imported = (await ok(["import", file, "renamed:1"])).split("\n").at(-1);
    expect((await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).split("\n")).toContain(
      second,
    );
    expect(await ok(["image", "inspect", "--format", "{{.Id}}", "renamed:1"])).toBe(imported);
    // docker tag moving a name does the same (moby's TagImage).
    await ok(["tag", second, "moved:1"]);
    await ok(["tag", imported ?? "", "moved:1"]);
    expect((await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).split("\n")).toContain(
      second,
    );
    await ok(["rmi", first, second, "renamed:1", "moved:1"]);
  });

  it("refuses what dockerd refuses, and a refused or failed commit leaves nothing in containerd", async () => {
    await ok(["run", "--name", "subject", engine.image, "touch", "/x"]);
    const before = await stored();
    const missing = await engine.api("POST", "/v1.41/commit?container=nosuch&repo=x");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).message).toBe("No such container: nosuch");

    const badChange = await engine.api(
      "POST",
      `/v1.41/commit?container=subject&changes=${encodeURIComponent("RUN echo")}`,
    );
    expect(badChange.status).toBe(400);
    expect(JSON.parse(badChange.body).message).toBe("run is not a valid change command");

    const badRef = await engine.api("POST", "/v1.41/commit?container=subject&repo=Bad");
    expect(badRef.status).toBe(400);
    expect(JSON.parse(badRef.body).message).toMatch(/^invalid reference format/);

    const digestRef = await engine.api(
      "POST",
      `/v1.41/commit?container=subject&repo=x@sha256:${"a".repeat(64)}`,
    );
    expect(digestRef.status).toBe(400);
    expect(JSON.parse(digestRef.body).message).toBe("refusing to create a tag with a digest reference");

    const cli = await engine.docker(["commit", "-c", "FROM busybox", "subject", "nope:1"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("from is not a valid change command");

    const after = await stored();
    expect(after).toEqual(before);
  });

  it("takes a Config in the body (dockerode), merged with the container's", async () => {
    await ok(["run", "--name", "bodied", "-e", "KEEP=1", engine.image, "true"]);
    const container = dockerode().getContainer("bodied");
    const answer = (await container.commit({
      repo: "bodied",
      tag: "v2",
      changes: "EXPOSE 8080",
      WorkingDir: "/tmp",
      Labels: { from: "body" },
    })) as { Id: string };
    expect(answer.Id).toMatch(/^sha256:/);
    const image = await dockerode().getImage("bodied:v2").inspect();
    expect(image.Config.WorkingDir).toBe("/tmp");
    expect(image.Config.Labels).toEqual({ from: "body" });
    expect(image.Config.Env).toContain("KEEP=1");
    expect(Object.keys(image.Config.ExposedPorts ?? {})).toEqual(["8080/tcp"]);
    expect(image.Config.Cmd).toEqual(["true"]);
  });
});

describe("docker import", () => {
  let rootfs: Buffer;
  let server: Server;
  let serverUrl = "";
  /** The error answers that never end, by path: resolved when their connection is closed. */
  const unending = new Map<string, Promise<void>>();

  beforeAll(async () => {
    rootfs = await layerTar(busyboxLayer({ "etc/imported": "yes\n" }));
    server = createServer((req, res) => {
      if (req.url === "/stalled" || req.url === "/endless") {
        unending.set(req.url, new Promise((resolve) => res.once("close", () => resolve())));
        if (req.url === "/stalled") {
          // An error, the start of its body, and then nothing: the body never ends.
          res.writeHead(500);
          res.write("boom\n");
        } else {
          // An error whose body goes on for as long as it is read.
          res.writeHead(503);
          const more = (): void => {
            while (!res.destroyed && res.write("x".repeat(4096)));
          };
          res.on("drain", more);
          more();
        }
      } else if (req.url === "/moved") {
        res.writeHead(302, { Location: "/rootfs.tar.gz" });
        res.end();
      } else if (req.url === "/rootfs.tar.gz") {
        const body = gzipSync(rootfs);
        res.writeHead(200, { "Content-Length": String(body.length) });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end("not here");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("imports a plain rootfs tarball with --change and --message, which runs", async () => {
    const file = join(engine.containerd.dir, "rootfs.tar");
    writeFileSync(file, rootfs);
    const since = now();
    const id = await ok([
      "import",
      "-c",
      'CMD ["cat", "/etc/imported"]',
      "-c",
      "ENV PATH=/bin",
      "-m",
      "from a file",
      file,
      "imported:plain",
    ]);
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await ok(["run", "--rm", "imported:plain"])).toBe("yes");
    expect(await ok(["run", "--rm", "imported:plain", "sh", "-c", "echo $PATH"])).toBe("/bin");
    const history = await ok(["history", "--format", "{{.Comment}}", "imported:plain"]);
    expect(history).toBe("from a file");
    expect(await eventsOf(since, ["type=image", "event=import"])).toEqual(["import"]);
    expect((await stored()).leases).toEqual([]);
  });

  it("imports a gzip'd tarball from stdin, dangling without a name, 'Imported from -' its comment", async () => {
    const file = join(engine.containerd.dir, "rootfs.tar.gz");
    writeFileSync(file, gzipSync(rootfs));
    const id = await ok(["import", file]);
    expect(await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).toContain(id);
    expect(await ok(["history", "--format", "{{.Comment}}", id])).toBe("Imported from -");
    expect(await ok(["run", "--rm", id, "/bin/cat", "/etc/imported"])).toBe("yes");
  });

  it("imports a tarball GNU tar made of a directory (./ entries), for the platform asked for", async () => {
    const dir = join(engine.containerd.dir, "gnu-rootfs");
    mkdirSync(join(dir, "bin"), { recursive: true });
    copyFileSync(requireBinary("busybox"), join(dir, "bin", "busybox"));
    for (const applet of ["sh", "cat"]) symlinkSync("busybox", join(dir, "bin", applet));
    writeFileSync(join(dir, "hello"), "from gnu tar\n");
    const file = join(engine.containerd.dir, "gnu.tar");
    execFileSync("tar", ["-C", dir, "-cf", file, "."]);
    const answer = await ok(["import", "--platform", "linux/arm64", file, "imported:gnu"]);
    expect(answer).toMatch(/^sha256:/);
    expect(await ok(["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "imported:gnu"])).toBe(
      "linux/arm64",
    );
  });

  it("imports an xz-compressed tarball", async () => {
    const file = join(engine.containerd.dir, "rootfs.tar.xz");
    writeFileSync(file, execFileSync("xz", ["-c"], { input: rootfs }));
    await ok(["import", file, "imported:xz"]);
    expect(await ok(["run", "--rm", "imported:xz", "/bin/cat", "/etc/imported"])).toBe("yes");
  });

  it("imports from an http URL with progress messages (dockerode)", async () => {
    const stream = await dockerode().createImage({
      fromSrc: `${serverUrl}/rootfs.tar.gz`,
      repo: "imported",
      tag: "url",
    });
    const messages: { status?: string; error?: string }[] = await new Promise((resolve, reject) =>
      dockerode().modem.followProgress(stream, (err: Error | null, out: { status?: string }[]) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(messages[0]?.status).toBe(`Downloading from ${serverUrl}/rootfs.tar.gz`);
    expect(messages.some((message) => message.status === "Importing")).toBe(true);
    expect(messages.at(-1)?.status).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await ok(["run", "--rm", "imported:url", "cat", "/etc/imported"])).toBe("yes");
    // The docker CLI, and a redirect followed as dockerd's http.Get follows it.
    const id = (await ok(["import", `${serverUrl}/moved`, "imported:moved"])).split("\n").at(-1);
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await ok(["run", "--rm", "imported:moved", "cat", "/etc/imported"])).toBe("yes");
  });

  it("gives up on an error answer whose body never ends: its start in the message, the connection closed", async () => {
    const before = await stored();
    // Before, the engine waited for the end of the body, and the docker CLI with it, for good.
    const stalled = await engine.docker(["import", `${serverUrl}/stalled`, "never:stalled"]);
    expect(stalled.code).not.toBe(0);
    expect(stalled.stderr).toContain(
      `failed to GET ${serverUrl}/stalled with status 500 Internal Server Error: boom`,
    );
    await unending.get("/stalled");
    const endless = await engine.api(
      "POST",
      `/v1.41/images/create?fromSrc=${encodeURIComponent(`${serverUrl}/endless`)}&repo=never&tag=endless`,
    );
    expect(endless.status).toBe(500);
    const message: string = JSON.parse(endless.body).message;
    expect(message).toBe(
      `failed to GET ${serverUrl}/endless with status 503 Service Unavailable: ${"x".repeat(1024)}`,
    );
    await unending.get("/endless");
    expect(await ok(["images", "-q", "never"])).toBe("");
    expect(await stored()).toEqual(before);
  });

  it("docker tag of one name to several images at once: one wins, the others kept dangling, none lost", async () => {
    const file = join(engine.containerd.dir, "tag-race.tar");
    writeFileSync(file, rootfs);
    for (let round = 0; round < 3; round++) {
      // Three images of their own (a message each), dangling; each tagged `race:ROUND` at once.
      const ids: string[] = [];
      for (const n of [1, 2, 3]) ids.push(await ok(["import", "-m", `race ${round} ${n}`, file]));
      const tags = await Promise.all(
        ids.map((id) => engine.api("POST", `/v1.41/images/${id}/tag?repo=race&tag=${round}`)),
      );
      expect(tags.map((answer) => answer.status)).toEqual([201, 201, 201]);
      const winner = await ok(["image", "inspect", "-f", "{{.Id}}", `race:${round}`]);
      expect(ids).toContain(winner);
      // Every image is there, with its content (after a GC): the losers as <none>.
      await collectGarbage(engine.containerd.address, engine.namespace);
      const dangling = (await ok(["images", "--filter", "dangling=true", "--no-trunc", "-q"])).split("\n");
      for (const id of ids) {
        expect(await ok(["run", "--rm", id, "/bin/cat", "/etc/imported"]), id).toBe("yes");
        if (id !== winner) expect(dangling, id).toContain(id);
      }
      await ok(["rmi", ...ids.filter((id) => id !== winner), `race:${round}`]);
    }
  });

  it("docker rmi of an image's last name and docker tag of it at once: either comes first, never both", async () => {
    const file = join(engine.containerd.dir, "rmi-race.tar");
    writeFileSync(file, rootfs);
    // The rmi sent a little later each round (0 to 9 ms after the tag): the two meet at another step of
    // each, whichever order the engine then takes them in.
    for (let round = 0; round < 10; round++) {
      const id = (await ok(["import", "-m", `rmi race ${round}`, file, `solo:${round}`])).split("\n").at(-1);
      const tagging = engine.api("POST", `/v1.41/images/solo:${round}/tag?repo=other&tag=${round}`);
      await sleep(round);
      const [removed, tagged] = await Promise.all([
        engine.api("DELETE", `/v1.41/images/solo:${round}`),
        tagging,
      ]);
      expect(removed.status, removed.body).toBe(200);
      const deleted = (JSON.parse(removed.body) as Record<string, string>[]).some((entry) => entry.Deleted);
      await collectGarbage(engine.containerd.address, engine.namespace);
      const exists = await engine.docker(["image", "inspect", "-f", "{{.Id}}", `${id}`]);
      if (tagged.status === 201) {
        // The tag came first: the rmi only untagged solo, the image runs by its other name.
        expect(deleted, removed.body).toBe(false);
        expect(await ok(["run", "--rm", `other:${round}`, "/bin/cat", "/etc/imported"])).toBe("yes");
        await ok(["rmi", `other:${round}`]);
      } else {
        // The rmi came first: the image is gone, and the tag found nothing to tag.
        expect(tagged.status, tagged.body).toBe(404);
        expect(deleted, removed.body).toBe(true);
        expect(exists.code).not.toBe(0);
        expect(await engine.docker(["image", "inspect", `other:${round}`])).toMatchObject({ code: 1 });
      }
    }
  });

  it("leaves nothing in containerd when the client goes away mid-upload", async () => {
    const before = await stored();
    const body = gzipSync(rootfs);
    // Half the tarball, and once the engine has read it (its import is under way), the connection goes.
    const req = await halfUpload("cut", body);
    await sleep(200);
    req.destroy();
    expect(await storedOnceSettled(before)).toEqual(before);
    expect(await ok(["images", "-q", "cut"])).toBe("");
    // The same tarball sent whole then imports.
    const file = join(engine.containerd.dir, "whole.tar.gz");
    writeFileSync(file, body);
    await ok(["import", file, "cut:whole"]);
    expect(await ok(["run", "--rm", "cut:whole", "/bin/cat", "/etc/imported"])).toBe("yes");
  });

  it("stops its xz when the client goes away mid-upload of an xz tarball", async () => {
    const before = await stored();
    const body = execFileSync("xz", ["-c", "-0"], { input: rootfs });
    const req = await halfUpload("cut-xz", body);
    // The engine's xz is running once it has that half.
    for (let attempt = 0; attempt < 200 && engineXz().length === 0; attempt++) await sleep(25);
    expect(engineXz()).toHaveLength(1);
    req.destroy();
    for (let attempt = 0; attempt < 200 && engineXz().length > 0; attempt++) await sleep(25);
    expect(engineXz()).toEqual([]);
    expect(await storedOnceSettled(before)).toEqual(before);
  });

  it("removes dangling imports and commits with docker rmi and docker image prune", async () => {
    const file = join(engine.containerd.dir, "prunable.tar");
    writeFileSync(file, rootfs);
    const first = await ok(["import", "-m", "first", file]);
    const second = await ok(["import", "-m", "second", file]);
    expect(await ok(["rmi", first])).toBe(`Deleted: ${first}`);
    const pruned = await ok(["image", "prune", "-f"]);
    expect(pruned).toContain(`deleted: ${second}`);
    expect(await ok(["images", "--filter", "dangling=true", "-q"])).toBe("");
  });

  it("refuses bad input with dockerd's errors and leaves nothing in containerd", async () => {
    const before = await stored();
    const notTar = await engine.api(
      "POST",
      "/v1.41/images/create?fromSrc=-&repo=junk",
      "this is not a tarball at all, no header anywhere".repeat(20),
    );
    expect(notTar.status).toBe(400);
    expect(JSON.parse(notTar.body).message).toContain("not a tar archive");

    const badChange = await engine.api(
      "POST",
      `/v1.41/images/create?fromSrc=-&changes=${encodeURIComponent("ADD . /")}`,
      "",
    );
    expect(badChange.status).toBe(400);
    expect(JSON.parse(badChange.body).message).toBe("add is not a valid change command");

    const badRef = await engine.api("POST", "/v1.41/images/create?fromSrc=-&repo=UPPER", "");
    expect(badRef.status).toBe(400);

    const missing = await engine.api(
      "POST",
      `/v1.41/images/create?fromSrc=${encodeURIComponent(`${serverUrl}/missing.tar`)}`,
    );
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).message).toContain("with status 404");

    const scheme = await engine.api(
      "POST",
      `/v1.41/images/create?fromSrc=${encodeURIComponent("file:///etc/passwd")}`,
    );
    expect(scheme.status).toBe(400);
    expect(JSON.parse(scheme.body).message).toBe(
      'Get "file:///etc/passwd": unsupported protocol scheme "file"',
    );

    expect(await stored()).toEqual(before);
  });
});
