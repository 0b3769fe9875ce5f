// `ctrd run` against a private containerd: output, exit codes, stdin, signals, and cleanup.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  CTRD,
  type CtrdResult,
  ctrd,
  type PsRow,
  startCtrd,
  useHarnessCtrd,
  waitForOutput,
} from "./helpers.js";

const fx = useHarnessCtrd("ctrd-run-");

const run = (args: string[], input?: string): Promise<CtrdResult> =>
  ctrd(
    ["run", ...fx.global, ...fx.cgroup, "--rootfs", fx.containerd.rootfs, ...args],
    input === undefined ? {} : { input },
  );

async function listAll(): Promise<PsRow[]> {
  const ps = await ctrd(["ps", "-a", "--json", ...fx.global]);
  expect(ps.code, ps.stderr).toBe(0);
  return JSON.parse(ps.stdout) as PsRow[];
}

function fifoDirs(): string[] {
  const dir = join(fx.containerd.stateDir, "ctrd");
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe("ctrd run", () => {
  test("prints the output and exits with the container's code; --rm leaves nothing", async () => {
    const result = await run(["--rm", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    expect(result).toMatchObject({ code: 3, stdout: "hi\n", stderr: "oops\n" });
    expect(await listAll()).toEqual([]);
    expect(fifoDirs()).toEqual([]);
  });

  test("--init puts tini in front of the command; --read-only; bad limits name the flag", async () => {
    const result = await run([
      "--rm",
      "--init",
      "--read-only",
      "--memory",
      "32m",
      "--cpus",
      "0.5",
      "--",
      "sh",
      "-c",
      "tr '\\0' ' ' < /proc/1/cmdline; echo; touch /x",
    ]);
    expect(result.stdout).toBe("/run/ctrd-init -- sh -c tr '\\0' ' ' < /proc/1/cmdline; echo; touch /x \n");
    expect(result.stderr).toMatch(/Read-only file system/);
    expect(result.code).toBe(1);
    const bad = await run(["--rm", "--cpus", "0.001", "--", "true"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/^ctrd: invalid --cpus "0.001": must be a number of CPUs/);
  });

  test("-i passes stdin through, and its end closes the container's stdin", async () => {
    const result = await run(["--rm", "-i", "--", "sh", "-c", "cat; echo done"], "line one\nline two\n");
    expect(result).toMatchObject({ code: 0, stdout: "line one\nline two\ndone\n" });
  });

  test("--name, --env, --workdir, --user, resource limits and runtime labels reach the container", async () => {
    const result = await run([
      "--rm",
      "--name",
      "flags-test",
      "--env",
      "GREETING=hello",
      "--workdir",
      "/tmp",
      "--user",
      "nobody",
      "--memory",
      "64m",
      "--pids-limit",
      "50",
      "--cpus",
      "0.5",
      "--",
      "sh",
      "-c",
      "echo $GREETING; pwd; id -u; hostname",
    ]);
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({ code: 0, stdout: "hello\n/tmp\n65534\nflags-test\n" });
  });

  test("without --rm the exited container stays (task removed) until ctrd rm", async () => {
    const result = await run(["--name", "kept", "--", "true"]);
    expect(result.code).toBe(0);
    expect((await listAll()).map((row) => [row.id, row.status])).toEqual([["kept", "none"]]);
    expect((await ctrd(["rm", ...fx.global, "kept"])).code).toBe(0);
    expect(await listAll()).toEqual([]);
  });

  test("a missing command exits 127, a non-executable one 126, and nothing is left", async () => {
    const missing = await run(["--rm", "--", "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^ctrd: no-such-command: executable file not found .*\(not_found\)\n$/);
    const notExecutable = await run(["--rm", "--", "/etc/passwd"]);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr.trim().split("\n")).toHaveLength(1);
    expect(await listAll()).toEqual([]);
  });

  test("without --rootfs, a busybox rootfs is built under the state dir on first use", async () => {
    const result = await ctrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rm",
      "--",
      "sh",
      "-c",
      "uname -s; ls /bin/busybox",
    ]);
    expect(result).toMatchObject({ code: 0, stdout: "Linux\n/bin/busybox\n" });
    expect(existsSync(join(fx.containerd.stateDir, ".ctrd/rootfs-busybox/bin/sh"))).toBe(true);
  });

  test("Ctrl-C stops the container; ctrd exits 130 and leaves no container, task or FIFO dir", async () => {
    const started = Date.now();
    const proc = startCtrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rootfs",
      fx.containerd.rootfs,
      "--name",
      "interrupted",
      "--",
      "sh",
      "-c",
      "echo ready; exec sleep 60",
    ]);
    await waitForOutput(proc, (out) => out.includes("ready"));
    proc.child.kill("SIGINT");
    const result = await proc.result;
    expect(result.code).toBe(130);
    // pid 1 ignores SIGTERM without a handler: the default 3 s grace, then SIGKILL.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await listAll()).toEqual([]);
    expect(fifoDirs()).toEqual([]);
  });

  test("run --rm whose container another ctrd removes (rm -f): exits 137 as without --rm, nothing left", async () => {
    for (const rm of [["--rm"], []]) {
      const id = `removed-elsewhere${rm.length}`;
      const proc = startCtrd([
        "run",
        ...rm,
        "--name",
        id,
        ...fx.global,
        ...fx.cgroup,
        "--rootfs",
        fx.containerd.rootfs,
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 60",
      ]);
      await waitForOutput(proc, (out) => out.includes("ready"));
      expect(await ctrd(["rm", "-f", id, ...fx.global])).toMatchObject({ code: 0, stdout: `${id}\n` });
      expect(await proc.result).toMatchObject({ code: 137, stderr: "" });
    }
    expect(await listAll()).toEqual([]);
    expect(fifoDirs()).toEqual([]);
  });

  test("a second Ctrl-C kills at once, without waiting out the stop timeout", async () => {
    const proc = startCtrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rootfs",
      fx.containerd.rootfs,
      "--stop-timeout",
      "30",
      "--",
      "sh",
      "-c",
      "echo ready; exec sleep 60",
    ]);
    await waitForOutput(proc, (out) => out.includes("ready"));
    const interrupted = Date.now();
    proc.child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 100));
    proc.child.kill("SIGINT");
    expect((await proc.result).code).toBe(130);
    expect(Date.now() - interrupted).toBeLessThan(15_000);
    expect(await listAll()).toEqual([]);
  });

  test("SIGTERM is forwarded: the container's handler decides the exit code", async () => {
    const proc = startCtrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rootfs",
      fx.containerd.rootfs,
      "--rm",
      "--",
      "sh",
      "-c",
      "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
    ]);
    await waitForOutput(proc, (out) => out.includes("ready"));
    proc.child.kill("SIGTERM");
    const result = await proc.result;
    expect(result).toMatchObject({ code: 42, stdout: "ready\ngot TERM\n" });
    expect(await listAll()).toEqual([]);
  });

  test("a reader that goes away (ctrd run … | head) stops the container; ctrd exits 141, --rm still removes it", async () => {
    const proc = startCtrd([
      "run",
      ...fx.global,
      ...fx.cgroup,
      "--rootfs",
      fx.containerd.rootfs,
      "--rm",
      "--",
      "yes",
    ]);
    await waitForOutput(proc, (out) => out.length > 0);
    proc.child.stdout?.destroy();
    const result = await proc.result;
    expect(result.code, result.stderr).toBe(141);
    expect(await listAll()).toEqual([]);
    expect(fifoDirs()).toEqual([]);
  });

  test("-it: a terminal sized like ours before start, and resized when ours is (SIGWINCH)", async () => {
    // script(1) gives ctrd a real terminal. Its stdin stays open: at EOF script would hang up the
    // terminal. A background job of a non-interactive sh has /dev/null as stdin, hence </dev/tty.
    const ready = join(fx.containerd.rootfs, "tmp/tty-test-ready");
    const inside =
      'stty size; touch /tmp/tty-test-ready; for i in $(seq 300); do [ "$(stty size)" = "30 100" ] || break; sleep 0.05; done; stty size';
    const shell = [
      "stty cols 100 rows 30",
      // Resize once the container has shown its first size (it touches a file in its rootfs).
      `(while [ ! -e ${ready} ]; do sleep 0.05; done; stty cols 120 rows 40 </dev/tty) & true`,
      `${CTRD} run ${[...fx.global, ...fx.cgroup].join(" ")} --rootfs ${fx.containerd.rootfs} --rm -it -- sh -c '${inside}'`,
    ].join("; ");
    const script = spawn("script", ["-qec", shell, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    script.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    let output = "";
    script.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    const [code] = (await once(script, "close")) as [number | null];
    script.stdin.end();
    expect(code, output).toBe(0);
    expect(output.replace(/\r/g, "")).toBe("30 100\n40 120\n");
  });

  test("docker run's privilege, device, rlimit, sysctl and namespace flags reach the container; bad ones name the flag", async () => {
    const result = await run([
      "--rm",
      "--cap-drop",
      "ALL",
      "--cap-add",
      "net_admin",
      "--device",
      "/dev/null:/dev/mynull",
      "--ulimit",
      "nofile=256:512",
      "--ulimit",
      "core=-1",
      "--shm-size",
      "32m",
      "--sysctl",
      "kernel.shmmni=2000",
      "--group-add",
      "4321",
      "--oom-score-adj",
      "300",
      "--pid",
      "host",
      "--",
      "sh",
      "-c",
      [
        "grep CapEff /proc/self/status | cut -f2",
        "test -c /dev/mynull && echo device",
        "ulimit -n; ulimit -Hn; ulimit -c",
        "grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'",
        "cat /proc/sys/kernel/shmmni /proc/self/oom_score_adj",
        "grep Groups /proc/self/status | cut -f2",
        "cat /proc/1/comm",
      ].join("; "),
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(
      `0000000000001000\ndevice\n256\n512\nunlimited\nsize=32768k\n2000\n300\n4321 \n${readFileSync("/proc/1/comm", "utf8")}`,
    );
    expect(result.code).toBe(0);
    for (const [flags, message] of [
      [["--cap-add", "NOPE"], /invalid --cap-add: unknown capability: "CAP_NOPE"/],
      [
        ["--ulimit", "nofile=9:3"],
        /invalid --ulimit: ulimit soft limit must be less than or equal to hard limit: 9 > 3/,
      ],
      [["--sysctl", "vm.swappiness=1"], /invalid --sysctl: sysctl "vm.swappiness" is not namespaced/],
      [["--device", "/etc/passwd"], /invalid --device: .*not a device node/],
      [["--security-opt", "bogus"], /invalid --security-opt "bogus": invalid --security-opt 1/],
      [["--pid", "container:x"], /invalid --pid "container:x": want host/],
    ] as const) {
      const refused = await run(["--rm", ...flags, "--", "true"]);
      expect(refused.stderr).toMatch(message);
      expect(refused.code).toBe(125);
    }
    expect(await listAll()).toEqual([]);
  });

  test("--security-opt seccomp=FILE applies a docker-format profile; by default, as ctr, there is none", async () => {
    const profile = join(tmpdir(), `lcd-deny-mkdir-${process.pid}.json`);
    writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      }),
    );
    const script = "grep Seccomp: /proc/self/status | cut -f2; mkdir /tmp/made && echo made";
    const denied = await run(["--rm", "--security-opt", `seccomp=${profile}`, "--", "sh", "-c", script]);
    expect(denied.stdout).toBe("2\n");
    expect(denied.stderr).toMatch(/Operation not permitted/);
    expect((await run(["--rm", "--", "sh", "-c", script])).stdout).toBe("0\nmade\n");
    rmSync(profile);
    const missing = await run(["--rm", "--security-opt", "seccomp=/nonexistent.json", "--", "true"]);
    expect(missing).toMatchObject({ code: 125 });
    expect(missing.stderr).toMatch(/invalid --security-opt seccomp=\/nonexistent.json: .*no such file/i);
  });
});
