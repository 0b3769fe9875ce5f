import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ctrd } from "../cli/helpers.js";
import { fetchWhenUp } from "../harness/network.js";
import { freePort } from "../harness/registry.js";
import { DOCKER, useEngine } from "./harness.js";

// Debian's docker CLI (a client nobody here wrote) against `ctrd serve`.
const engine = useEngine("lcd-engine-cli-");

async function waitFor(check: () => Promise<boolean>, what: string, attempts = 200): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not happen`);
}

describe("ctrd serve with the docker CLI", () => {
  it("listens on a unix socket that only root and the --group may use", () => {
    const socket = statSync(engine.socket);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o660);
    expect(socket.uid).toBe(0);
    expect(socket.gid).toBe(1); // Debian's `daemon` group
  });

  it("refuses TCP without TLS", async () => {
    const result = await ctrd([
      "serve",
      "-H",
      "tcp://127.0.0.1:2375",
      "--containerd",
      engine.containerd.address,
    ]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/tcp:\/\/ host needs --tlscert and --tlskey/);
  });

  it("answers docker version and docker info", async () => {
    const version = await engine.docker([
      "version",
      "--format",
      "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    expect(version.stderr).toBe("");
    expect(version.stdout.trim()).toBe("1.41 1.12 linux");
    const info = await engine.docker(["info", "--format", "{{.OSType}} {{.Driver}} {{.ContainersRunning}}"]);
    expect(info.code).toBe(0);
    expect(info.stdout.trim()).toMatch(/^linux overlayfs \d+$/);
  });

  it("pulls from a local registry with progress, and lists the image", async () => {
    const pulled = await engine.docker(["pull", engine.image]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/Pull complete|Already exists/);
    expect(pulled.stdout).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    const images = await engine.docker(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    expect(images.stdout).toContain(`${engine.image} `);
    const missing = await engine.docker(["pull", `${engine.image.replace("busybox", "nothing-here")}`]);
    expect(missing.code).not.toBe(0);
  });

  it("runs a container: output, exit codes passed through, --rm leaves nothing", async () => {
    const hi = await engine.docker(["run", "--rm", engine.image, "echo", "hi"]);
    expect(hi).toMatchObject({ code: 0, stdout: "hi\n" });
    const three = await engine.docker([
      "run",
      "--rm",
      engine.image,
      "sh",
      "-c",
      "echo out; echo err >&2; exit 3",
    ]);
    expect(three.code).toBe(3);
    expect(three.stdout).toBe("out\n");
    expect(three.stderr).toBe("err\n");
    const piped = await engine.docker(["run", "--rm", "-i", engine.image, "tr", "a-z", "A-Z"], {
      input: "shout\n",
    });
    expect(piped).toMatchObject({ code: 0, stdout: "SHOUT\n" });
    const all = await engine.docker(["ps", "-aq"]);
    expect(all.stdout).toBe("");
  });

  it("publishes a port: the page in the container is fetched from the host", async () => {
    const port = await freePort();
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "web",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      "sh",
      "-c",
      "mkdir -p /www && echo served-by-ctrd > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect(await fetchWhenUp(`http://127.0.0.1:${port}/`)).toBe("served-by-ctrd\n");
    expect((await engine.docker(["port", "web"])).stdout).toContain(`80/tcp -> 127.0.0.1:${port}`);
    const ps = await engine.docker(["ps", "--format", "{{.Names}} {{.Status}} {{.Ports}}"]);
    expect(ps.stdout).toMatch(new RegExp(`web Up .* 127\\.0\\.0\\.1:${port}->80/tcp`));
    const removed = await engine.docker(["rm", "-f", "web"]);
    expect(removed).toMatchObject({ code: 0, stdout: "web\n" });
  });

  it("follows logs, with tail and timestamps", async () => {
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "talker",
      engine.image,
      "sh",
      "-c",
      "echo one; echo two >&2; read x; echo three",
    ]);
    expect(started.code, started.stderr).toBe(0);
    // Without -i the container's stdin is empty: `read` returns at once.
    const follow = engine.spawnDocker(["logs", "-f", "talker"]);
    let out = "";
    let err = "";
    follow.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    follow.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    const [code] = (await once(follow, "close")) as [number];
    expect(code).toBe(0);
    expect(out).toBe("one\nthree\n");
    expect(err).toBe("two\n");
    const tail = await engine.docker(["logs", "--tail", "1", "-t", "talker"]);
    // stdout and stderr reach the log through two pipes: which of "two" and "three" is last may vary.
    expect(tail.stdout + tail.stderr).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (two|three)\n$/);
    const ps = await engine.docker(["ps", "-a", "--filter", "name=talker", "--format", "{{.Status}}"]);
    expect(ps.stdout).toMatch(/^Exited \(0\) .* ago\n$/);
  });

  it("execs, attached and detached, with and without a TTY", async () => {
    expect((await engine.docker(["run", "-d", "--name", "box", engine.image, "sleep", "300"])).code).toBe(0);
    const exec = await engine.docker(["exec", "box", "sh", "-c", "echo in-box; echo oops >&2; exit 4"]);
    expect(exec).toMatchObject({ code: 4, stdout: "in-box\n", stderr: "oops\n" });
    const asNobody = await engine.docker(["exec", "-u", "nobody", "box", "id", "-u"]);
    expect(asNobody.stderr).toBe("");
    expect(asNobody.stdout).toBe("65534\n");
    expect((await engine.docker(["run", "--rm", "-u", "nobody", engine.image, "id", "-u"])).stdout).toBe(
      "65534\n",
    );
    const stdin = await engine.docker(["exec", "-i", "box", "cat"], { input: "fed\n" });
    expect(stdin).toMatchObject({ code: 0, stdout: "fed\n" });
    expect((await engine.docker(["exec", "-d", "box", "touch", "/tmp/detached"])).code).toBe(0);
    await waitFor(
      async () => (await engine.docker(["exec", "box", "test", "-e", "/tmp/detached"])).code === 0,
      "the detached exec",
    );
    // -it under a pseudo-terminal (script gives the CLI one).
    const tty = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const script = spawnScript(`${DOCKER} exec -it box sh -c 'tty; exit 6'`, engine.host);
      let out = "";
      script.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
      });
      script.once("close", (code) => resolve({ code, out }));
      script.once("close", () => script.stdin?.destroy());
    });
    expect(tty.out).toMatch(/\/dev\/pts\/\d+/);
    expect(tty.code).toBe(6);
  });

  it("lets an attached client go on ctrl-p ctrl-q, the container running on", async () => {
    expect((await engine.docker(["run", "-dit", "--name", "shell", engine.image, "sh"])).code).toBe(0);
    const conn = connect(engine.socket);
    let seen = "";
    const closed = once(conn, "close");
    const saw = (text: string): Promise<void> =>
      waitFor(async () => seen.includes(text), `${JSON.stringify(text)} on the attached stream`);
    conn.on("data", (chunk: Buffer) => {
      seen += chunk.toString("latin1");
    });
    conn.write(
      "POST /v1.41/containers/shell/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    );
    await saw("101 UPGRADED");
    conn.write("echo marker-$((40+2))\n");
    await saw("marker-42");
    conn.write(Buffer.from([0x10, 0x11]));
    await closed;
    expect(await engine.docker(["inspect", "--format", "{{.State.Status}}", "shell"])).toMatchObject({
      stdout: "running\n",
    });
    expect((await engine.docker(["rm", "-f", "shell"])).code).toBe(0);
  });

  it("shows inspect, top, stats; pauses, stops, kills, waits, removes", async () => {
    const inspect = await engine.docker([
      "inspect",
      "--format",
      "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Image}}",
      "box",
    ]);
    expect(inspect.stdout.trim()).toBe(`running true /box ${engine.image}`);
    const top = await engine.docker(["top", "box"]);
    expect(top.stdout).toMatch(/sleep 300/);
    const stats = await engine.docker([
      "stats",
      "--no-stream",
      "--format",
      "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
      "box",
    ]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toMatch(/^box \d+\.\d\d% [\d.]+[KMG]iB \/ [\d.]+[KMG]iB 1\n$/);
    expect((await engine.docker(["pause", "box"])).code).toBe(0);
    expect((await engine.docker(["ps", "--format", "{{.Status}}", "--filter", "name=box"])).stdout).toMatch(
      /\(Paused\)/,
    );
    expect((await engine.docker(["unpause", "box"])).code).toBe(0);
    // sleep as pid 1 ignores SIGTERM: stop waits out -t, then SIGKILL (137).
    expect((await engine.docker(["stop", "-t", "1", "box"])).code).toBe(0);
    expect((await engine.docker(["wait", "box"])).stdout).toBe("137\n");
    expect((await engine.docker(["start", "box"])).code).toBe(0);
    // Pid 1 ignores signals it has no handler for, so KILL (the default).
    expect((await engine.docker(["kill", "box"])).code).toBe(0);
    expect((await engine.docker(["wait", "box"])).stdout).toBe("137\n");
    const running = await engine.docker(["rm", "box"]);
    expect(running.code).toBe(0);
    const gone = await engine.docker(["inspect", "box"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/No such object: box|No such container: box/);
  });

  it("applies resource limits, host-dir binds, init and a read-only rootfs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "engine-bind-"));
    try {
      writeFileSync(join(dir, "note"), "from-the-host\n");
      const run = await engine.docker([
        "run",
        "-d",
        "--name",
        "limited",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "-v",
        `${dir}:/data:ro`,
        "--init",
        "--read-only",
        engine.image,
        "sleep",
        "300",
      ]);
      expect(run.code, run.stderr).toBe(0);
      const id = run.stdout.trim();
      const cgroup = (controller: string, file: string): string =>
        readFileSync(join("/sys/fs/cgroup", controller, engine.namespace, id, file), "utf8").trim();
      expect(cgroup("memory", "memory.limit_in_bytes")).toBe(String(64 * 1024 * 1024));
      expect(cgroup("pids", "pids.max")).toBe("50");
      expect(cgroup("cpu", "cpu.cfs_quota_us")).toBe("50000");
      expect((await engine.docker(["exec", "limited", "cat", "/data/note"])).stdout).toBe("from-the-host\n");
      expect((await engine.docker(["exec", "limited", "touch", "/data/x"])).code).not.toBe(0);
      expect((await engine.docker(["exec", "limited", "touch", "/rootfs-file"])).code).not.toBe(0);
      expect((await engine.docker(["exec", "limited", "cat", "/proc/1/cmdline"])).stdout).toContain(
        "docker-init",
      );
      const host = await engine.docker([
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.Init}}",
        "limited",
      ]);
      expect(host.stdout.trim()).toBe(`${64 * 1024 * 1024} 500000000 true`);
      expect((await engine.docker(["rm", "-f", "limited"])).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses to remove a running container without -f, and names the conflict", async () => {
    expect((await engine.docker(["run", "-d", "--name", "busy", engine.image, "sleep", "300"])).code).toBe(0);
    const refused = await engine.docker(["rm", "busy"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/You cannot remove a running container/);
    const taken = await engine.docker(["create", "--name", "busy", engine.image]);
    expect(taken.stderr).toMatch(/Conflict\. The container name "\/busy" is already in use/);
    expect((await engine.docker(["rm", "-f", "busy"])).code).toBe(0);
  });

  it("streams events with since and until", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    expect((await engine.docker(["run", "--rm", "--name", "evented", engine.image, "true"])).code).toBe(0);
    const until = Math.floor(Date.now() / 1000) + 1;
    const events = await engine.docker([
      "events",
      "--since",
      String(since),
      "--until",
      String(until),
      "--filter",
      "container=evented",
      "--format",
      "{{.Type}} {{.Action}}",
    ]);
    const actions = events.stdout.trim().split("\n");
    expect(actions).toEqual([
      "container create",
      "container attach",
      "container start",
      "container die",
      "container destroy",
    ]);
  });

  it("creates, lists and removes networks, and runs a container on a user network", async () => {
    const name = `net${Date.now().toString(36)}`;
    const created = await engine.docker(["network", "create", name]);
    expect(created.code, created.stderr).toBe(0);
    const ls = await engine.docker(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    expect(ls.stdout).toContain(`${name} bridge`);
    expect(ls.stdout).toContain("host host");
    expect(ls.stdout).toContain("none null");
    const ip = await engine.docker([
      "run",
      "--rm",
      "--network",
      name,
      engine.image,
      "sh",
      "-c",
      "ip -4 -o addr show eth0 || cat /proc/net/fib_trie | head -1",
    ]);
    expect(ip.code, ip.stderr).toBe(0);
    const none = await engine.docker([
      "run",
      "--rm",
      "--network",
      "none",
      engine.image,
      "cat",
      "/proc/net/dev",
    ]);
    expect(none.stdout).not.toContain("eth0");
    expect((await engine.docker(["network", "rm", name])).code).toBe(0);
    expect((await engine.docker(["network", "ls"])).stdout).not.toContain(name);
  });

  it("removes an image (409 while a container uses it)", async () => {
    const tagged = `${engine.image.replace(/:latest$/, "")}:other`;
    expect((await engine.docker(["tag", engine.image, tagged])).code).toBe(0);
    expect((await engine.docker(["images", "--format", "{{.Tag}}"])).stdout).toContain("other");
    expect((await engine.docker(["create", "--name", "holder", tagged])).code).toBe(0);
    const untag = await engine.docker(["rmi", tagged]);
    expect(untag.stdout).toContain(`Untagged: ${tagged}`);
    expect((await engine.docker(["rm", "holder"])).code).toBe(0);
  });

  it("pushes to the registry, and saves and loads an image (save | load round trip)", async () => {
    const pushed = `${engine.image.replace(/busybox:latest$/, "pushed/busybox")}:v1`;
    expect((await engine.docker(["pull", "-q", engine.image])).code).toBe(0);
    expect((await engine.docker(["tag", engine.image, pushed])).code).toBe(0);
    const push = await engine.docker(["push", pushed]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    expect((await engine.docker(["rmi", pushed])).code).toBe(0);
    const again = await engine.docker(["pull", pushed]);
    expect(again.code, again.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "engine-save-"));
    try {
      const tar = join(dir, "image.tar");
      const saved = await engine.docker(["save", "-o", tar, pushed]);
      expect(saved.code, saved.stderr).toBe(0);
      expect((await engine.docker(["rmi", pushed])).code).toBe(0);
      const loaded = await engine.docker(["load", "-i", tar]);
      expect(loaded.code, loaded.stderr).toBe(0);
      expect(loaded.stdout).toContain(`Loaded image: ${pushed}`);
      expect((await engine.docker(["run", "--rm", pushed, "echo", "loaded-runs"])).stdout).toBe(
        "loaded-runs\n",
      );
      expect((await engine.docker(["rmi", pushed])).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers unknown endpoints, bad input and too-new clients as dockerd does", async () => {
    const unknown = await engine.api("GET", "/v1.41/no/such/thing");
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toHaveProperty("message");
    const badJson = await engine.api("POST", "/v1.41/containers/create", "{not json");
    expect(badJson.status).toBe(400);
    const noImage = await engine.api("POST", "/v1.41/containers/create", { Cmd: ["true"] });
    expect(noImage.status).toBe(400);
    const missing = await engine.api("GET", "/v1.41/containers/nothing-here/json");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toEqual({ message: "No such container: nothing-here" });
    const tooNew = await engine.api("GET", "/v1.99/version");
    expect(tooNew.status).toBe(400);
    expect(JSON.parse(tooNew.body).message).toMatch(/client version 1\.99 is too new/);
    const huge = await engine.api("POST", "/containers/create", "x".repeat(5 * 1024 * 1024));
    expect(huge.status).toBe(413);
    const ping = await engine.api("HEAD", "/_ping");
    expect(ping.status).toBe(200);
    expect(ping.headers["api-version"]).toBe("1.41");
    expect(ping.headers.ostype).toBe("linux");
    expect((await engine.api("GET", "/_ping")).body).toBe("OK");
  });
});

/** Sends raw bytes on a new connection and resolves with whatever comes back before it closes (bounded). */
function rawExchange(socket: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    let answer = "";
    const done = (): void => {
      clearTimeout(timer);
      conn.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, 2000);
    conn.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
    });
    conn.on("error", done);
    conn.on("close", done);
    conn.on("connect", () => conn.end(bytes));
  });
}

