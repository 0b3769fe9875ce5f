import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
    // Nothing of the build is left but the image: its intermediate containers and images are gone.
    const after = await leftovers();
    expect(after.containers).toBe(before.containers);
    expect(after.images).toEqual([...before.images, await ok(["images", "-q", "built:1"])].sort());
    await ok(["rmi", "built:1"]);
  });

  it("reports a failing RUN's exit code and leaves nothing (no container, image, volume, snapshot)", async () => {
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
    // --pull: each FROM's image asked of the registry again, as dockerd does (here since beforeAll's pull).
    const out = await ok(["build", "--pull", "-t", "staged:1", dir]);
    expect(out).toContain("Status: Image is up to date for");
    expect(await ok(["run", "--rm", "staged:1"])).toBe("from-builder");
    // From an image, not a stage: its file, here a binary that runs.
    expect(await ok(["run", "--rm", "staged:1", "/copied/busybox-copy", "echo", "copied"])).toBe("copied");
    await ok(["rmi", "staged:1"]);
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
    let now = await leftovers();
    for (let attempt = 0; attempt < 100 && JSON.stringify(now) !== JSON.stringify(before); attempt++) {
      await sleep(100);
      now = await leftovers();
    }
    expect(now).toEqual(before);
  });
});
