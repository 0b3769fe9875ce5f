import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { requireBinary } from "../harness/binaries.js";
import { busyboxLayer, publishImage } from "../harness/images.js";
import { fetchWhenUp } from "../harness/network.js";
import { startRegistry } from "../harness/registry.js";
import { useEngine } from "./harness.js";

// Everyday docker CLI flows where ctrd serve once answered otherwise than dockerd 20.10 does.
const engine = useEngine("lcd-engine-parity-");

async function waitFor(check: () => Promise<boolean>, what: string, attempts = 200): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not happen`);
}

/** The names of the containers with this label, stopped ones included. */
async function labelled(label: string): Promise<string[]> {
  const ps = await engine.docker(["ps", "-a", "--filter", `label=${label}`, "--format", "{{.Names}}"]);
  return ps.stdout.split("\n").filter(Boolean);
}

describe("ctrd serve as dockerd: starting and stopping", () => {
  it("exits 127 or 126 for a command missing or not executable, and --rm removes what did not start", async () => {
    const missing = await engine.docker([
      "run",
      "--rm",
      "-l",
      "t=start-fail",
      engine.image,
      "no-such-command",
    ]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/executable file not found/);
    const notExecutable = await engine.docker([
      "run",
      "--rm",
      "-l",
      "t=start-fail",
      engine.image,
      "/etc/passwd",
    ]);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr).toMatch(/permission denied/);
    // dockerd's containerStart removes an AutoRemove container whose start failed.
    expect(await labelled("t=start-fail")).toEqual([]);

    expect(
      (await engine.docker(["create", "--name", "never-ran", engine.image, "no-such-command"])).code,
    ).toBe(0);
    const start = await engine.api("POST", "/v1.41/containers/never-ran/start");
    expect(start.status).toBe(400);
    expect(JSON.parse(start.body).message).toMatch(/executable file not found/);
    const state = await engine.docker([
      "inspect",
      "--format",
      "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Error}}",
      "never-ran",
    ]);
    expect(state.stdout).toMatch(/^created 127 false .*executable file not found/);
    expect((await engine.docker(["rm", "never-ran"])).code).toBe(0);
  });

  it("refuses a missing network or user without taking it for a missing image (no pull)", async () => {
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    const network = await engine.docker([
      "run",
      "--rm",
      "--network",
      "no-such-network",
      engine.image,
      "true",
    ]);
    expect(network.code).toBe(125);
    expect(network.stderr).toMatch(/network no-such-network not found/);
    expect(network.stderr).not.toMatch(/Unable to find image/);
    const user = await engine.docker(["run", "--rm", "-u", "no-such-user", engine.image, "true"]);
    expect(user.code).toBe(125);
    expect(user.stderr).toMatch(/unable to find user no-such-user/);
    expect(user.stderr).not.toMatch(/Unable to find image/);
    const missing = await engine.docker(["create", `${engine.registry.host}/not-there:latest`]);
    expect(missing.stderr).toMatch(/Unable to find image/);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe("");
  });

  it("stops and restarts a `docker run --rm` container: the stop returns and the container goes", async () => {
    const started = await engine.docker([
      "run",
      "-d",
      "--rm",
      "--name",
      "rm-stop",
      engine.image,
      "sleep",
      "300",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const stopped = await engine.docker(["stop", "-t", "1", "rm-stop"], { timeoutMs: 30_000 });
    expect(stopped).toMatchObject({ code: 0, stdout: "rm-stop\n" });
    await waitFor(
      async () => (await engine.docker(["ps", "-aq", "-f", "name=rm-stop"])).stdout === "",
      "removal",
    );

    expect(
      (await engine.docker(["run", "-d", "--rm", "--name", "rm-restart", engine.image, "sleep", "300"])).code,
    ).toBe(0);
    const restarted = await engine.docker(["restart", "-t", "1", "rm-restart"], { timeoutMs: 30_000 });
    expect(restarted).toMatchObject({ code: 0, stdout: "rm-restart\n" });
    // dockerd keeps an AutoRemove container through a restart: it runs again.
    const status = await engine.docker(["inspect", "--format", "{{.State.Status}}", "rm-restart"]);
    expect(status.stdout).toBe("running\n");
    expect((await engine.docker(["rm", "-f", "rm-restart"], { timeoutMs: 30_000 })).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: exec", () => {
  it("tells an attached client why its process could not start, and exits 126", async () => {
    expect(
      (await engine.docker(["run", "-d", "--name", "exec-fail", engine.image, "sleep", "300"])).code,
    ).toBe(0);
    const missing = await engine.docker(["exec", "exec-fail", "no-such-command"]);
    expect(missing.code).toBe(126);
    expect(missing.stdout).toMatch(/executable file not found/);
    const noUser = await engine.docker(["exec", "-u", "no-such-user", "exec-fail", "id"]);
    expect(noUser.code).toBe(126);
    expect(noUser.stdout).toMatch(/no-such-user/);
    const tty = await engine.docker(["exec", "-t", "exec-fail", "no-such-command"]);
    expect(tty.code).toBe(126);
    expect(tty.stdout).toMatch(/executable file not found/);
    expect((await engine.docker(["exec", "exec-fail", "true"])).code).toBe(0);
    // stdin that comes (with its end) before the process exists still reaches it.
    const fed = await engine.docker(["exec", "-i", "exec-fail", "cat"], {
      input: "fed\n",
      timeoutMs: 30_000,
    });
    expect(fed).toMatchObject({ code: 0, stdout: "fed\n" });
    expect((await engine.docker(["rm", "-f", "exec-fail"])).code).toBe(0);
  });

  it("sizes an exec's terminal from ConsoleSize before its command runs (API 1.42), and refuses a malformed one", async () => {
    expect(
      (await engine.docker(["run", "-d", "--name", "exec-size", engine.image, "sleep", "300"])).code,
    ).toBe(0);
    const created = await engine.api("POST", "/containers/exec-size/exec", {
      Cmd: ["stty", "size"],
      Tty: true,
      AttachStdout: true,
      ConsoleSize: [33, 101],
    });
    expect(created.status, created.body).toBe(201);
    const { Id } = JSON.parse(created.body) as { Id: string };
    const started = await engine.api("POST", `/exec/${Id}/start`, { Detach: false, Tty: true });
    expect(started.body).toContain("33 101");
    const bad = await engine.api("POST", "/containers/exec-size/exec", { Cmd: ["true"], ConsoleSize: [1] });
    expect(bad.status).toBe(400);
    expect((await engine.docker(["rm", "-f", "exec-size"])).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: docker ps", () => {
  it("lists the latest with -l and -n, stopped ones too, and filters by name, before, since, ancestor", async () => {
    const ps = async (...args: string[]): Promise<string[]> => {
      const result = await engine.docker(["ps", ...args, "--format", "{{.Names}}"]);
      expect(result.stderr).toBe("");
      return result.stdout.split("\n").filter(Boolean);
    };
    expect(
      (await engine.docker(["run", "-d", "--name", "ps-up", "-l", "t=ps", engine.image, "sleep", "300"]))
        .code,
    ).toBe(0);
    expect(
      (await engine.docker(["run", "--name", "ps-done", "-l", "t=ps", engine.image, "sh", "-c", "exit 2"]))
        .code,
    ).toBe(2);
    expect(
      (await engine.docker(["create", "--name", "ps-new", "-l", "t=ps", engine.image, "true"])).code,
    ).toBe(0);
    expect(await ps("-l")).toEqual(["ps-new"]);
    expect(await ps("-n", "2")).toEqual(["ps-new", "ps-done"]);
    expect(await ps("-a", "-f", "name=^/ps-up$")).toEqual(["ps-up"]);
    expect(await ps("-a", "-f", "label=t=ps", "-f", "before=ps-new")).toEqual(["ps-done", "ps-up"]);
    expect(await ps("-a", "-f", "label=t=ps", "-f", "since=ps-up")).toEqual(["ps-new", "ps-done"]);
    expect(await ps("-a", "-f", "label=t=ps", "-f", "exited=2")).toEqual(["ps-done"]);
    // The image named without its tag, or by its short id: dockerd resolves the ancestor to an image.
    const untagged = engine.image.replace(/:latest$/, "");
    expect(await ps("-a", "-f", "label=t=ps", "-f", `ancestor=${untagged}`)).toEqual([
      "ps-new",
      "ps-done",
      "ps-up",
    ]);
    const imageId = (
      await engine.docker(["image", "inspect", "--format", "{{.Id}}", engine.image])
    ).stdout.trim();
    expect(await ps("-a", "-f", "label=t=ps", "-f", `ancestor=${imageId.slice(7, 19)}`)).toHaveLength(3);
    expect(await ps("-a", "-f", "label=t=ps", "-f", "ancestor=127.0.0.1:1/nothing")).toEqual([]);
    expect(await ps("-a", "-f", "label=t=ps", "-f", "network=bridge")).toHaveLength(3);
    // dockerd puts an argument with a space in single quotes; the CLI quotes the whole.
    const command = await engine.docker(["ps", "-a", "-f", "name=ps-done", "--format", "{{.Command}}"]);
    expect(command.stdout).toBe(`"sh -c 'exit 2'"\n`);
    const unknown = await engine.docker(["ps", "-a", "-f", "colour=blue"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    const badStatus = await engine.docker(["ps", "-a", "-f", "status=sleepy"]);
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toMatch(/Invalid filter 'status=sleepy'/);
    expect((await engine.docker(["rm", "-f", "ps-up", "ps-done", "ps-new"])).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: attach", () => {
  it("passes piped stdin through whole: ctrl-p ctrl-q in data are not a detach without a TTY", async () => {
    const input = `one\x10\x11two\n${"\x10\x11".repeat(1000)}\n`;
    const counted = await engine.docker(["run", "--rm", "-i", engine.image, "wc", "-c"], {
      input,
      timeoutMs: 30_000,
    });
    expect(counted).toMatchObject({ code: 0, stdout: `${Buffer.byteLength(input)}\n` });
    // More than the engine holds while the container is being started: none of it is dropped.
    const large = "0123456789abcdef\n".repeat(6 * 65536);
    const all = await engine.docker(["run", "--rm", "-i", engine.image, "wc", "-c"], {
      input: large,
      timeoutMs: 60_000,
    });
    expect(all).toMatchObject({ code: 0, stdout: `${large.length}\n` });
  });

  it("docker start -a shows the output of every run, not only the first", async () => {
    const created = await engine.docker([
      "create",
      "--name",
      "again",
      engine.image,
      "sh",
      "-c",
      "echo run; exit 9",
    ]);
    expect(created.code).toBe(0);
    for (let run = 1; run <= 3; run++) {
      const started = await engine.docker(["start", "-a", "again"], { timeoutMs: 30_000 });
      expect(started, `run ${run}`).toMatchObject({ code: 9, stdout: "run\n" });
    }
    expect((await engine.docker(["logs", "again"])).stdout).toBe("run\nrun\nrun\n");
    expect((await engine.docker(["rm", "again"])).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: the image's config", () => {
  it("completes the container's config from the image: inspect, --entrypoint \"\", the image's STOPSIGNAL", async () => {
    const { ref } = await publishImage(engine.registry, engine.containerd.dir, "stopsignal:latest", {
      layers: [busyboxLayer()],
      config: {
        Cmd: ["sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done"],
        Env: ["PATH=/usr/bin:/bin", "FROM_IMAGE=1"],
        WorkingDir: "/tmp",
        StopSignal: "SIGUSR1",
      },
    });
    expect((await engine.docker(["create", "--name", "merged", "-e", "OWN=2", ref])).code).toBe(0);
    const config = await engine.docker([
      "inspect",
      "--format",
      "{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.WorkingDir}} {{.Config.StopSignal}}",
      "merged",
    ]);
    expect(config.stdout).toBe(
      '["sh","-c","trap \'echo got-usr1; exit 0\' USR1; echo ready; while true; do sleep 0.1; done"] ' +
        '["OWN=2","PATH=/usr/bin:/bin","FROM_IMAGE=1"] /tmp SIGUSR1\n',
    );
    expect((await engine.docker(["start", "merged"])).code).toBe(0);
    await waitFor(async () => (await engine.docker(["logs", "merged"])).stdout === "ready\n", "the trap");
    // SIGTERM would not stop it (pid 1 ignores it): the image's stop signal does, before the timeout's SIGKILL.
    expect((await engine.docker(["stop", "-t", "20", "merged"])).code).toBe(0);
    const stopped = await engine.docker(["inspect", "--format", "{{.State.ExitCode}}", "merged"]);
    expect(stopped.stdout).toBe("0\n");
    expect((await engine.docker(["logs", "merged"])).stdout).toBe("ready\ngot-usr1\n");
    expect((await engine.docker(["rm", "merged"])).code).toBe(0);

    const cleared = await engine.docker([
      "run",
      "--rm",
      "--entrypoint",
      "",
      engine.image,
      "echo",
      "no",
      "entrypoint",
    ]);
    expect(cleared).toMatchObject({ code: 0, stdout: "no entrypoint\n" });
  });
});

describe("ctrd serve as dockerd: images", () => {
  it("docker save of a name saves that name, not every name of the image", async () => {
    const named = `${engine.registry.host}/parity-save:v1`;
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    expect((await engine.docker(["tag", engine.image, named])).code).toBe(0);
    const tar = join(engine.containerd.dir, "parity-save.tar");
    const saved = await engine.docker(["save", "-o", tar, named]);
    expect(saved.code, saved.stderr).toBe(0);
    const manifest = JSON.parse(execFileSync("tar", ["-xOf", tar, "manifest.json"], { encoding: "utf8" }));
    expect(manifest.map((entry: { RepoTags: string[] }) => entry.RepoTags)).toEqual([[named]]);
    expect((await engine.docker(["rmi", named])).code).toBe(0);
  });

  it("docker images REPO and --filter reference/label/dangling list what dockerd lists", async () => {
    const other = `${engine.registry.host}/parity-other:v2`;
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    expect((await engine.docker(["tag", engine.image, other])).code).toBe(0);
    const images = async (...args: string[]): Promise<string[]> => {
      const result = await engine.docker(["images", ...args, "--format", "{{.Repository}}:{{.Tag}}"]);
      expect(result.stderr).toBe("");
      return result.stdout.split("\n").filter(Boolean).sort();
    };
    const repository = engine.image.replace(/:latest$/, "");
    expect(await images(repository)).toEqual([engine.image]);
    expect(await images(other)).toEqual([other]);
    expect(await images("--filter", `reference=${engine.registry.host}/parity-*`)).toEqual([other]);
    expect(await images("--filter", `reference=${repository}:*`)).toEqual([engine.image]);
    expect(await images("--filter", "dangling=true")).toEqual([]);
    expect(await images("--filter", "label=no-such-label")).toEqual([]);
    const unknown = await engine.docker(["images", "--filter", "colour=blue"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    expect((await engine.docker(["rmi", other])).code).toBe(0);
  });

  it("docker history lists the image's layers (it was a 405)", async () => {
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    const id = (await engine.docker(["image", "inspect", "-f", "{{.Id}}", engine.image])).stdout.trim();
    const history = await engine.docker([
      "history",
      "--no-trunc",
      "--format",
      "{{.ID}} {{.Size}}",
      engine.image,
    ]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(new RegExp(`^${id} \\d+(\\.\\d+)?[kM]B\n$`));
    expect((await engine.docker(["history", "no-such-image:v0"])).stderr).toMatch(/No such image/);
  });

  it("docker system df counts the images and what they take", async () => {
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    const df = await engine.docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Size}}"]);
    expect(df.code, df.stderr).toBe(0);
    const line = df.stdout.split("\n").find((row) => row.startsWith("Images "));
    expect(line).toMatch(/^Images [1-9]\d* \d+(\.\d+)?[kMG]?B$/);
    expect(line).not.toMatch(/ 0B$/);
  });
});

describe("ctrd serve as dockerd: pruning", () => {
  it("docker image prune removes nothing by default, and with -a every image no container uses", async () => {
    const { ref: unused } = await publishImage(engine.registry, engine.containerd.dir, "parity-prune:v1", {
      layers: [busyboxLayer({ "prune-marker": "unused\n" })],
      config: { Cmd: ["true"], Labels: { "parity-prune": "1" } },
    });
    expect((await engine.docker(["pull", engine.image])).code).toBe(0);
    expect((await engine.docker(["pull", unused])).code).toBe(0);
    const user = await engine.docker(["create", engine.image, "true"]);
    expect(user.code, user.stderr).toBe(0);
    const images = async (): Promise<string[]> =>
      (await engine.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout
        .split("\n")
        .filter(Boolean)
        .sort();
    const dangling = await engine.docker(["image", "prune", "-f"]);
    expect(dangling).toMatchObject({ code: 0, stdout: "Total reclaimed space: 0B\n" });
    expect(await images()).toEqual(expect.arrayContaining([engine.image, unused]));
    // Scoped by a label: images of other tests here are no container's either.
    const all = await engine.docker(["image", "prune", "-a", "-f", "--filter", "label=parity-prune=1"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(`untagged: ${unused}`);
    expect(await images()).toContain(engine.image);
    expect(await images()).not.toContain(unused);
    const unknown = await engine.docker(["image", "prune", "-f", "--filter", "colour=blue"]);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    expect((await engine.docker(["rm", user.stdout.trim()])).code).toBe(0);
  });

  it("docker container prune and network prune take only what their filters select", async () => {
    const mine = ["--label", "parity-prune=1"];
    const running = await engine.docker(["run", "-d", ...mine, engine.image, "sleep", "300"]);
    const keep = await engine.docker(["run", "-d", ...mine, "--label", "keep=yes", engine.image, "true"]);
    const stopped = await engine.docker(["run", "-d", ...mine, engine.image, "true"]);
    for (const id of [keep.stdout.trim(), stopped.stdout.trim()])
      expect((await engine.docker(["wait", id])).stdout).toBe("0\n");
    const all = async (): Promise<string[]> =>
      (await engine.docker(["ps", "-aq", "--no-trunc", "--filter", "label=parity-prune=1"])).stdout
        .split("\n")
        .filter(Boolean)
        .sort();
    // A filter that selects nothing prunes nothing (it was ignored: every stopped container went).
    const none = await engine.docker(["container", "prune", "-f", "--filter", "label=no-such-label"]);
    expect(none.code, none.stderr).toBe(0);
    expect(await all()).toEqual([running, keep, stopped].map((result) => result.stdout.trim()).sort());
    const old = await engine.docker(["container", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z"]);
    expect(old.code, old.stderr).toBe(0);
    expect((await all()).length).toBe(3);
    const pruned = await engine.docker([
      "container",
      "prune",
      "-f",
      "--filter",
      "label=parity-prune=1",
      "--filter",
      "label!=keep=yes",
    ]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(stopped.stdout.trim());
    expect(await all()).toEqual([running, keep].map((result) => result.stdout.trim()).sort());
    const unknown = await engine.docker(["container", "prune", "-f", "--filter", "colour=blue"]);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    await engine.docker(["rm", "-f", running.stdout.trim(), keep.stdout.trim()]);

    const tagged = `prune-tagged-${Date.now().toString(36)}`;
    const plain = `prune-plain-${Date.now().toString(36)}`;
    expect((await engine.docker(["network", "create", "--label", "temp=1", tagged])).code).toBe(0);
    expect((await engine.docker(["network", "create", plain])).code).toBe(0);
    const networks = async (): Promise<string[]> =>
      (await engine.docker(["network", "ls", "--format", "{{.Name}}"])).stdout
        .split("\n")
        .filter((name) => name.startsWith("prune-"));
    const labelled = await engine.docker(["network", "prune", "-f", "--filter", "label=temp=1"]);
    expect(labelled.code, labelled.stderr).toBe(0);
    expect(await networks()).toEqual([plain]);
    expect((await engine.docker(["network", "prune", "-f"])).code).toBe(0);
    expect(await networks()).toEqual([]);
  });
});

describe("ctrd serve as dockerd: networking", () => {
  it("runs on the host's network with the host's name, discarding published ports with a warning", async () => {
    const host = await engine.docker([
      "run",
      "--rm",
      "--network",
      "host",
      "-p",
      "9:80",
      engine.image,
      "hostname",
    ]);
    expect(host.code, host.stderr).toBe(0);
    expect(host.stdout).toBe(`${hostname()}\n`);
    expect(host.stderr).toMatch(/WARNING: Published ports are discarded when using host network mode/);
  });

  it("writes --add-host into /etc/hosts on the default bridge, a user network, none and host; host-gateway is the bridge's gateway", async () => {
    expect((await engine.docker(["network", "create", "parity-net"])).code).toBe(0);
    // dockerd's default host-gateway-ip: the default bridge's IPv4 gateway.
    const bridge = await engine.docker([
      "network",
      "inspect",
      "--format",
      "{{(index .IPAM.Config 0).Gateway}}",
      "bridge",
    ]);
    const gateway = bridge.stdout.trim();
    expect(gateway, bridge.stderr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    for (const network of ["bridge", "parity-net", "none", "host"]) {
      const hosts = await engine.docker([
        "run",
        "--rm",
        "--network",
        network,
        "--add-host",
        "db.example:10.1.2.3",
        "--add-host",
        "gw.example:host-gateway",
        engine.image,
        "cat",
        "/etc/hosts",
      ]);
      expect(hosts.code, hosts.stderr).toBe(0);
      expect(hosts.stdout, network).toMatch(/^10\.1\.2\.3\tdb\.example$/m);
      expect(hosts.stdout.split("\n"), network).toContain(`${gateway}\tgw.example`);
    }
    expect((await engine.docker(["network", "rm", "parity-net"])).code).toBe(0);
    const bad = await engine.api("POST", "/v1.41/containers/create", {
      Image: engine.image,
      HostConfig: { ExtraHosts: ["no-address"] },
    });
    expect(bad.status).toBe(400);
  });
});

describe("ctrd serve as dockerd: docker network ls filters", () => {
  it("takes type, dangling and every label given, and refuses unknown filters", async () => {
    const suffix = Date.now().toString(36);
    const both = `nl-both-${suffix}`;
    const one = `nl-one-${suffix}`;
    expect((await engine.docker(["network", "create", "--label", "a=1", "--label", "b=2", both])).code).toBe(
      0,
    );
    expect((await engine.docker(["network", "create", "--label", "a=1", one])).code).toBe(0);
    const used = await engine.docker(["run", "-d", "--network", one, engine.image, "sleep", "300"]);
    expect(used.code, used.stderr).toBe(0);
    const names = async (...filters: string[]): Promise<string[]> => {
      const result = await engine.docker([
        "network",
        "ls",
        ...filters.flatMap((f) => ["--filter", f]),
        "--format",
        "{{.Name}}",
      ]);
      expect(result.stderr).toBe("");
      return result.stdout
        .split("\n")
        .filter((name) => name.endsWith(suffix) || ["bridge", "host", "none"].includes(name))
        .sort();
    };
    expect(await names("label=a=1", "label=b=2")).toEqual([both]);
    expect(await names("label=a=1")).toEqual([both, one].sort());
    expect(await names("type=builtin")).toEqual(["bridge", "host", "none"]);
    expect(await names("type=custom")).toEqual([both, one].sort());
    expect(await names("dangling=true")).toEqual([both]);
    const unknown = await engine.docker(["network", "ls", "--filter", "colour=blue"]);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    await engine.docker(["rm", "-f", used.stdout.trim()]);
    expect((await engine.docker(["network", "rm", both, one])).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: docker rename", () => {
  it("renames in the engine and on containerd's record, refusing a taken or invalid name", async () => {
    const created = await engine.docker(["create", "--name", "before-rename", engine.image, "true"]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    expect(await engine.docker(["rename", "before-rename", "after-rename"])).toMatchObject({ code: 0 });
    expect((await engine.docker(["ps", "-a", "--filter", `id=${id}`, "--format", "{{.Names}}"])).stdout).toBe(
      "after-rename\n",
    );
    const info = JSON.parse(
      execFileSync(
        requireBinary("ctr"),
        ["-a", engine.containerd.address, "-n", engine.namespace, "containers", "info", id],
        {
          encoding: "utf8",
        },
      ),
    ) as { Labels: Record<string, string> };
    expect(info.Labels["io.ctrd.engine.name"]).toBe("after-rename");
    const other = await engine.docker(["create", "--name", "taken-name", engine.image, "true"]);
    const taken = await engine.docker(["rename", "after-rename", "taken-name"]);
    expect(taken.stderr).toMatch(/is already in use by container/);
    expect((await engine.docker(["rename", "after-rename", "bad name"])).stderr).toMatch(
      /Invalid container name/,
    );
    await engine.docker(["rm", id, other.stdout.trim()]);
  });
});

describe("ctrd serve as dockerd: names, aliases, network connect and disconnect", () => {
  it("resolves containers by name and alias on a user network, not on the default bridge", async () => {
    const name = `pn${Date.now().toString(36)}`;
    expect((await engine.docker(["network", "create", name])).code).toBe(0);
    const server = await engine.docker([
      "run",
      "-d",
      "--name",
      `${name}-server`,
      "--network",
      name,
      "--network-alias",
      `${name}-alias`,
      engine.image,
      "sh",
      "-c",
      "mkdir /w && echo served > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    expect(server.code, server.stderr).toBe(0);
    const fetched = await engine.docker([
      "run",
      "--rm",
      "--network",
      name,
      engine.image,
      "sh",
      "-c",
      `until wget -qO- http://${name}-server/; do sleep 0.1; done; wget -qO- http://${name}-alias/`,
    ]);
    expect(fetched).toMatchObject({ code: 0, stdout: "served\nserved\n" });
    const aliases = await engine.docker([
      "inspect",
      "-f",
      `{{json (index .NetworkSettings.Networks "${name}").Aliases}}`,
      `${name}-server`,
    ]);
    expect(JSON.parse(aliases.stdout)).toEqual([server.stdout.trim().slice(0, 12), `${name}-alias`]);
    const onBridge = await engine.docker([
      "run",
      "--rm",
      engine.image,
      "sh",
      "-c",
      `wget -qO- http://${name}-server/`,
    ]);
    expect(onBridge.code).not.toBe(0);
    await engine.docker(["rm", "-f", `${name}-server`]);
    expect((await engine.docker(["network", "rm", name])).code).toBe(0);
  });

  it("connects a created container with aliases (testcontainers' flow), refuses what it cannot do", async () => {
    const name = `pc${Date.now().toString(36)}`;
    expect((await engine.docker(["network", "create", name])).code).toBe(0);
    const created = await engine.docker([
      "create",
      "--name",
      `${name}-c`,
      engine.image,
      "sh",
      "-c",
      "mkdir /w && echo connected > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    expect(created.code, created.stderr).toBe(0);
    const connected = await engine.docker([
      "network",
      "connect",
      "--alias",
      `${name}-web`,
      name,
      `${name}-c`,
    ]);
    expect(connected.code, connected.stderr).toBe(0);
    expect((await engine.docker(["start", `${name}-c`])).code).toBe(0);
    const fetched = await engine.docker([
      "run",
      "--rm",
      "--network",
      name,
      engine.image,
      "sh",
      "-c",
      `until wget -qO- http://${name}-web/; do sleep 0.1; done`,
    ]);
    expect(fetched).toMatchObject({ code: 0, stdout: "connected\n" });
    // Connected, it is on both networks: the default bridge it was created on and the one connected.
    const running = await engine.docker(["network", "connect", "bridge", `${name}-c`]);
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/endpoint with name .*-c already exists in network bridge/);
    expect((await engine.docker(["network", "connect", name, `${name}-c`])).stderr).toMatch(
      /already exists in network/,
    );
    expect((await engine.docker(["network", "disconnect", "bridge", `${name}-c`])).code).toBe(0);
    expect((await engine.docker(["network", "disconnect", "bridge", `${name}-c`])).stderr).toMatch(
      /is not connected to network bridge/,
    );
    expect((await engine.docker(["network", "connect", "host", `${name}-c`])).stderr).toMatch(/host network/);
    expect((await engine.docker(["network", "connect", "no-such-network", `${name}-c`])).stderr).toMatch(
      /network no-such-network not found/,
    );
    expect((await engine.docker(["network", "connect", name, "no-such-container"])).stderr).toMatch(
      /No such container/,
    );
    await engine.docker(["rm", "-f", `${name}-c`]);
    expect((await engine.docker(["network", "rm", name])).code).toBe(0);
  });
});

