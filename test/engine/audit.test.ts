import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { eventActions, useEngine, waitFor } from "./harness.js";

// Everyday docker CLI commands an audit against dockerd 20.10 found answered otherwise (Debian's CLI).
const engine = useEngine("lcd-engine-audit-");

beforeAll(async () => {
  // `docker run` says on stderr that it pulls an image it does not have.
  expect(await engine.docker(["pull", "-q", engine.image])).toMatchObject({ code: 0 });
}, 60_000);

/** What a command must have done: exit 0 with nothing on stderr; its stdout. */
async function ok(args: readonly string[]): Promise<string> {
  const result = await engine.docker(args);
  expect(result, args.join(" ")).toMatchObject({ code: 0, stderr: "" });
  return result.stdout;
}

/** The events of one container from `since` (ms) until now, as action lines. */
const eventsOf = (name: string, since: number, ...filters: string[]): Promise<string[]> =>
  eventActions(engine, (since / 1000).toFixed(3), [`container=${name}`, ...filters]);

describe("ctrd serve as dockerd: pruning and disk usage", () => {
  it("docker builder prune and docker system prune succeed (POST /build/prune was a 404)", async () => {
    expect(await ok(["builder", "prune", "-f"])).toContain("Total reclaimed space: 0B");
    const system = await ok(["system", "prune", "-f"]);
    expect(system).toContain("Total reclaimed space: 0B");
  });

  it("docker system df counts what containers wrote; -v shows their command, age, status and size", async () => {
    await ok(["run", "-d", "--name", "df-running", engine.image, "sleep", "1000"]);
    await ok(["exec", "df-running", "sh", "-c", "head -c 1000000 /dev/zero > /blob"]);
    await ok([
      "run",
      "--name",
      "df-exited",
      "-l",
      "audit=prune",
      engine.image,
      "sh",
      "-c",
      "head -c 500000 /dev/zero > /blob",
    ]);
    const summary = await ok([
      "system",
      "df",
      "--format",
      "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    expect(summary.split("\n")).toContain("Containers|2|1.5MB|500kB (33%)");
    const verbose = (await ok(["system", "df", "-v"])).split("\n");
    const running = verbose.find((line) => line.trim().endsWith("df-running")) ?? "";
    expect(running).toMatch(/ "sleep 1000" +0 +1MB +(Less than a second|\d+ seconds?) ago +Up /);
    const exited = verbose.find((line) => line.trim().endsWith("df-exited")) ?? "";
    expect(exited).toMatch(/ "sh -c 'head -c 5000…" +0 +500kB +.* ago +Exited \(0\) /);
    await ok(["rm", "-f", "df-running"]);
  });

  it("docker container prune reports the space the containers it removed had written", async () => {
    const pruned = await ok(["container", "prune", "-f", "--filter", "label=audit=prune"]);
    expect(pruned).toContain("Total reclaimed space: 500kB");
    expect(await ok(["ps", "-aq", "--filter", "label=audit=prune"])).toBe("");
  });
});

describe("ctrd serve as dockerd: docker top", () => {
  it("gives ps the container's pids (-q), so that -o lists them; columns with spaces stay whole", async () => {
    const id = (
      await ok(["run", "-d", "-u", "1000", "--name", "top-me", engine.image, "sleep", "1000"])
    ).trim();
    const since = Date.now();
    // Without -e or -q, ps lists only the caller's own processes: the container's (uid 1000) were not among them.
    const pids = (await ok(["top", "top-me", "-o", "pid,comm"])).split("\n").filter(Boolean);
    expect(pids[0]).toMatch(/^PID +COMMAND$/);
    expect(pids.slice(1)).toEqual([expect.stringMatching(/^\d+ +sleep$/)]);
    // A column of values with spaces (args) before another: dockerd cuts the rows where every one has a
    // space, from the header's columns; split at every space, STAT had "1000 S".
    const query = encodeURIComponent("-o pid,args,stat");
    const response = await engine.api("GET", `/containers/${id}/top?ps_args=${query}`);
    expect(response.status, response.body).toBe(200);
    const top = JSON.parse(response.body) as { Titles: string[]; Processes: string[][] };
    expect(top.Titles).toEqual(["PID", "COMMAND", "STAT"]);
    expect(top.Processes).toEqual([
      [expect.stringMatching(/^\d+$/), "sleep 1000", expect.stringMatching(/^S/)],
    ]);
    expect(await eventsOf("top-me", since, "event=top")).toEqual(["top", "top"]);
    await ok(["rm", "-f", "top-me"]);
  });
});

describe("ctrd serve as dockerd: docker top, what dockerd refuses and rows wider than their columns", () => {
  it("refuses a column other than pid titled PID, as dockerd's validatePSArgs: the rows are kept by it", async () => {
    await ok(["run", "-d", "--name", "top-forged", engine.image, "sleep", "1000"]);
    // A forest (`f`) cannot go with -q: ps ran again without it, over every process of the host, and the
    // rows shown were those whose ppid (or rss, vsz, …) was one of the container's pids.
    const forged = await engine.docker(["top", "top-forged", "axf", "-o", "ppid=PID,args"]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toContain('Error response from daemon: specifying "ppid=PID,args" is not allowed');
    const renamed = await engine.docker(["top", "top-forged", "-o", "pid=PID,args"]);
    expect(renamed).toMatchObject({ code: 0, stderr: "" });
    await ok(["rm", "-f", "top-forged"]);
  });

  it("reads aux's rows whose VSZ and RSS are wider than their columns (a 1 GB process) value by value", async () => {
    // dd's buffer is 1100 MB of address space (VSZ 7 digits), 150 MB of it read (RSS 6 digits); it then waits.
    const script =
      "sleep 1000 | (head -c 150000000 /dev/zero; cat) | dd bs=1100M count=1 iflag=fullblock of=/dev/null";
    const id = (await ok(["run", "-d", "--name", "top-wide", engine.image, "sh", "-c", script])).trim();
    const rssKb = async () => {
      const status = await engine.docker(["exec", "top-wide", "sh", "-c", "cat /proc/$(pidof dd)/status"]);
      return Number(/VmRSS:\s+(\d+)/.exec(status.stdout)?.[1] ?? 0);
    };
    await waitFor(async () => (await rssKb()) >= 100_000, "dd holding 100 MB");
    const response = await engine.api("GET", `/containers/${id}/top?ps_args=aux`);
    expect(response.status, response.body).toBe(200);
    const top = JSON.parse(response.body) as { Titles: string[]; Processes: string[][] };
    const column = (row: string[], title: string) => row[top.Titles.indexOf(title)] ?? "";
    for (const row of top.Processes) {
      expect(column(row, "VSZ"), row.join("|")).toMatch(/^\d+$/);
      expect(column(row, "RSS"), row.join("|")).toMatch(/^\d+$/);
      expect(column(row, "TTY"), row.join("|")).toBe("?");
    }
    // busybox's sh runs dd without an exec: its row's command is the shell's.
    const [dd = []] = top.Processes.sort((a, b) => Number(column(b, "RSS")) - Number(column(a, "RSS")));
    expect(Number(column(dd, "VSZ"))).toBeGreaterThanOrEqual(1_000_000);
    expect(Number(column(dd, "RSS"))).toBeGreaterThanOrEqual(100_000);
    // lstart's date has spaces: its rows were cut inside it ("Unexpected pid '7 Tue Dec  1'", a 500).
    const started = await engine.api(
      "GET",
      `/containers/${id}/top?ps_args=${encodeURIComponent("-o pid,lstart")}`,
    );
    expect(started.status, started.body).toBe(200);
    await ok(["rm", "-f", "top-wide"]);
  });
});

describe("ctrd serve as dockerd: inspect", () => {
  it("gives a container without --hostname its short id as Config.Hostname, as its hostname is", async () => {
    const id = (await ok(["create", "--name", "named-by-id", engine.image, "hostname"])).trim();
    expect((await ok(["inspect", "-f", "{{.Config.Hostname}}", "named-by-id"])).trim()).toBe(id.slice(0, 12));
    expect(await ok(["start", "-a", "named-by-id"])).toBe(`${id.slice(0, 12)}\n`);
    const given = await ok(["run", "--rm", "--hostname", "given", engine.image, "hostname"]);
    expect(given).toBe("given\n");
    await ok(["rm", "named-by-id"]);
  });
});

describe("ctrd serve as dockerd: docker push", () => {
  it("lists the image's layers (not its config and manifest), naming where a mounted one came from", async () => {
    const target = `${engine.registry.host}/audit-pushed:1`;
    await ok(["tag", engine.image, target]);
    const layer = /^[0-9a-f]{12}: /;
    const first = (await ok(["push", target])).split("\n").filter(Boolean);
    // The busybox image has one layer, in the registry already under busybox.
    expect(first.filter((line) => layer.test(line))).toEqual([
      expect.stringMatching(/^[0-9a-f]{12}: Mounted from busybox$/),
    ]);
    expect(first.at(-1)).toMatch(/^1: digest: sha256:[0-9a-f]{64} size: \d+$/);
    const again = (await ok(["push", target])).split("\n").filter(Boolean);
    expect(again.filter((line) => layer.test(line))).toEqual([
      expect.stringMatching(/^[0-9a-f]{12}: Layer already exists$/),
    ]);
    await ok(["rmi", target]);
  });
});

describe("ctrd serve as dockerd: docker ps", () => {
  it("shows the image's id for a container whose image name now names another image, or none", async () => {
    await ok(["tag", engine.image, "audit-moved:1"]);
    await ok(["create", "--name", "from-tag", "audit-moved:1"]);
    const imageOf = async (): Promise<string> =>
      (await ok(["ps", "-a", "--filter", "name=from-tag", "--format", "{{.Image}}"])).trim();
    expect(await imageOf()).toBe("audit-moved:1");
    const oldId = (await ok(["inspect", "-f", "{{.Image}}", "from-tag"])).trim();
    // The tag moves to a new image (as a pull or build of the same name moves it).
    await ok(["commit", "from-tag", "audit-moved:1"]);
    expect(await imageOf()).toBe(oldId.replace(/^sha256:/, "").slice(0, 12));
    await ok(["rmi", "audit-moved:1"]);
    expect(await imageOf()).toBe(oldId.replace(/^sha256:/, "").slice(0, 12));
    await ok(["rm", "from-tag"]);
  });
});

describe("ctrd serve as dockerd: docker exec", () => {
  it("gives a terminal exec TERM=xterm (top, clear, vi need it), keeping the container's environment", async () => {
    await ok(["run", "-d", "--name", "exec-env", "-e", "FROM_RUN=1", engine.image, "sleep", "1000"]);
    const tty = await ok(["exec", "-t", "exec-env", "sh", "-c", 'echo "$TERM $FROM_RUN $PATH"']);
    expect(tty).toBe("xterm 1 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\r\n");
    expect(await ok(["exec", "exec-env", "sh", "-c", 'echo "[$TERM]"'])).toBe("[]\n");
    expect(await ok(["exec", "-t", "-e", "TERM=vt100", "exec-env", "sh", "-c", "echo $TERM"])).toBe(
      "vt100\r\n",
    );
    await ok(["rm", "-f", "exec-env"]);
  });
});

describe("ctrd serve as dockerd: a process that cannot start", () => {
  it("is explained in containerd's words, as dockerd passes them on, for run and exec", async () => {
    const run = await engine.docker(["run", "--rm", engine.image, "no-such-command"]);
    expect(run.code).toBe(127);
    expect(run.stderr).toMatch(
      /^docker: Error response from daemon: failed to create shim task: OCI runtime create failed: .*exec: "no-such-command": executable file not found in \$PATH: unknown\.$/m,
    );
    await ok(["run", "-d", "--name", "exec-target", engine.image, "sleep", "1000"]);
    const exec = await engine.docker(["exec", "exec-target", "no-such-command"]);
    expect(exec.code).toBe(126);
    expect(exec.stdout).toMatch(
      /^OCI runtime exec failed: exec failed: .*exec: "no-such-command": executable file not found in \$PATH: unknown\r?$/m,
    );
    await ok(["rm", "-f", "exec-target"]);
  });
});

describe("ctrd serve as dockerd: restart, kill, rename", () => {
  it("docker restart stops (a stop event) before it starts again", async () => {
    await ok(["run", "-d", "--name", "restarted", engine.image, "sleep", "1000"]);
    const since = Date.now();
    await ok(["restart", "-t", "0", "restarted"]);
    const actions = await eventsOf(
      "restarted",
      since,
      "event=die",
      "event=stop",
      "event=start",
      "event=restart",
    );
    expect(actions).toEqual(["die", "stop", "start", "restart"]);
    await ok(["rm", "-f", "restarted"]);
  });

  it("docker start begins an on-failure policy anew: RestartCount from 0, N restarts again", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "failing",
      "--restart",
      "on-failure:2",
      engine.image,
      "sh",
      "-c",
      "echo run; exit 3",
    ]);
    const runs = async (): Promise<number> =>
      (await ok(["logs", "failing"])).split("\n").filter(Boolean).length;
    const state = async (): Promise<string> =>
      (await ok(["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "failing"])).trim();
    await waitFor(async () => (await state()) === "exited 2" && (await runs()) === 3, "three runs");
    await ok(["start", "failing"]);
    // dockerd's containerStart resets the restart manager: the first run and two restarts again.
    await waitFor(async () => (await runs()) === 6 && (await state()) === "exited 2", "three more runs");
    await ok(["restart", "failing"]);
    await waitFor(
      async () => (await runs()) === 9 && (await state()) === "exited 2",
      "three runs after restart",
    );
    await ok(["rm", "failing"]);
  });

  it("docker rm -f of a running container kills it with a kill event, as dockerd", async () => {
    await ok(["run", "-d", "--name", "removed", engine.image, "sleep", "1000"]);
    const since = Date.now();
    await ok(["rm", "-f", "removed"]);
    const actions = await eventsOf("removed", since, "event=kill", "event=die", "event=destroy");
    expect(actions).toEqual(["kill", "die", "destroy"]);
  });

  it("docker kill words its refusals as dockerd: an invalid signal, a container not running", async () => {
    const id = (await ok(["run", "-d", "--name", "killed", engine.image, "sleep", "1000"])).trim();
    const bogus = await engine.docker(["kill", "-s", "BOGUS", "killed"]);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain("Error response from daemon: Invalid signal: BOGUS");
    const zero = await engine.api("POST", "/containers/killed/kill?signal=0");
    expect(zero).toMatchObject({ status: 400, body: '{"message":"Invalid signal: 0"}\n' });
    expect((await ok(["inspect", "-f", "{{.State.Status}}", "killed"])).trim()).toBe("running");
    await ok(["kill", "killed"]);
    await ok(["wait", "killed"]);
    const again = await engine.docker(["kill", "killed"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      `Error response from daemon: Cannot kill container: killed: Container ${id} is not running`,
    );
    await ok(["rm", "killed"]);
  });

  it("docker rename to the name it has is refused", async () => {
    await ok(["create", "--name", "same-name", engine.image]);
    const same = await engine.docker(["rename", "same-name", "same-name"]);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain(
      "Error response from daemon: Renaming a container with the same name as its current name",
    );
    await ok(["rm", "same-name"]);
  });
});

describe("ctrd serve as dockerd: log drivers and their options", () => {
  it("rotates a json-file log at max-size, keeping max-file files, and docker logs reads them in order", async () => {
    const script = "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done";
    const run = ["run", "--name", "rotated", "--log-opt", "max-size=1k", "--log-opt", "max-file=3"];
    expect((await ok([...run, engine.image, "sh", "-c", script])).split("\n")).toHaveLength(201);
    const logPath = (await ok(["inspect", "-f", "{{.LogPath}}", "rotated"])).trim();
    const files = readdirSync(dirname(logPath)).filter((name) => name.startsWith(basename(logPath)));
    expect(files.sort()).toEqual([basename(logPath), `${basename(logPath)}.1`, `${basename(logPath)}.2`]);
    // max-size is decimal for json-file (go-units FromHumanSize): rotated once a file holds 1000 bytes.
    for (const name of files.slice(1)) {
      const size = statSync(join(dirname(logPath), name)).size;
      expect(size).toBeGreaterThanOrEqual(1000);
      expect(size).toBeLessThan(1100);
    }
    const lines = (await ok(["logs", "rotated"])).split("\n").filter(Boolean);
    const first = Number(lines[0]?.slice("line-".length));
    expect(first).toBeGreaterThan(0);
    expect(lines).toEqual(Array.from({ length: 200 - first }, (_, index) => `line-${first + index}`));
    expect(await ok(["logs", "--tail", "2", "rotated"])).toBe("line-198\nline-199\n");
    await ok(["rm", "rotated"]);
    expect(existsSync(dirname(logPath))).toBe(false);
  });

  it("keeps logging after a rotation that failed (the old file could not be moved), as moby's rotate", async () => {
    await ok(
      ["run", "-d", "--name", "rotate-fails", "--log-opt", "max-size=100", "--log-opt", "max-file=2"].concat([
        engine.image,
        "sleep",
        "1000",
      ]),
    );
    const logPath = (await ok(["inspect", "-f", "{{.LogPath}}", "rotate-fails"])).trim();
    // Output the container's main process writes, through its stdout pipe.
    const say = (words: string) => ok(["exec", "rotate-fails", "sh", "-c", `echo ${words} > /proc/1/fd/1`]);
    const logged = (words: string) => async () => (await ok(["logs", "rotate-fails"])).includes(words);
    await say(`first-${"x".repeat(150)}`);
    await waitFor(logged("first-"), "the first line logged");
    // The file the current log becomes is in the way: this rotation cannot move the log aside.
    mkdirSync(`${logPath}.1`);
    await say("second");
    rmdirSync(`${logPath}.1`);
    await say("third");
    // The log was closed for the rotation and never opened again: every later line went to a closed
    // descriptor (or whichever file or socket the engine opened next with its number).
    await waitFor(logged("third"), "the line after the failed rotation logged");
    await ok(["rm", "-f", "rotate-fails"]);
  });

  it("keeps nothing with --log-driver none, and docker logs says it cannot read it", async () => {
    expect(await ok(["run", "--name", "unlogged", "--log-driver", "none", engine.image, "echo", "hi"])).toBe(
      "hi\n",
    );
    const logs = await engine.docker(["logs", "unlogged"]);
    expect(logs.code).toBe(1);
    expect(logs.stderr).toContain(
      "Error response from daemon: configured logging driver does not support reading",
    );
    const logPath = (await ok(["inspect", "-f", "{{.LogPath}}", "unlogged"])).trim();
    expect(existsSync(logPath)).toBe(false);
    await ok(["rm", "unlogged"]);
  });

  it("refuses log options the driver does not take, as dockerd words them", async () => {
    const refusals: [string[], string][] = [
      [["--log-opt", "colour=blue"], "unknown log opt 'colour' for json-file log driver"],
      [["--log-opt", "max-size=-1"], "invalid size: '-1'"],
      [["--log-opt", "max-size=0"], "max-size must be a positive number"],
      [["--log-opt", "max-file=0"], "max-file cannot be less than 1"],
      [["--log-driver", "local", "--log-opt", "tag=x"], "unknown log opt 'tag' for log driver local"],
    ];
    for (const [options, message] of refusals) {
      const created = await engine.docker(["create", ...options, engine.image]);
      expect(created.code, options.join(" ")).toBe(1);
      expect(created.stderr).toContain(`Error response from daemon: ${message}`);
    }
    expect(await ok(["ps", "-aq", "--filter", "status=created"])).toBe("");
  });
});
