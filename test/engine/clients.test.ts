import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { fetchWhenUp } from "../harness/network.js";
import { useEngine } from "./harness.js";

// npm's dockerode and testcontainers (clients nobody here wrote) against `ctrd serve`.
const engine = useEngine("lcd-engine-clients-");

function docker(): Docker {
  return new Docker({ socketPath: engine.socket });
}

async function pull(client: Docker, ref: string): Promise<unknown[]> {
  const stream = await client.pull(ref);
  return new Promise((resolve, reject) => {
    client.modem.followProgress(stream, (err: Error | null, output: unknown[]) =>
      err ? reject(err) : resolve(output),
    );
  });
}

function collect(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    stream.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    stream.on("end", () => resolve(text));
    stream.on("error", reject);
  });
}

describe("ctrd serve with dockerode", () => {
  it("pings, reports its version, pulls with progress", async () => {
    const client = docker();
    expect(String(await client.ping())).toBe("OK");
    expect((await client.version()).ApiVersion).toBe("1.41");
    const progress = await pull(client, engine.image);
    expect(progress.some((event) => JSON.stringify(event).includes("Pull complete"))).toBe(true);
    const images = await client.listImages();
    expect(images.some((image) => image.RepoTags?.includes(engine.image))).toBe(true);
    const inspected = await client.getImage(engine.image).inspect();
    expect(inspected.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("creates, attaches (demultiplexed), starts, waits and removes a container", async () => {
    const client = docker();
    const container = await client.createContainer({
      Image: engine.image,
      Cmd: ["sh", "-c", "echo to-out; echo to-err >&2; exit 7"],
      Labels: { "test.engine": "dockerode" },
    });
    const stream = await container.attach({ stream: true, stdout: true, stderr: true, hijack: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    container.modem.demuxStream(stream, stdout, stderr);
    const out = collect(stdout);
    const err = collect(stderr);
    stream.on("end", () => {
      stdout.end();
      stderr.end();
    });
    const waited = container.wait({ condition: "next-exit" });
    await container.start();
    expect(await waited).toMatchObject({ StatusCode: 7 });
    expect(await out).toBe("to-out\n");
    expect(await err).toBe("to-err\n");
    const listed = await client.listContainers({ all: true, filters: { label: ["test.engine=dockerode"] } });
    expect(listed.map((entry) => entry.Id)).toEqual([container.id]);
    expect(listed[0]?.State).toBe("exited");
    const logs = await container.logs({ stdout: true, stderr: true, follow: false });
    expect(logs.toString()).toContain("to-out");
    await container.remove();
    await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("execs in a running container and reads the exit code", async () => {
    const client = docker();
    const container = await client.createContainer({ Image: engine.image, Cmd: ["sleep", "300"] });
    await container.start();
    const exec = await container.exec({
      Cmd: ["sh", "-c", "echo exec-out; exit 5"],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const stdout = new PassThrough();
    container.modem.demuxStream(stream, stdout, new PassThrough());
    const out = collect(stdout);
    await new Promise((resolve) => stream.on("end", resolve));
    stdout.end();
    expect(await out).toBe("exec-out\n");
    const inspected = await exec.inspect();
    expect(inspected).toMatchObject({ ExitCode: 5, Running: false });
    const stats = await container.stats({ stream: false });
    expect(stats.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(0);
    expect(stats.precpu_stats.cpu_usage.total_usage).toBeGreaterThan(0);
    await container.stop({ t: 1 });
    expect((await container.inspect()).State).toMatchObject({ Status: "exited", ExitCode: 137 });
    await container.remove({ force: true });
  });

  it("creates and removes a network, and runs a container on it", async () => {
    const client = docker();
    const name = `dn${Date.now().toString(36)}`;
    const network = await client.createNetwork({ Name: name });
    const container = await client.createContainer({
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { NetworkMode: name },
    });
    const inspected = await container.inspect();
    expect(inspected.NetworkSettings.Networks[name]?.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(Object.keys((await network.inspect()).Containers ?? {})).toEqual([container.id]);
    await container.remove();
    await network.remove();
    await expect(network.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe("ctrd serve with testcontainers", () => {
  // testcontainers keeps a lock file in TMPDIR (for its reaper and port allocation); it is its own, not ours.
  afterAll(() => {
    for (const name of readdirSync(tmpdir()))
      if (/^testcontainers-node-.*\.lock$/.test(name))
        rmSync(join(tmpdir(), name), { force: true, recursive: true });
  });

  it("runs a GenericContainer with a log-message wait strategy and an exposed port", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
    const { GenericContainer, Wait } = await import("testcontainers");
    const container = await new GenericContainer(engine.image)
      .withCommand([
        "sh",
        "-c",
        "mkdir -p /www && echo from-testcontainers > /www/index.html && echo server ready && exec httpd -f -p 8080 -h /www",
      ])
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forLogMessage("server ready"))
      .start();
    try {
      const url = `http://${container.getHost()}:${container.getMappedPort(8080)}/`;
      expect(await fetchWhenUp(url)).toBe("from-testcontainers\n");
      const { output, exitCode } = await container.exec(["sh", "-c", "echo exec-in-tc"]);
      expect(exitCode).toBe(0);
      expect(output).toContain("exec-in-tc");
    } finally {
      await container.stop();
    }
    const list = await docker().listContainers({ all: true });
    expect(list.some((entry) => entry.Id === container.getId())).toBe(false);
  });

  it("runs containers on a Network with aliases (withNetworkAliases) that the others reach", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
    const { GenericContainer, Network } = await import("testcontainers");
    const network = await new Network().start();
    try {
      const server = await new GenericContainer(engine.image)
        .withNetwork(network)
        .withNetworkAliases("web")
        .withCommand(["sh", "-c", "mkdir /w && echo by-alias > /w/index.html && exec httpd -f -p 80 -h /w"])
        .start();
      const client = await new GenericContainer(engine.image)
        .withNetwork(network)
        .withCommand(["sleep", "300"])
        .start();
      try {
        const fetched = await client.exec(["sh", "-c", "until wget -qO- http://web/; do sleep 0.1; done"]);
        expect(fetched).toMatchObject({ exitCode: 0, output: "by-alias\n" });
        // As on dockerd: created on the default bridge, then connected to its network with the aliases.
        expect(server.getNetworkNames().sort()).toEqual(["bridge", network.getName()].sort());
      } finally {
        await client.stop();
        await server.stop();
      }
    } finally {
      await network.stop();
    }
  });

  it("waits for a healthcheck (Wait.forHealthCheck) and for listening ports", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
    const { GenericContainer, Wait } = await import("testcontainers");
    const container = await new GenericContainer(engine.image)
      .withCommand(["sh", "-c", "sleep 0.3; touch /tmp/ready; exec httpd -f -p 8080 -h /tmp"])
      .withExposedPorts(8080)
      .withHealthCheck({ test: ["CMD-SHELL", "test -e /tmp/ready"], interval: 100, retries: 50 })
      .withWaitStrategy(Wait.forAll([Wait.forHealthCheck(), Wait.forListeningPorts()]))
      .withStartupTimeout(60_000)
      .start();
    try {
      const inspected = await docker().getContainer(container.getId()).inspect();
      expect(inspected.State.Health?.Status).toBe("healthy");
    } finally {
      await container.stop();
    }
  });

  it("builds an image with GenericContainer.fromDockerfile (build args, .dockerignore) and runs it", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
    const { GenericContainer, Wait } = await import("testcontainers");
    const dir = mkdtempSync(join(tmpdir(), "lcd-tc-build-"));
    try {
      writeFileSync(
        join(dir, "Dockerfile"),
        [
          `FROM ${engine.image}`,
          "ARG WORD",
          "COPY page.html /www/index.html",
          'RUN echo "built with $WORD" >> /www/index.html',
          'CMD ["sh", "-c", "echo serving && exec httpd -f -p 8080 -h /www"]',
        ].join("\n"),
      );
      writeFileSync(join(dir, "page.html"), "from-dockerfile\n");
      writeFileSync(join(dir, "ignored.txt"), "ignored\n");
      writeFileSync(join(dir, ".dockerignore"), "ignored.txt\n");
      const built = await GenericContainer.fromDockerfile(dir)
        .withBuildArgs({ WORD: "testcontainers" })
        .build();
      const container = await built
        .withExposedPorts(8080)
        .withWaitStrategy(Wait.forLogMessage("serving"))
        .start();
      try {
        const url = `http://${container.getHost()}:${container.getMappedPort(8080)}/`;
        expect(await fetchWhenUp(url)).toBe("from-dockerfile\nbuilt with testcontainers\n");
      } finally {
        await container.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("builds the same Dockerfile again with fromDockerfile from the layer cache: the same image, no step run", async () => {
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    const { GenericContainer } = await import("testcontainers");
    const dir = mkdtempSync(join(tmpdir(), "lcd-tc-cache-"));
    const client = docker();
    try {
      writeFileSync(
        join(dir, "Dockerfile"),
        [
          `FROM ${engine.image}`,
          "COPY page.html /www/index.html",
          "RUN cat /proc/sys/kernel/random/uuid > /www/stamp",
          'CMD ["cat", "/www/stamp"]',
        ].join("\n"),
      );
      writeFileSync(join(dir, "page.html"), "cached\n");
      const timed = async (name: string) => {
        const started = process.hrtime.bigint();
        await GenericContainer.fromDockerfile(dir).build(name, { deleteOnExit: false });
        return Number((process.hrtime.bigint() - started) / 1_000_000n);
      };
      const firstMs = await timed("tc-cache:one");
      const secondMs = await timed("tc-cache:two");
      const first = await client.getImage("tc-cache:one").inspect();
      const second = await client.getImage("tc-cache:two").inspect();
      expect(second.Id).toBe(first.Id);
      process.stderr.write(`fromDockerfile: first build ${firstMs} ms, the same again ${secondMs} ms\n`);
      await client.getImage("tc-cache:one").remove();
      // The last name: the image and its build's steps go.
      const removed = (await client.getImage("tc-cache:two").remove()) as { Deleted?: string }[];
      expect(removed.filter((entry) => entry.Deleted).length).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