describe("ctrd serve as dockerd: mounts", () => {
  it("mounts --mount type=bind and tmpfs, and --tmpfs; refuses bad volume names and missing sources", async () => {
    const dir = join(engine.containerd.dir, "parity-mount");
    mkdirSync(dir);
    writeFileSync(join(dir, "in-host"), "from the host\n");
    const bind = await engine.docker([
      "run",
      "--rm",
      "--mount",
      `type=bind,src=${dir},dst=/h`,
      engine.image,
      "sh",
      "-c",
      "cat /h/in-host; echo back > /h/from-container",
    ]);
    expect(bind).toMatchObject({ code: 0, stdout: "from the host\n" });
    expect(readFileSync(join(dir, "from-container"), "utf8")).toBe("back\n");
    const readOnly = await engine.docker([
      "run",
      "--rm",
      "--mount",
      `type=bind,src=${dir},dst=/h,readonly`,
      engine.image,
      "touch",
      "/h/x",
    ]);
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/Read-only file system/);
    const tmpfs = await engine.docker([
      "run",
      "--rm",
      "--tmpfs",
      "/scratch",
      "--mount",
      "type=tmpfs,dst=/sized,tmpfs-size=1048576",
      engine.image,
      "sh",
      "-c",
      "grep -E ' /(scratch|sized) ' /proc/mounts",
    ]);
    expect(tmpfs.code, tmpfs.stderr).toBe(0);
    expect(tmpfs.stdout).toMatch(/^tmpfs \/scratch tmpfs .*nosuid,nodev,noexec/m);
    expect(tmpfs.stdout).toMatch(/^tmpfs \/sized tmpfs .*size=1024k/m);
    // Volumes themselves: test/engine/volumes.test.ts.
    const volume = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,src=bad@name,dst=/v",
      engine.image,
      "true",
    ]);
    expect(volume.code).toBe(125);
    expect(volume.stderr).toMatch(/includes invalid characters for a local volume name/);
    const missing = await engine.docker([
      "run",
      "--rm",
      "--mount",
      `type=bind,src=${join(dir, "not-there")},dst=/x`,
      engine.image,
      "true",
    ]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/bind source path does not exist/);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe("");
  });
});

