import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectGarbage, storeContents } from "../images/gc.js";
import { DOCKER, useEngine } from "./harness.js";

// docker build (the classic builder, as DOCKER_BUILDKIT=0 asks the CLI for) against `ctrd serve`.
process.env.DOCKER_BUILDKIT = "0";
const engine = useEngine("lcd-engine-build-");

const contexts: string[] = [];

/** A COPY whose owner is a build arg and an ENV (a Dockerfile's variables, not a template's). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's ${OWNER}, expanded by the builder
const CHOWN_COPY = "COPY --chown=${OWNER}:$GROUP a.txt /a.txt";

/** A build context directory with `files` (path → content). */
function context(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "lcd-build-context-"));
  contexts.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

afterAll(() => {
  for (const dir of contexts) rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<string> {
  const result = await engine.docker(args, { timeoutMs: 120_000 });
  if (result.code !== 0)
    throw new Error(`docker ${args.join(" ")}: ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

/** What containerd holds for the engine's namespace after a GC, and the engine's containers. */
async function leftovers() {
  await collectGarbage(engine.containerd.address, engine.namespace);
  const contents = await storeContents(engine.containerd.address, engine.namespace);
  return {
    blobs: contents.blobs.sort(),
    snapshots: contents.snapshots.sort(),
    containers: await ok(["ps", "-aq"]),
    volumes: await ok(["volume", "ls", "-q"]),
    images: (await ok(["images", "-aq"])).split("\n").sort(),
    // The engine's unpacked build contexts.
    contexts: readdirSync(tmpdir()).filter((name) => name.startsWith("ctrd-build-")),
  };
}

beforeAll(async () => {
  await ok(["pull", engine.image]);
});

describe("docker build", () => {
  it("builds a Dockerfile of RUN, COPY (with .dockerignore), ENV, ARG, WORKDIR and CMD that runs", async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "# a comment, then a continuation",
        "ARG GREETING=hello",
        "ENV TARGET=world \\",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's substitution
        "    OTHER=${GREETING:-none}",
        "WORKDIR /app",
        'RUN echo "$GREETING $TARGET" > greeting.txt && echo built-by-run',
        "COPY files/ ./files/",
        "COPY top.txt .",
        'CMD ["sh", "-c", "cat /app/greeting.txt /app/files/* /app/top.txt; echo $OTHER; pwd"]',
      ].join("\n"),
      ".dockerignore": "files/secret.txt\n",
      "files/kept.txt": "kept\n",
      "files/secret.txt": "secret\n",
      "top.txt": "top\n",
    });
    const before = await leftovers();
    const out = await ok(["build", "--build-arg", "GREETING=hi", "-t", "built:1", dir]);
    expect(out).toContain("Step 1/8 : FROM");
    expect(out).toContain("built-by-run");
    expect(out).toMatch(/Successfully built [a-f0-9]{12}/);
    expect(out).toContain("Successfully tagged built:1");
    expect((await ok(["run", "--rm", "built:1"])).split("\n")).toEqual([
      "hi world",
      "kept",
      "top",
      "hi",
      "/app",
    ]);
    const [inspect] = JSON.parse(await ok(["image", "inspect", "built:1"])) as {
      Config: { Env: string[]; WorkingDir: string; Cmd: string[] };
    }[];
    expect(inspect?.Config.WorkingDir).toBe("/app");
    expect(inspect?.Config.Env).toContain("OTHER=hi");
    // The RUN's layer holds what it wrote, not the mount points runc made for the container's run
    // (the image's files, as a container created but never started exports them).
    const created = await ok(["create", "built:1"]);
    const listing = execFileSync(DOCKER, ["export", created], {
      env: { ...process.env, DOCKER_HOST: engine.host },
      maxBuffer: 64 * 1024 * 1024,
    });
    await ok(["rm", created]);
    const names = execFileSync("tar", ["-t"], { input: listing })
      .toString()
      .split("\n")
      .map((name) => name.replace(/^\.\//, ""));
    expect(names).toContain("app/greeting.txt");
    expect(names.filter((name) => /^etc\/(hosts|hostname|resolv\.conf)$/.test(name))).toEqual([]);
    // Nothing of the build is left but the image and its steps' (untagged parents, listed with -a
    // only, as dockerd's): its intermediate containers are gone.
    const after = await leftovers();
    expect(after.containers).toBe(before.containers);
    const builtId = await ok(["images", "-q", "built:1"]);
    expect((await ok(["images", "-q"])).split("\n").sort()).toEqual(
      [...(await ok(["images", "-q", engine.image])).split("\n"), builtId].sort(),
    );
    expect(after.images.length).toBeGreaterThan(before.images.length + 1);
    // docker rmi takes the image's untagged parents with it: nothing of the build is left.
    const removed = await ok(["rmi", "built:1"]);
    expect(removed.split("\n").filter((line) => line.startsWith("Deleted: ")).length).toBe(
      after.images.length - before.images.length,
    );
    expect(await leftovers()).toEqual(before);
  });

  it("reports a failing RUN's exit code; the steps before it stay as cache for the next build, prune takes them", async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "VOLUME /data",
        "RUN echo one > /data/one.txt",
        "RUN echo failing && exit 3",
      ].join("\n"),
    });
    const before = await leftovers();
    const result = await engine.docker(["build", "-t", "failed:1", dir], { timeoutMs: 120_000 });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("failing");
    expect(result.stderr).toContain(
      "The command '/bin/sh -c echo failing && exit 3' returned a non-zero code: 3",
    );
    // No container, volume or context is left; the steps that succeeded are images (dangling, as
    // dockerd leaves them): the next build takes them from the cache and runs the failing step only.
    const failed = await leftovers();
    expect({ ...failed, images: [], blobs: [], snapshots: [] }).toEqual({
      ...before,
      images: [],
      blobs: [],
      snapshots: [],
    });
    expect(failed.images.length).toBe(before.images.length + 2);
    const again = await engine.docker(["build", "-t", "failed:1", dir], { timeoutMs: 120_000 });
    expect(again.code).not.toBe(0);
    expect(again.stdout.match(/ ---> Using cache/g)).toHaveLength(2);
    expect(again.stdout.match(/ ---> Running in/g)).toHaveLength(1);
    expect(await leftovers()).toEqual(failed);
    // docker image prune: the dangling head and the parents only it kept.
    const pruned = await ok(["image", "prune", "-f"]);
    expect(pruned.split("\n").filter((line) => line.startsWith("deleted: "))).toHaveLength(2);
    expect(await leftovers()).toEqual(before);
  });

  it("builds several stages (--pull), copying from one into the next and from an image with COPY --from", async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image} AS builder`,
        "RUN mkdir -p /out && echo from-builder > /out/made.txt",
        `FROM ${engine.image}`,
        "COPY --from=builder /out/made.txt /copied/",
        `COPY --from=${engine.image} /bin/busybox /copied/busybox-copy`,
        'CMD ["cat", "/copied/made.txt"]',
      ].join("\n"),
    });
    const before = await leftovers();
    // --pull: each FROM's image asked of the registry again, as dockerd does (here since beforeAll's pull).
    const out = await ok(["build", "--pull", "-t", "staged:1", dir]);
    expect(out).toContain("Status: Image is up to date for");
    expect(await ok(["run", "--rm", "staged:1"])).toBe("from-builder");
    // From an image, not a stage: its file, here a binary that runs.
    expect(await ok(["run", "--rm", "staged:1", "/copied/busybox-copy", "echo", "copied"])).toBe("copied");
    await ok(["rmi", "staged:1"]);
    // The first stage's image is no parent of the image: it stays, dangling, as dockerd leaves it,
    // until docker image prune.
    expect(await ok(["images", "-q", "--filter", "dangling=true"])).toMatch(/^[a-f0-9]{12}$/);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("takes the escape directive, ADD of a local tar.gz, COPY --chown and wildcards, SHELL, -f, --label, --target and -q", async () => {
    const dir = context({
      "build/Alt.dockerfile": [
        "# escape=`",
        `FROM ${engine.image} AS base`,
        "RUN echo base > /base.txt",
        "FROM base AS final",
        'SHELL ["/bin/sh", "-e", "-c"]',
        "USER 1000",
        "COPY --chown=1000:2000 *.txt `",
        "     /owned/",
        "USER root",
        "ADD bundle.tar.gz /unpacked/",
        "EXPOSE 8080/udp",
        'LABEL stage="final"',
        'RUN ["sh", "-c", "stat -c %u:%g /owned/a.txt > /owners && ls /owned > /listing"]',
        'SHELL ["/bin/sh", "-c", "echo shell-of-SHELL; eval \\"$0\\""]',
        "CMD cat /base.txt /owners /listing /unpacked/in-tar.txt",
        "FROM base",
        "RUN exit 9",
      ].join("\n"),
      "a.txt": "a\n",
      "b.txt": "b\n",
      "c.md": "c\n",
      "tarred/in-tar.txt": "from the tar\n",
    });
    execFileSync("tar", ["-C", join(dir, "tarred"), "-czf", join(dir, "bundle.tar.gz"), "in-tar.txt"]);
    const id = await ok([
      "build",
      "-q",
      "-f",
      join(dir, "build/Alt.dockerfile"),
      "--label",
      "built.by=test",
      "--target",
      "final",
      "-t",
      "targeted:1",
      dir,
    ]);
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect((await ok(["run", "--rm", "targeted:1"])).split("\n")).toEqual([
      "shell-of-SHELL",
      "base",
      "1000:2000",
      "a.txt",
      "b.txt",
      "from the tar",
    ]);
    const [inspect] = JSON.parse(await ok(["image", "inspect", "targeted:1"])) as {
      Id: string;
      Config: { Labels: Record<string, string>; ExposedPorts: Record<string, object>; User: string };
    }[];
    expect(inspect?.Id).toBe(id);
    expect(inspect?.Config.Labels).toEqual({ stage: "final", "built.by": "test" });
    expect(Object.keys(inspect?.Config.ExposedPorts ?? {})).toEqual(["8080/udp"]);
    expect(inspect?.Config.User).toBe("root");
    await ok(["rmi", "targeted:1"]);
  });

  it("aborts a build whose client goes away mid-RUN and leaves nothing", async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "RUN echo first > /first.txt",
        "RUN echo started-long-run && sleep 300",
      ].join("\n"),
    });
    const before = await leftovers();
    const body = execFileSync("tar", ["-C", dir, "-c", "."]);
    const req = request({
      socketPath: engine.socket,
      path: "/v1.41/build?t=aborted:1",
      method: "POST",
      headers: { "Content-Type": "application/x-tar", "Content-Length": String(body.length) },
    });
    req.on("error", () => {});
    // Gone once the long RUN has said it started (its container runs).
    await new Promise<void>((resolve, reject) => {
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
          if (text.includes("started-long-run")) resolve();
        });
        res.on("end", () => reject(new Error(`the build ended: ${text}`)));
      });
      req.end(body);
    });
    req.destroy();
    // The engine cleans up after the client went away, asynchronously to it: asked again until settled.
    // The first RUN's image stays (the cache of the next build, as dockerd's): image prune takes it.
    const settled = async () => {
      await ok(["image", "prune", "-f"]);
      return leftovers();
    };
    let now = await settled();
    for (let attempt = 0; attempt < 100 && JSON.stringify(now) !== JSON.stringify(before); attempt++) {
      await sleep(100);
      now = await settled();
    }
    expect(now).toEqual(before);
  });

  it("reuses each unchanged step from the image store (the layer cache) and runs a changed step and those after it", async () => {
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "ENV GREETING=hi",
        "ARG WORD=one",
        "COPY a.txt /a.txt",
        // A step whose output differs each time it runs: the same stamp is the cache's image.
        "RUN cat /proc/sys/kernel/random/uuid > /stamp && echo $WORD > /word",
        "COPY dir/ /dir/",
        'CMD ["sh", "-c", "cat /stamp /word /a.txt /dir/b.txt"]',
      ].join("\n"),
      "a.txt": "a\n",
      "dir/b.txt": "b\n",
    });
    const before = await leftovers();
    const build = async (...args: string[]) => {
      const started = process.hrtime.bigint();
      const out = await ok(["build", ...args, "-t", "cached:1", dir]);
      const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
      const id = await ok(["images", "-q", "--no-trunc", "cached:1"]);
      const output = (await ok(["run", "--rm", "cached:1"])).split("\n");
      return { out, ms, id, output, cached: out.match(/ ---> Using cache/g)?.length ?? 0 };
    };
    const first = await build();
    expect(first.cached).toBe(0);
    expect(first.output.slice(1)).toEqual(["one", "a", "b"]);
    // The same context again (a file touched only: its time is not in the key), by an engine started
    // again (the cache is the image store's): every step from the cache, no container run, the same image.
    await engine.restartServe();
    utimesSync(join(dir, "a.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const second = await build();
    expect(second.cached).toBe(6);
    expect(second.out).not.toContain("Running in");
    expect(second.id).toBe(first.id);
    expect(second.output).toEqual(first.output);
    // A changed file of the last COPY: the steps before it from the cache, the COPY and CMD anew.
    writeFileSync(join(dir, "dir/b.txt"), "b2\n");
    const third = await build();
    expect(third.cached).toBe(4);
    expect(third.out).not.toContain("Running in");
    expect(third.id).not.toBe(first.id);
    expect(third.output).toEqual([first.output[0], "one", "a", "b2"]);
    // Another build arg: the RUN that sees it runs again, and every step after it.
    const fourth = await build("--build-arg", "WORD=two");
    expect(fourth.cached).toBe(3);
    expect(fourth.out).toContain("Running in");
    expect(fourth.output.slice(1)).toEqual(["two", "a", "b2"]);
    expect(fourth.output[0]).not.toBe(first.output[0]);
    // --no-cache: every step runs.
    const fifth = await build("--no-cache");
    expect(fifth.cached).toBe(0);
    expect(fifth.output[0]).not.toBe(first.output[0]);
    process.stderr.write(
      `build cache: first build ${first.ms} ms, again from the cache ${second.ms} ms, --no-cache ${fifth.ms} ms\n`,
    );
    // The steps' images are listed with -a only; the image names its parent (a step's image).
    const listed = (await ok(["images", "-q", "--no-trunc"])).split("\n");
    expect(listed).toContain(fifth.id);
    const all = (await ok(["images", "-aq", "--no-trunc"])).split("\n");
    const parent = await ok(["image", "inspect", "--format", "{{.Parent}}", "cached:1"]);
    expect(parent).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(all).toContain(parent);
    expect(listed).not.toContain(parent);
    // docker history: each step's row has its image's id, the base image's top row too.
    const history = (await ok(["history", "--no-trunc", "--format", "{{.ID}}", "cached:1"])).split("\n");
    expect(history[0]).toBe(fifth.id);
    expect(history[1]).toBe(parent);
    expect(history.filter((row) => row !== "<missing>")).toHaveLength(7);
    expect(history.at(-1)).toBe(await ok(["images", "-q", "--no-trunc", engine.image]));
    // The builds before the last left their images dangling (the tag moved on), as dockerd's:
    // docker rmi and image prune take every image of the builds, their parents with them.
    await ok(["rmi", "cached:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("takes no step from the cache whose destination differs only by its trailing slash (a file, or into a directory)", async () => {
    const before = await leftovers();
    const build = async (dest: string) => {
      const dir = context({
        Dockerfile: [`FROM ${engine.image}`, `COPY a.txt ${dest}`, 'CMD ["ls", "-p", "/"]'].join("\n"),
        "a.txt": "a\n",
      });
      const out = await ok(["build", "-t", "slash:1", dir]);
      return { out, root: (await ok(["run", "--rm", "slash:1"])).split("\n") };
    };
    // `/d/`: a directory /d holding a.txt; `/d`: a file /d (the image has no /d), as dockerd's.
    expect((await build("/d/")).root).toContain("d/");
    const file = await build("/d");
    expect(file.out).not.toContain("Using cache");
    expect(file.root).toContain("d");
    await ok(["rmi", "slash:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("finds no cache step by a name moved to another image (docker tag over a built image's second name)", async () => {
    const before = await leftovers();
    const dir = context({
      Dockerfile: [`FROM ${engine.image}`, "RUN echo built > /built.txt"].join("\n"),
    });
    await ok(["build", "-t", "moved:1", dir]);
    const built = await ok(["images", "-q", "--no-trunc", "moved:1"]);
    // A second name, then moved to the base image: the newest name the build's step was ever under.
    await ok(["tag", "moved:1", "moved:2"]);
    await ok(["tag", engine.image, "moved:2"]);
    expect(await ok(["image", "inspect", "--format", "{{.Parent}}", "moved:2"])).toBe("");
    // The step is moved:1's image still (a hit), never the base image moved:2 names now.
    const again = await ok(["build", "-t", "rebuilt:1", dir]);
    expect(await ok(["images", "-q", "--no-trunc", "rebuilt:1"])).toBe(built);
    expect(again).toContain("Using cache");
    expect(await ok(["run", "--rm", "rebuilt:1", "cat", "/built.txt"])).toBe("built");
    await ok(["rmi", "moved:1", "moved:2", "rebuilt:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("runs a COPY again for a changed mode, symlink target or .dockerignore, and ADD again for a changed tar", async () => {
    const before = await leftovers();
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "COPY src/ /src/",
        "ADD files.tar /unpacked/",
        'CMD ["sh", "-c", "stat -c %a /src/run.sh; readlink /src/link; ls /src /unpacked"]',
      ].join("\n"),
      "src/run.sh": "echo run\n",
      "src/secret.txt": "secret\n",
      "src/target-a": "a\n",
      "src/target-b": "b\n",
      "tarred/one.txt": "one\n",
    });
    chmodSync(join(dir, "src/run.sh"), 0o644);
    symlinkSync("target-a", join(dir, "src/link"));
    const tar = () => execFileSync("tar", ["-C", join(dir, "tarred"), "-cf", join(dir, "files.tar"), "."]);
    tar();
    const build = async () => {
      const out = await ok(["build", "-t", "changed:1", dir]);
      return { out, lines: (await ok(["run", "--rm", "changed:1"])).split("\n") };
    };
    const lines = (mode: string, link: string, src: string[], unpacked: string[]) => [
      mode,
      link,
      "/src:",
      ...src,
      "",
      "/unpacked:",
      ...unpacked,
    ];
    const all = ["link", "run.sh", "secret.txt", "target-a", "target-b"];
    expect((await build()).lines).toEqual(lines("644", "target-a", all, ["one.txt"]));
    chmodSync(join(dir, "src/run.sh"), 0o755);
    expect((await build()).lines).toEqual(lines("755", "target-a", all, ["one.txt"]));
    rmSync(join(dir, "src/link"));
    symlinkSync("target-b", join(dir, "src/link"));
    expect((await build()).lines).toEqual(lines("755", "target-b", all, ["one.txt"]));
    writeFileSync(join(dir, ".dockerignore"), "src/secret.txt\n");
    expect((await build()).lines).toEqual(
      lines(
        "755",
        "target-b",
        all.filter((name) => name !== "secret.txt"),
        ["one.txt"],
      ),
    );
    writeFileSync(join(dir, "tarred/two.txt"), "two\n");
    tar();
    const last = await build();
    expect(last.out.match(/ ---> Using cache/g)).toHaveLength(1);
    expect(last.lines).toEqual(
      lines(
        "755",
        "target-b",
        all.filter((name) => name !== "secret.txt"),
        ["one.txt", "two.txt"],
      ),
    );
    await ok(["rmi", "changed:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("expands build args and ENV in COPY --chown (as dockerd's), another value running the COPY again", async () => {
    const before = await leftovers();
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "ARG OWNER=123",
        "ENV GROUP=45",
        CHOWN_COPY,
        'CMD ["sh", "-c", "stat -c %u:%g /a.txt"]',
      ].join("\n"),
      "a.txt": "a\n",
    });
    await ok(["build", "-t", "owned:1", dir]);
    expect(await ok(["run", "--rm", "owned:1"])).toBe("123:45");
    const other = await ok(["build", "--build-arg", "OWNER=7", "-t", "owned:1", dir]);
    expect(other).toContain(CHOWN_COPY);
    expect(await ok(["run", "--rm", "owned:1"])).toBe("7:45");
    await ok(["rmi", "owned:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("keeps the images a running build uses from docker image prune (a finished stage's, the stage's own)", async () => {
    const before = await leftovers();
    const dir = context({
      Dockerfile: [
        `FROM ${engine.image} AS first`,
        "RUN echo from-first > /first.txt",
        `FROM ${engine.image}`,
        "ENV STAGE=second",
        // Waits for the test's docker cp (the prune done meanwhile).
        "RUN echo waiting-for-go && until [ -e /go ]; do sleep 0.1; done",
        "COPY --from=first /first.txt /first.txt",
        'CMD ["cat", "/first.txt"]',
      ].join("\n"),
      go: "",
    });
    const build = engine.docker(["build", "--no-cache", "-t", "held:1", dir], { timeoutMs: 120_000 });
    // The RUN's container: the one running `until`.
    let waiting = "";
    for (let attempt = 0; attempt < 600 && waiting === ""; attempt++) {
      await sleep(100);
      const running = await ok(["ps", "-q", "--no-trunc", "--filter", "status=running"]);
      for (const id of running.split("\n").filter(Boolean)) {
        const top = await engine.docker(["top", id]);
        if (top.stdout.includes("until")) waiting = id;
      }
    }
    expect(waiting).not.toBe("");
    const pruned = await ok(["image", "prune", "-f"]);
    await ok(["cp", join(dir, "go"), `${waiting}:/go`]);
    const result = await build;
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(pruned).not.toContain("deleted:");
    expect(await ok(["run", "--rm", "held:1"])).toBe("from-first");
    await ok(["rmi", "held:1"]);
    await ok(["image", "prune", "-f"]);
    expect(await leftovers()).toEqual(before);
  });

  it("docker rmi keeps an image another was built on: by id a conflict (even forced), its last name untagged only", async () => {
    const before = await leftovers();
    await ok([
      "build",
      "-t",
      "base:1",
      context({ Dockerfile: `FROM ${engine.image}\nRUN echo base > /base.txt\n` }),
    ]);
    const baseId = await ok(["images", "-q", "--no-trunc", "base:1"]);
    await ok([
      "build",
      "-t",
      "derived:1",
      context({ Dockerfile: "FROM base:1\nRUN echo derived > /derived.txt\n" }),
    ]);
    for (const args of [[baseId], ["-f", baseId]]) {
      const byId = await engine.docker(["rmi", ...args]);
      expect(byId.code).not.toBe(0);
      expect(byId.stderr).toContain(
        `conflict: unable to delete ${baseId.slice(7, 19)} (cannot be forced) - image has dependent child images`,
      );
    }
    // The last name: untagged, the image stays (an intermediate of derived:1, listed with -a).
    expect(await ok(["rmi", "base:1"])).toBe("Untagged: base:1");
    expect((await ok(["images", "-aq", "--no-trunc"])).split("\n")).toContain(baseId);
    expect(await ok(["run", "--rm", "derived:1", "cat", "/base.txt", "/derived.txt"])).toBe("base\nderived");
    // derived:1 takes it with its own steps.
    const removed = await ok(["rmi", "derived:1"]);
    expect(removed).toContain(`Deleted: ${baseId}`);
    expect(await leftovers()).toEqual(before);
  });

  it("keeps SHELL and ONBUILD in the image config: a build FROM it runs the triggers and its shell", async () => {
    const before = await leftovers();
    const parentDir = context({
      Dockerfile: [
        `FROM ${engine.image}`,
        "LABEL family=onbuild",
        'SHELL ["/bin/sh", "-c", "echo shell-of-parent; eval \\"$0\\""]',
        "ONBUILD COPY trigger.txt /from-trigger.txt",
        "ONBUILD RUN echo ran-trigger > /ran.txt",
      ].join("\n"),
    });
    await ok(["build", "-t", "parent:1", parentDir]);
    const [parent] = JSON.parse(await ok(["image", "inspect", "parent:1"])) as {
      Config: { Shell: string[]; OnBuild: string[] };
    }[];
    expect(parent?.Config.Shell).toEqual(["/bin/sh", "-c", 'echo shell-of-parent; eval "$0"']);
    expect(parent?.Config.OnBuild).toEqual([
      "COPY trigger.txt /from-trigger.txt",
      "RUN echo ran-trigger > /ran.txt",
    ]);
    const childDir = context({
      Dockerfile: ["FROM parent:1", "RUN echo child-run", "CMD cat /from-trigger.txt /ran.txt"].join("\n"),
      "trigger.txt": "child's context\n",
    });
    const out = await ok(["build", "-t", "child:1", childDir]);
    expect(out).toContain("# Executing 2 build triggers");
    // The parent's shell runs the child's RUN (and CMD), as dockerd's.
    expect(out).toMatch(/shell-of-parent\s+child-run/);
    expect((await ok(["run", "--rm", "child:1"])).split("\n")).toEqual([
      "shell-of-parent",
      "child's context",
      "ran-trigger",
    ]);
    // The triggers ran once: the child's image passes them on no further.
    const [child] = JSON.parse(await ok(["image", "inspect", "child:1"])) as {
      Config: { OnBuild: string[] | null };
    }[];
    expect(child?.Config.OnBuild ?? []).toEqual([]);
    // docker image prune -a: the child, then the parent it was built on (a head once the child went),
    // each with its steps; the registry's image (no such label) stays.
    const pruned = await ok(["image", "prune", "-a", "-f", "--filter", "label=family=onbuild"]);
    expect(pruned).toContain("untagged: child:1");
    expect(pruned).toContain("untagged: parent:1");
    expect(await leftovers()).toEqual(before);
  });

  it("builds FROM scratch: COPY into an image of no parent layers, which runs and is cached", async () => {
    const before = await leftovers();
    const dir = context({
      Dockerfile: [
        "FROM scratch",
        `COPY --from=${engine.image} /bin/busybox /bin/busybox`,
        "COPY hello.txt /",
        'ENTRYPOINT ["/bin/busybox"]',
        'CMD ["cat", "/hello.txt"]',
      ].join("\n"),
      "hello.txt": "from scratch\n",
    });
    const out = await ok(["build", "-t", "scratchy:1", dir]);
    expect(out).toContain("Successfully tagged scratchy:1");
    expect(await ok(["run", "--rm", "scratchy:1"])).toBe("from scratch");
    const [inspect] = JSON.parse(await ok(["image", "inspect", "scratchy:1"])) as {
      RootFS: { Layers: string[] };
    }[];
    expect(inspect?.RootFS.Layers).toHaveLength(2);
    const again = await ok(["build", "-t", "scratchy:1", dir]);
    expect(again.match(/ ---> Using cache/g)).toHaveLength(4);
    // The empty image the stage started from is the build's own, gone with it.
    await ok(["rmi", "scratchy:1"]);
    expect(await leftovers()).toEqual(before);
    // A Dockerfile of FROM scratch alone makes no image, as dockerd's.
    const empty = await engine.docker(["build", context({ Dockerfile: "FROM scratch\n" })]);
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain("No image was generated");
    expect(await leftovers()).toEqual(before);
  });
});
