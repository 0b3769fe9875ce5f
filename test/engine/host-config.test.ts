import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

// HostConfig settings dockerd applies and this engine used to keep and ignore: the docker CLI's flags,
// checked from inside the container.
const engine = useEngine("lcd-engine-hostcfg-");

async function runIn(flags: string[], script: string) {
  return engine.docker(["run", "--rm", ...flags, engine.image, "sh", "-c", script]);
}

/** /proc/self/status's CapEff as the set of capability numbers. */
function capabilityNumbers(capEff: string): number[] {
  const mask = BigInt(`0x${capEff.trim()}`);
  const numbers: number[] = [];
  for (let bit = 0n; bit < 64n; bit++) if (mask & (1n << bit)) numbers.push(Number(bit));
  return numbers;
}

const DOCKER_DEFAULT_CAPS = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const capEff = "grep CapEff /proc/self/status | cut -f2";

/** The kernel's capabilities this process (and so ctrd serve, its child) holds, by number. */
const LAST_CAP = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"));
const OWN_CAPS = capabilityNumbers(
  /^CapEff:\s*(\w+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0",
).filter((cap) => cap <= LAST_CAP);
/** Capabilities by number (linux/capability.h), those a test may find missing on a host. */
const CAP_NAMES: Record<number, string> = {
  16: "SYS_MODULE",
  22: "SYS_BOOT",
  24: "SYS_RESOURCE",
  25: "SYS_TIME",
};
/** A capability the kernel knows that this host cannot give (this machine's: SYS_RESOURCE), if any. */
const MISSING_CAP = Object.entries(CAP_NAMES).find(([bit]) => !OWN_CAPS.includes(Number(bit)))?.[1];

describe("HostConfig that dockerd applies", () => {
  it("capabilities: the defaults, --cap-add, --cap-drop, ALL, and an unknown one refused", async () => {
    const plain = await runIn([], capEff);
    expect(plain.code, plain.stderr).toBe(0);
    expect(capabilityNumbers(plain.stdout)).toEqual(DOCKER_DEFAULT_CAPS);
    const added = await runIn(
      ["--cap-add", "NET_ADMIN", "--cap-add", "cap_sys_ptrace", "--cap-drop", "MKNOD"],
      capEff,
    );
    expect(capabilityNumbers(added.stdout)).toEqual(
      [...DOCKER_DEFAULT_CAPS.filter((cap) => cap !== 27), 12, 19].sort((a, b) => a - b),
    );
    const only = await runIn(["--cap-drop", "ALL", "--cap-add", "CHOWN"], capEff);
    expect(capabilityNumbers(only.stdout)).toEqual([0]);
    const unknown = await runIn(["--cap-add", "NOT_A_CAP"], "true");
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown capability: "CAP_NOT_A_CAP"/);
  });

  // Skipped only on a host whose engine holds every capability the kernel knows (CapEff in
  // /proc/self/status covers CAP_NAMES): there is then nothing it cannot give to refuse. Not a missing
  // dependency; this machine and CI's lack CAP_SYS_RESOURCE, so it runs there (0 skipped).
  it.skipIf(MISSING_CAP === undefined)(
    "capabilities the host cannot give: refused at create in moby's words; ALL is what it can give",
    async () => {
      const before = (await engine.docker(["ps", "-aq"])).stdout;
      const added = await runIn(["--cap-add", `${MISSING_CAP}`], "true");
      expect(added.code).not.toBe(0);
      expect(added.stderr).toContain(
        `invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_${MISSING_CAP}"`,
      );
      const dropped = await runIn(["--cap-drop", `cap_${MISSING_CAP?.toLowerCase()}`], "true");
      expect(dropped.stderr).toContain(
        `invalid CapDrop: capability not supported by your kernel or not available in the current environment: "CAP_${MISSING_CAP}"`,
      );
      const unknown = await runIn(["--cap-add", "NOT_A_CAP"], "true");
      expect(unknown.stderr).toContain('invalid CapAdd: unknown capability: "CAP_NOT_A_CAP"');
      // Nothing was made: refused at create, as dockerd refuses them.
      expect((await engine.docker(["ps", "-aq"])).stdout).toBe(before);
      const all = await runIn(["--cap-add", "ALL", "--cap-drop", "CHOWN"], capEff);
      expect(all.code, all.stderr).toBe(0);
      expect(capabilityNumbers(all.stdout)).toEqual(OWN_CAPS.filter((cap) => cap !== 0));
    },
  );

  it("--ipc none: an IPC namespace of its own and no /dev/shm (unless the container mounts one)", async () => {
    const none = await runIn(
      ["--ipc", "none"],
      "grep -c ' /dev/shm ' /proc/mounts; test -e /dev/shm && echo exists || echo absent; readlink /proc/self/ns/ipc",
    );
    expect(none.code, none.stderr).toBe(0);
    const [count, exists, ns] = none.stdout.trim().split("\n");
    expect([count, exists]).toEqual(["0", "absent"]);
    expect(ns).toMatch(/^ipc:\[\d+\]$/);
    expect(ns).not.toBe(readlinkSync("/proc/self/ns/ipc"));
    const own = await runIn(
      ["--ipc", "none", "--tmpfs", "/dev/shm:size=1m"],
      "grep ' /dev/shm ' /proc/mounts",
    );
    expect(own.stdout, own.stderr).toMatch(/size=1024k/);
  });

  it("--device-cgroup-rule: moby's form only, its error otherwise (400 at create); a rule given works", async () => {
    const client = new Docker({ socketPath: engine.socket });
    const before = (await engine.docker(["ps", "-aq"])).stdout;
    // The docker CLI checks the form itself: another client (dockerode) reaches the engine's check.
    for (const rule of ["c 1:3", "c 1:3 rwm ", " c 1:3 rwm", "c  1:3 rwm", "a rwm", "c 1 rwm"]) {
      const refused = await client
        .createContainer({ Image: engine.image, Cmd: ["true"], HostConfig: { DeviceCgroupRules: [rule] } })
        .then(
          () => undefined,
          (err: { statusCode?: number; json?: { message?: string } }) => err,
        );
      expect(refused?.statusCode, rule).toBe(400);
      expect(refused?.json?.message).toBe(`invalid device cgroup rule format: '${rule}'`);
    }
    const tooBig = await client
      .createContainer({
        Image: engine.image,
        Cmd: ["true"],
        HostConfig: { DeviceCgroupRules: ["c 18446744073709551616:1 rwm"] },
      })
      .catch((err: { json?: { message?: string } }) => err);
    expect((tooBig as { json?: { message?: string } }).json?.message).toBe(
      "invalid major value in device cgroup rule format: 'c 18446744073709551616:1 rwm'",
    );
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe(before);
    // /dev/fuse (10:229) is not among the devices a container may use, unless a rule allows it.
    const open = "mknod /tmp/fuse c 10 229 && exec 3</tmp/fuse && echo opened";
    const denied = await runIn([], open);
    expect(denied.stdout).toBe("");
    const allowed = await runIn(["--device-cgroup-rule", "c 10:229 rwm"], open);
    expect(allowed.stdout, allowed.stderr).toBe("opened\n");
    // `a` alone is the kernel's shorthand for every device: moby expands it to `a *:* rwm` (the docker
    // CLI refuses it itself).
    const all = await client.createContainer({
      Image: engine.image,
      Cmd: ["sh", "-c", open],
      HostConfig: { DeviceCgroupRules: ["a"] },
    });
    await all.start();
    expect(await all.wait()).toMatchObject({ StatusCode: 0 });
    await all.remove();
  });

  it("--privileged: every capability, the host's devices, mount works, /sys writable", async () => {
    // Every capability of the kernel that ctrd (run by this process) holds in its bounding set.
    const lastCap = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"));
    const bounding = capabilityNumbers(
      /^CapBnd:\s*(\w+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0",
    );
    // A host device the default set does not make (docker's default /dev has null, zero, full, tty, …).
    const hostOnly = ["kmsg", "loop0", "tty1", "fuse"].find((name) => {
      try {
        return statSync(`/dev/${name}`).isCharacterDevice() || statSync(`/dev/${name}`).isBlockDevice();
      } catch {
        return false;
      }
    });
    expect(hostOnly, `host devices: ${readdirSync("/dev").join(" ")}`).toBeDefined();
    const script = `${capEff}; test -e /dev/${hostOnly} && echo has-device; mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted; grep ' /sys ' /proc/mounts`;
    const privileged = await runIn(["--privileged"], script);
    expect(privileged.code, privileged.stderr).toBe(0);
    const [caps, ...rest] = privileged.stdout.trim().split("\n");
    expect(capabilityNumbers(caps ?? "")).toEqual(bounding.filter((cap) => cap <= lastCap));
    expect(bounding.length).toBeGreaterThan(DOCKER_DEFAULT_CAPS.length);
    expect(rest).toContain("has-device");
    expect(rest).toContain("mounted");
    expect(rest.find((line) => line.includes(" /sys "))).toMatch(/ rw[, ]/);
    const plain = await runIn([], script);
    expect(plain.stdout).not.toContain("has-device");
    expect(plain.stdout).not.toContain("mounted");
  });

  it("--device: the host's device at a path of the container's, with its cgroup permissions", async () => {
    const rw = await runIn(
      ["--device", "/dev/null:/dev/mynull"],
      "test -c /dev/mynull && echo hi > /dev/mynull && echo wrote",
    );
    expect(rw.stdout.trim(), rw.stderr).toBe("wrote");
    // /dev/null is one runc always allows: the permissions show on a device it does not.
    const other = ["fuse", "loop0", "tty1"].find((name) => {
      try {
        return statSync(`/dev/${name}`).isCharacterDevice() || statSync(`/dev/${name}`).isBlockDevice();
      } catch {
        return false;
      }
    });
    const openForWrite = "exec 3>/dev/mine && echo opened";
    const readOnly = await runIn(["--device", `/dev/${other}:/dev/mine:r`], openForWrite);
    expect(readOnly.stdout).toBe("");
    expect(readOnly.stderr).toMatch(/Operation not permitted/);
    const writable = await runIn(["--device", `/dev/${other}:/dev/mine:rw`], openForWrite);
    expect(writable.stderr).not.toMatch(/Operation not permitted/);
    const missing = await runIn(["--device", "/dev/not-a-device-here"], "true");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/not-a-device-here/);
  });

  it("--ulimit (unlimited too), --oom-score-adj, --shm-size, --group-add", async () => {
    const result = await runIn(
      [
        "--ulimit",
        "nofile=512:1024",
        "--ulimit",
        "core=-1",
        "--oom-score-adj",
        "500",
        "--shm-size",
        "128m",
        "--group-add",
        "1234",
        "--group-add",
        "nogroup",
      ],
      "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj; grep ' /dev/shm ' /proc/mounts; grep Groups /proc/self/status",
    );
    expect(result.code, result.stderr).toBe(0);
    const [soft, hard, core, oom, shm, groups] = result.stdout.trim().split("\n");
    expect([soft, hard, core, oom]).toEqual(["512", "1024", "unlimited", "500"]);
    expect(shm).toMatch(/size=131072k/);
    // The primary group (root's, 0) first among them, as dockerd's getUser.
    expect(groups?.split(/\s+/).slice(1).map(Number).sort()).toEqual([0, 1234, 65534]);
    const bad = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { Ulimits: [{ Name: "nofile", Soft: 10, Hard: 5 }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/soft limit must be less than or equal to hard limit/);
  });

  it("--group-add NAME: resolved at each start in the container's own /etc/group, as dockerd's getUser", async () => {
    const ok = async (args: string[]) => {
      const result = await engine.docker(args);
      expect(result.code, `docker ${args.join(" ")}: ${result.stderr}`).toBe(0);
      return result.stdout.trim();
    };
    // A group the image does not have: create is fine (dockerd reads /etc/group at start), start is not.
    const id = await ok([
      "create",
      "--group-add",
      "hostfixgrp",
      "--group-add",
      "4321",
      engine.image,
      "sh",
      "-c",
      "grep Groups /proc/self/status",
    ]);
    const missing = await engine.docker(["start", "-a", id]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("Unable to find group hostfixgrp: no matching entries in group file");
    // Recorded as dockerd's containerStart records a failed start: why, and exit code 128 (it did not run).
    const state = JSON.parse(await ok(["inspect", "-f", "{{json .State}}", id])) as Record<string, unknown>;
    expect(state).toMatchObject({
      Status: "created",
      ExitCode: 128,
      Error: "Unable to find group hostfixgrp: no matching entries in group file",
    });
    // The container's /etc/group given the group (docker cp into the stopped container): found there.
    const groupFile = join(engine.containerd.dir, "hostfix-group");
    writeFileSync(groupFile, "root:x:0:\nnogroup:x:65534:\nhostfixgrp:x:2345:\n");
    await ok(["cp", groupFile, `${id}:/etc/group`]);
    const found = await ok(["start", "-a", id]);
    expect(found.split(/\s+/).slice(1).map(Number).sort()).toEqual([0, 2345, 4321]);
    await ok(["rm", id]);
    // A named user with it: the user, its group and the one added, from the same files.
    const named = await ok([
      "run",
      "--rm",
      "--user",
      "nobody",
      "--group-add",
      "root",
      engine.image,
      "sh",
      "-c",
      "grep -E '^(Uid|Gid|Groups)' /proc/self/status | cut -f2",
    ]);
    expect(named.split("\n")).toEqual(["65534", "65534", "0 65534"]);
  });

  it("--group-add: an exec (and so a health probe) has the container's groups, as dockerd's getUser gives it", async () => {
    const started = await engine.docker([
      "run",
      "-d",
      "--group-add",
      "4321",
      "--group-add",
      "nogroup",
      engine.image,
      "sleep",
      "60",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    try {
      const groups = await engine.docker(["exec", id, "sh", "-c", "grep Groups /proc/self/status | cut -f2"]);
      expect(groups.code, groups.stderr).toBe(0);
      expect(groups.stdout.trim().split(/\s+/).map(Number).sort()).toEqual([0, 4321, 65534]);
    } finally {
      await engine.docker(["rm", "-f", id]);
    }
  });

  it("the primary group is among the supplementary ones (CVE-2023-25173): the process's, an exec's", async () => {
    // As dockerd's getUser (containerd's spec options alike): without it a process that sets its
    // supplementary groups aside loses its primary group, and a file mode 0707 of that group opens to it.
    const groups = "grep Groups /proc/self/status | cut -f2";
    const run = await engine.docker(["run", "--rm", "--user", "nobody", engine.image, "sh", "-c", groups]);
    expect(run.stdout.trim(), run.stderr).toBe("65534");
    const started = await engine.docker(["run", "-d", engine.image, "sleep", "60"]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    try {
      const exec = await engine.docker(["exec", id, "sh", "-c", groups]);
      expect(exec.stdout.trim(), exec.stderr).toBe("0");
      const asNobody = await engine.docker(["exec", "-u", "nobody", id, "sh", "-c", groups]);
      expect(asNobody.stdout.trim(), asNobody.stderr).toBe("65534");
      const asIds = await engine.docker(["exec", "-u", "1234:5678", id, "sh", "-c", groups]);
      expect(asIds.stdout.trim(), asIds.stderr).toBe("5678");
    } finally {
      await engine.docker(["rm", "-f", id]);
    }
  });

  it("--group-add NAME with the container's /etc/group a FIFO or a device: the start fails, the engine reads neither", async () => {
    // The container's own /etc/group replaced by what a container (root, CAP_MKNOD by default) can make
    // there: a FIFO, whose open would block the engine until something wrote to it, and /dev/zero's
    // device, which would never end. The first start reads the image's file; the next, the container's.
    for (const [kind, make] of [
      ["FIFO", "mkfifo /etc/group"],
      ["device", "mknod /etc/group c 1 5"],
    ] as const) {
      const created = await engine.docker([
        "create",
        "--group-add",
        "nogroup",
        engine.image,
        "sh",
        "-c",
        `rm /etc/group && ${make}`,
      ]);
      expect(created.code, created.stderr).toBe(0);
      const id = created.stdout.trim();
      const first = await engine.docker(["start", "-a", id]);
      expect(first.code, `${kind}: ${first.stderr}`).toBe(0);
      const again = await engine.docker(["start", "-a", id]);
      expect(again.code, kind).not.toBe(0);
      expect(again.stderr, kind).toContain("/etc/group in the container is not a regular file");
      // The failed start recorded as dockerd records one: why, and exit code 128 (it did not run).
      const state = JSON.parse((await engine.docker(["inspect", "-f", "{{json .State}}", id])).stdout) as {
        Status: string;
        ExitCode: number;
        Error: string;
      };
      expect(state, kind).toMatchObject({ Status: "exited", ExitCode: 128 });
      expect(state.Error, kind).toContain("/etc/group in the container is not a regular file");
      // Nothing left mounted: the snapshot was let go of when the start failed.
      expect(readFileSync("/proc/self/mountinfo", "utf8"), kind).not.toContain(`/mounts/${id}`);
      const removed = await engine.docker(["rm", id]);
      expect(removed.code, removed.stderr).toBe(0);
    }
  });

  it("--sysctl: namespaced ones set, others refused before anything is made", async () => {
    const set = await runIn(
      ["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1000"],
      "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    expect(set.stdout, set.stderr).toBe("1\n1000\n");
    const before = await engine.docker(["ps", "-aq"]);
    const refused = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { Sysctls: { "vm.swappiness": "1" } },
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/vm\.swappiness.*not namespaced/);
    const hostNet = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { NetworkMode: "host", Sysctls: { "net.ipv4.ip_forward": "1" } },
    });
    expect(hostNet.status).toBe(400);
    expect((await engine.docker(["ps", "-aq"])).stdout).toBe(before.stdout);
  });

  it("--pid host, --ipc host, --uts host", async () => {
    const marker = `/dev/shm/lcd-ipc-${process.pid}`;
    writeFileSync(marker, "shared\n");
    try {
      const result = await runIn(
        ["--pid", "host", "--ipc", "host", "--uts", "host"],
        `cat /proc/1/comm; cat ${marker}; hostname`,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(`${readFileSync("/proc/1/comm", "utf8")}shared\n${hostname()}\n`);
    } finally {
      rmSync(marker, { force: true });
    }
    const own = await runIn([], `cat /proc/1/comm; test -e ${marker} || echo no-marker`);
    expect(own.stdout).toBe("sh\nno-marker\n");
    // docker cp of a running one is refused: its /proc is the host's (a link to /proc/1/root would lead out).
    const running = await engine.docker(["run", "-d", "--pid", "host", engine.image, "sleep", "60"]);
    const id = running.stdout.trim();
    const copy = await engine.docker(["cp", `${id}:/etc/passwd`, "-"]);
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/in the host's PID namespace is not supported/);
    await engine.docker(["stop", "-t", "0", id]);
    const stopped = await engine.docker(["cp", `${id}:/etc/passwd`, "-"]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain("root:x:0:0");
    await engine.docker(["rm", "-f", id]);
    const conflict = await runIn(["--uts", "host", "--hostname", "other"], "true");
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toMatch(/Conflicting options: hostname and the UTS mode/);
  });

  it("--security-opt: no-new-privileges (docker's default is off), systempaths, and a bad one", async () => {
    const nnp = "grep NoNewPrivs /proc/self/status | cut -f2";
    expect((await runIn([], nnp)).stdout).toBe("0\n");
    expect((await runIn(["--security-opt", "no-new-privileges"], nnp)).stdout).toBe("1\n");
    expect((await runIn(["--security-opt", "no-new-privileges:true"], nnp)).stdout).toBe("1\n");
    // runc masks a file by binding /dev/null over it (this kernel has no /proc/kcore).
    const keys = "[ -c /proc/keys ] && echo masked || echo open";
    expect((await runIn([], keys)).stdout).toBe("masked\n");
    const unmasked = await runIn(["--security-opt", "systempaths=unconfined"], keys);
    expect(unmasked.stdout).toBe("open\n");
    // The docker CLI checks the form itself; the engine answers another client as dockerd does.
    const bad = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { SecurityOpt: ["bogus"] },
    });
    expect(bad).toMatchObject({ status: 400 });
    expect(bad.body).toMatch(/invalid --security-opt 1: \\"bogus\\"/);
  });

  it("memory swap, reservation, cpuset: applied, and dockerd's checks", async () => {
    const applied = await runIn(
      ["--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpuset-cpus", "0"],
      "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpuset/cpuset.cpus",
    );
    expect(applied.stdout, applied.stderr).toBe(`${32 * 1024 * 1024}\n0\n`);
    const swapBelow = await runIn(["--memory", "64m", "--memory-swap", "32m"], "true");
    expect(swapBelow.stderr).toMatch(/Minimum memoryswap limit should be larger than memory limit/);
    const reservationAbove = await runIn(["--memory", "64m", "--memory-reservation", "128m"], "true");
    expect(reservationAbove.stderr).toMatch(
      /Minimum memory limit can not be less than memory reservation limit/,
    );
    const running = await engine.docker([
      "run",
      "-d",
      "--memory",
      "64m",
      "--memory-swap",
      "96m",
      engine.image,
      "sleep",
      "60",
    ]);
    const id = running.stdout.trim();
    const above = await engine.docker(["update", "--memory", "128m", id]);
    expect(above.stderr).toMatch(/Memory limit should be smaller than already set memoryswap limit/);
    const both = await engine.docker(["update", "--memory", "128m", "--memory-swap", "256m", id]);
    expect(both.code, both.stderr).toBe(0);
    await engine.docker(["rm", "-f", id]);
    const weight = await runIn(["--blkio-weight", "5"], "true");
    expect(weight.stderr).toMatch(/Range of blkio weight is from 10 to 1000/);
  });

  it("seccomp: the distribution's default profile as dockerd's default, unconfined, privileged, a profile of the client's", async () => {
    const info = await engine.docker(["info", "--format", "{{json .SecurityOptions}}"]);
    expect(info.stdout).toMatch(/name=seccomp,profile=\/(etc|usr\/share)\/containers\/seccomp\.json/);
    // The default profile refuses swapoff whatever the capabilities: with CAP_SYS_ADMIN, unconfined it
    // gets as far as the missing file.
    const check = "grep Seccomp: /proc/self/status | cut -f2; busybox swapoff /nonexistent";
    const filtered = await runIn(["--cap-add", "SYS_ADMIN"], check);
    expect(filtered.stdout).toBe("2\n");
    expect(filtered.stderr).toMatch(/Operation not permitted/);
    const unconfined = await runIn(["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"], check);
    expect(unconfined.stdout).toBe("0\n");
    expect(unconfined.stderr).toMatch(/No such file or directory/);
    const privileged = await runIn(["--privileged"], check);
    expect(privileged.stdout).toBe("0\n");
    expect(privileged.stderr).toMatch(/No such file or directory/);
    const profile = join(tmpdir(), `lcd-seccomp-${process.pid}.json`);
    writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      }),
    );
    try {
      const denied = await runIn(["--security-opt", `seccomp=${profile}`], "mkdir /tmp/x && echo made");
      expect(denied.stdout).toBe("");
      expect(denied.stderr).toMatch(/Operation not permitted/);
    } finally {
      rmSync(profile, { force: true });
    }
    const broken = await engine.api("POST", "/containers/create", {
      Image: engine.image,
      Cmd: ["true"],
      HostConfig: { SecurityOpt: ["seccomp={not json"] },
    });
    expect(broken.status).toBe(400);
    expect(broken.body).toMatch(/seccomp: not JSON/);
  });
});