describe("ctrd serve as dockerd: logs", () => {
  it("docker logs -f -t stamps every line of what comes live, not only the first of a write", async () => {
    const dir = join(engine.containerd.dir, "parity-logs");
    mkdirSync(dir);
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "stamped",
      "-v",
      `${dir}:/h`,
      engine.image,
      "sh",
      "-c",
      "echo ready; while [ ! -e /h/go ]; do sleep 0.05; done; printf 'x\\ny\\nz\\n'",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const follow = engine.spawnDocker(["logs", "-f", "-t", "stamped"]);
    let out = "";
    follow.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    const closed = once(follow, "close");
    // The engine subscribes the follower in the same step as it replays the log: once "ready" has
    // come, the lines written after it come live.
    await waitFor(async () => out.includes(" ready\n"), "the follower's first line");
    writeFileSync(join(dir, "go"), "");
    await closed;
    expect(out).toMatch(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (ready|x|y|z)\n){4}$/);
    expect((await engine.docker(["wait", "stamped"])).stdout).toBe("0\n");
    const removed = await engine.docker(["rm", "stamped"]);
    expect(removed.code, removed.stderr).toBe(0);
  });
});

describe("ctrd serve as dockerd: healthchecks", () => {
  async function health(
    name: string,
  ): Promise<{ Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] } | null> {
    const inspected = await engine.docker(["inspect", "-f", "{{json .State.Health}}", name]);
    expect(inspected.code, inspected.stderr).toBe(0);
    return JSON.parse(inspected.stdout) as never;
  }

  it("runs --health-cmd: starting, unhealthy after its retries, healthy once it passes; ps, the health filter, events", async () => {
    const dir = join(engine.containerd.dir, "parity-health");
    mkdirSync(dir);
    const since = Math.floor(Date.now() / 1000) - 1;
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "checked",
      "-v",
      `${dir}:/h`,
      "--health-cmd",
      "echo probing; test -e /h/ok",
      "--health-interval",
      "100ms",
      "--health-retries",
      "2",
      engine.image,
      "sleep",
      "300",
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect((await health("checked"))?.Status).toMatch(/^(starting|unhealthy)$/);
    await waitFor(async () => (await health("checked"))?.Status === "unhealthy", "unhealthy");
    const unhealthy = await health("checked");
    expect(unhealthy?.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(unhealthy?.Log.at(-1)).toMatchObject({ ExitCode: 1, Output: "probing\n" });
    const ps = await engine.docker([
      "ps",
      "--filter",
      "health=unhealthy",
      "--filter",
      "name=^checked$",
      "--format",
      "{{.Names}} {{.Status}}",
    ]);
    expect(ps.stdout).toMatch(/^checked Up .* \(unhealthy\)\n$/);
    writeFileSync(join(dir, "ok"), "");
    await waitFor(async () => (await health("checked"))?.Status === "healthy", "healthy");
    expect(
      (
        await engine.docker([
          "ps",
          "--filter",
          "health=healthy",
          "--filter",
          "name=^checked$",
          "--format",
          "{{.Names}}",
        ])
      ).stdout,
    ).toBe("checked\n");
    expect((await engine.docker(["ps", "--filter", "health=bogus"])).stderr).toMatch(/health/);
    const events = await engine.docker([
      "events",
      "--since",
      String(since),
      "--until",
      String(Math.ceil(Date.now() / 1000) + 1),
      "--filter",
      "container=checked",
      "--format",
      "{{.Action}}",
    ]);
    expect(events.stdout).toMatch(/health_status: unhealthy\n(.*\n)*health_status: healthy\n/);
    // A container without a healthcheck has no Health.
    expect(
      (await engine.docker(["run", "-d", "--name", "unchecked", engine.image, "sleep", "300"])).code,
    ).toBe(0);
    expect(await health("unchecked")).toBeNull();
    expect(
      (
        await engine.docker([
          "ps",
          "--filter",
          "health=none",
          "--filter",
          "name=unchecked",
          "--format",
          "{{.Names}}",
        ])
      ).stdout,
    ).toBe("unchecked\n");
    await engine.docker(["rm", "-f", "unchecked"]);
    // Stopped, it is unhealthy (its monitor is gone), keeping its results; started again, starting over.
    const logBefore = (await health("checked"))?.Log.length ?? 0;
    expect((await engine.docker(["stop", "-t", "0", "checked"])).code).toBe(0);
    expect((await health("checked"))?.Status).toBe("unhealthy");
    const healthyOnes = await engine.docker([
      "ps",
      "-a",
      "--filter",
      "health=healthy",
      "--filter",
      "name=^checked$",
      "-q",
    ]);
    expect(healthyOnes.stdout).toBe("");
    expect((await engine.docker(["start", "checked"])).code).toBe(0);
    const restarted = await health("checked");
    expect(restarted?.Status).toMatch(/^(starting|healthy)$/);
    expect(restarted?.Log.length).toBeGreaterThanOrEqual(Math.min(logBefore, 1));
    await engine.docker(["rm", "-f", "checked"]);
  });

  it("kills a probe past its timeout and says so, as dockerd does", async () => {
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "slow-probe",
      "--health-cmd",
      "sleep 300",
      "--health-interval",
      "100ms",
      "--health-timeout",
      "200ms",
      "--health-retries",
      "1",
      engine.image,
      "sleep",
      "300",
    ]);
    expect(started.code, started.stderr).toBe(0);
    await waitFor(async () => (await health("slow-probe"))?.Status === "unhealthy", "unhealthy");
    expect((await health("slow-probe"))?.Log[0]).toMatchObject({
      ExitCode: -1,
      Output: "Health check exceeded timeout (200ms)",
    });
    // The probes were killed: after three of them, the container holds its own process and at most the
    // probe running now (probes go on every 100 ms; under load one is nearly always starting, so "none"
    // is rarely seen: CI timed out waiting for it). Probes never killed would be three sleeps by now.
    await waitFor(async () => ((await health("slow-probe"))?.Log.length ?? 0) >= 3, "three probes");
    await waitFor(
      async () => (await engine.docker(["top", "slow-probe"])).stdout.trim().split("\n").length <= 3,
      "no probe left behind",
    );
    const refused = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Healthcheck: { Test: ["CMD", "true"], Interval: 10 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/Interval in Healthcheck cannot be less than 1ms/);
    await engine.docker(["rm", "-f", "slow-probe"]);
  });
});