describe("ctrd serve under arbitrary input", () => {
  it("answers or closes every request, malformed ones included, and keeps serving", async () => {
    const methods = fc.constantFrom("GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS", "BREW");
    const paths = fc.oneof(
      fc.constantFrom(
        "/containers/json",
        "/containers/create",
        "/containers/x/start",
        "/containers/x/attach?stream=1&stdin=1",
        "/exec/x/start",
        "/images/create?fromImage=",
        "/images/%ZZ/json",
        "/networks/create",
        "/events?since=abc",
        "/v0.1/_ping",
        "/v9.99/_ping",
        "/containers/json?filters=%7B",
        "/containers/json?filters=[1]",
      ),
      fc.webPath(),
    );
    const bodies = fc.oneof(
      fc.constant(""),
      fc.json(),
      fc.string(),
      fc.constant('{"Image": 5, "HostConfig": {"Memory": "x"}}'),
    );
    const requests = fc.record({ method: methods, path: paths, body: bodies, upgrade: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(requests, async ({ method, path, body, upgrade }) => {
        const head = [
          `${method} ${path} HTTP/1.1`,
          "Host: engine",
          "Content-Type: application/json",
          `Content-Length: ${Buffer.byteLength(body)}`,
          ...(upgrade ? ["Connection: Upgrade", "Upgrade: tcp"] : ["Connection: close"]),
        ];
        const answer = await rawExchange(engine.socket, Buffer.from(`${head.join("\r\n")}\r\n\r\n${body}`));
        // Either a well-formed HTTP answer, or (hijacked stream on a missing container never) nothing at all.
        if (answer !== "") expect(answer).toMatch(/^HTTP\/1\.1 \d{3} /);
        const status = Number(answer.slice(9, 12));
        if (answer !== "") expect(status === 101 || status < 500 || status === 501).toBe(true);
      }),
      { numRuns: 150 },
    );
    for (const garbage of [
      Buffer.from([0, 1, 2, 255, 254]),
      Buffer.from("GET / HTTP/9.9\r\n\r\n"),
      Buffer.alloc(100_000, 65),
    ])
      await rawExchange(engine.socket, garbage);
    expect((await engine.api("GET", "/_ping")).body).toBe("OK");
    expect((await engine.docker(["ps", "-a"])).code).toBe(0);
  });
});

describe("ctrd serve's keep-alive connections", () => {
  // dockerd never closes an idle connection; the docker CLI keeps its pool for 90 s and sends a POST it
  // cannot retry (wait, start) on whichever connection it has. Node's default closed them after 5 s.
  it("keeps an idle connection open past Node's 5 s default and answers on it again", async () => {
    const socket = connect(engine.socket);
    await once(socket, "connect");
    let received = "";
    let closed = false;
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      received += chunk;
    });
    socket.on("close", () => {
      closed = true;
    });
    const ping = "GET /_ping HTTP/1.1\r\nHost: engine\r\n\r\n";
    const answers = () => received.split("HTTP/1.1 200 OK").length - 1;
    const answered = async (count: number) => {
      while (answers() < count && !closed) await sleep(20);
    };
    try {
      socket.write(ping);
      await answered(1);
      await sleep(6_000);
      expect(closed).toBe(false);
      socket.write(ping);
      await answered(2);
      expect(answers()).toBe(2);
    } finally {
      socket.destroy();
    }
  }, 20_000);
});

/** The command under a pseudo-terminal (script gives the docker CLI one); stdin stays open. */
function spawnScript(command: string, host: string): ChildProcess {
  return spawn("script", ["-eqc", command, "/dev/null"], {
    env: { ...process.env, DOCKER_HOST: host },
    stdio: ["pipe", "pipe", "pipe"],
  });
}