describe("ctrd serve as dockerd: docker update", () => {
  it("changes a running container's limits at once, a created one's before it starts, and its restart policy", async () => {
    const cgroup = (id: string, controller: string, file: string): string =>
      readFileSync(join("/sys/fs/cgroup", controller, engine.namespace, id, file), "utf8").trim();
    const running = await engine.docker(["run", "-d", engine.image, "sleep", "300"]);
    expect(running.code, running.stderr).toBe(0);
    const id = running.stdout.trim();
    const updated = await engine.docker([
      "update",
      "--memory",
      "64m",
      "--cpus",
      "0.5",
      "--pids-limit",
      "50",
      "--restart",
      "on-failure:3",
      id,
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(cgroup(id, "memory", "memory.limit_in_bytes")).toBe(String(64 * 1024 * 1024));
    expect(cgroup(id, "cpu", "cpu.cfs_quota_us")).toBe("50000");
    expect(cgroup(id, "pids", "pids.max")).toBe("50");
    const inspected = await engine.docker([
      "inspect",
      "-f",
      "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
      id,
    ]);
    expect(inspected.stdout).toBe(`${64 * 1024 * 1024} 500000000 on-failure:3\n`);
    // The next run of the container keeps them.
    expect((await engine.docker(["restart", "-t", "0", id])).code).toBe(0);
    expect(cgroup(id, "memory", "memory.limit_in_bytes")).toBe(String(64 * 1024 * 1024));
    // -1 lifts the pids limit (it was recorded and never applied), now and at the next run.
    expect((await engine.docker(["update", "--pids-limit", "-1", id])).code).toBe(0);
    expect(cgroup(id, "pids", "pids.max")).toBe("max");
    expect((await engine.docker(["restart", "-t", "0", id])).code).toBe(0);
    expect(cgroup(id, "pids", "pids.max")).toBe("max");
    // --cpus set: a quota is refused rather than replacing it, as dockerd refuses it.
    const quota = await engine.docker(["update", "--cpu-quota", "20000", id]);
    expect(quota.code).not.toBe(0);
    expect(quota.stderr).toMatch(/CPU Quota cannot be updated as NanoCPUs has already been set/);
    const created = await engine.docker(["create", engine.image, "sleep", "300"]);
    const createdId = created.stdout.trim();
    expect((await engine.docker(["update", "--memory", "32m", createdId])).code).toBe(0);
    expect((await engine.docker(["start", createdId])).code).toBe(0);
    expect(cgroup(createdId, "memory", "memory.limit_in_bytes")).toBe(String(32 * 1024 * 1024));
    const tooSmall = await engine.docker(["update", "--memory", "1k", createdId]);
    expect(tooSmall.stderr).toMatch(/Minimum memory limit allowed is 6MB/);
    const autoRemove = await engine.docker(["run", "-d", "--rm", engine.image, "sleep", "300"]);
    const refused = await engine.docker(["update", "--restart", "always", autoRemove.stdout.trim()]);
    expect(refused.stderr).toMatch(/AutoRemove is enabled/);
    await engine.docker(["rm", "-f", id, createdId, autoRemove.stdout.trim()]);
  });
});

describe("ctrd serve as dockerd: stats", () => {
  it("reports the container's network interfaces (docker stats' NET I/O), none on the host's network", async () => {
    const served = await engine.docker([
      "run",
      "-d",
      "-p",
      "127.0.0.1::80",
      engine.image,
      "sh",
      "-c",
      "mkdir /w && echo page > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    expect(served.code, served.stderr).toBe(0);
    const id = served.stdout.trim();
    const port = (await engine.docker(["port", id, "80"])).stdout.trim().split(":").at(-1);
    expect(await fetchWhenUp(`http://127.0.0.1:${port}/`)).toBe("page\n");
    type Counters = { rx_bytes: number; tx_bytes: number; rx_packets: number };
    const stats = async (container: string): Promise<{ networks?: Record<string, Counters> }> => {
      const answer = await engine.api("GET", `/containers/${container}/stats?stream=false&one-shot=true`);
      expect(answer.status).toBe(200);
      return JSON.parse(answer.body) as { networks?: Record<string, Counters> };
    };
    const { networks } = await stats(id);
    expect(Object.keys(networks ?? {})).toEqual(["eth0"]);
    expect(networks?.eth0?.rx_bytes).toBeGreaterThan(0);
    expect(networks?.eth0?.tx_bytes).toBeGreaterThan(0);
    const host = await engine.docker(["run", "-d", "--network", "host", engine.image, "sleep", "300"]);
    expect((await stats(host.stdout.trim())).networks).toBeUndefined();
    await engine.docker(["rm", "-f", id, host.stdout.trim()]);
  });
});

describe("ctrd serve as dockerd: inspect", () => {
  it("shows exposed ports that are not published as null in NetworkSettings.Ports", async () => {
    const run = await engine.docker([
      "run",
      "-d",
      "--expose",
      "90",
      "-p",
      "127.0.0.1::91",
      engine.image,
      "sleep",
      "300",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const ports = await engine.docker([
      "inspect",
      "-f",
      "{{json .NetworkSettings.Ports}}",
      run.stdout.trim(),
    ]);
    const parsed = JSON.parse(ports.stdout) as Record<string, { HostIp: string; HostPort: string }[] | null>;
    expect(parsed["90/tcp"]).toBeNull();
    expect(parsed["91/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: expect.stringMatching(/^\d+$/) }]);
    await engine.docker(["rm", "-f", run.stdout.trim()]);
  });
});

describe("ctrd serve as dockerd: docker login", () => {
  it("checks the credentials on the registry (Basic and token auth); pushes and pulls with them after", async () => {
    for (const auth of ["htpasswd", "token"] as const) {
      const registry = await startRegistry({ auth });
      try {
        const wrong = await engine.docker(["login", "-u", registry.username, "-p", "wrong", registry.host]);
        expect(wrong.code, auth).toBe(1);
        expect(wrong.stderr).toMatch(/401|unauthorized|credentials/i);
        const right = await engine.docker([
          "login",
          "-u",
          registry.username,
          "-p",
          registry.password,
          registry.host,
        ]);
        expect(right.code, right.stderr).toBe(0);
        expect(right.stdout).toMatch(/Login Succeeded/);
        const target = `${registry.host}/parity-login/${auth}:v1`;
        expect((await engine.docker(["pull", engine.image])).code).toBe(0);
        expect((await engine.docker(["tag", engine.image, target])).code).toBe(0);
        const pushed = await engine.docker(["push", target]);
        expect(pushed.code, pushed.stderr + pushed.stdout).toBe(0);
        expect((await engine.docker(["rmi", target])).code).toBe(0);
        const pulled = await engine.docker(["pull", target]);
        expect(pulled.code, pulled.stderr).toBe(0);
        expect((await engine.docker(["rmi", target])).code).toBe(0);
        expect((await engine.docker(["logout", registry.host])).code).toBe(0);
      } finally {
        await registry.stop();
      }
    }
  });
});

describe("ctrd serve as dockerd: what this engine does not do", () => {
  it("answers plugin, swarm and search commands clearly, not 'page not found' or 405", async () => {
    expect(await engine.docker(["plugin", "ls", "-q"])).toMatchObject({ code: 0, stdout: "" });
    const expectations: [string[], RegExp][] = [
      [["swarm", "init"], /swarm mode is not supported by this engine/],
      [["service", "ls"], /This node is not a swarm manager/],
      [["node", "ls"], /This node is not a swarm manager/],
      [["search", "busybox"], /image search is not supported by this engine/],
    ];
    for (const [args, message] of expectations) {
      const result = await engine.docker(args);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.stderr).not.toMatch(/page not found|not allowed/);
    }
    // Refusals, not failures of the engine: its log has no error (with a stack) for them.
    expect(engine.log()).not.toMatch(/image search is not supported|swarm mode is not/);
  });
});

describe("ctrd serve as dockerd: docker events filters", () => {
  it("refuses a filter or event type it does not know instead of streaming every event", async () => {
    const unknown = await engine.docker([
      "events",
      "--since",
      "1",
      "--until",
      "2",
      "--filter",
      "colour=blue",
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/invalid filter 'colour'/);
    const type = await engine.docker(["events", "--since", "1", "--until", "2", "--filter", "type=bogus"]);
    expect(type.code).toBe(1);
    expect(type.stderr).toMatch(/Invalid event type: bogus/);
    expect(
      await engine.docker(["events", "--since", "1", "--until", "2", "--filter", "type=container"]),
    ).toMatchObject({ code: 0 });
  });
});
