// ctrd run --network/-p/--dns, ctrd port, ctrd network, ps PORTS, and nothing left after rm, rm -f and
// a SIGKILLed ctrd, on a private containerd with the real CNI plugins.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  fetchWhenUp,
  ipamReservations,
  mountsUnder,
  portsOfBridge,
  rulesFor,
  uniqueBridge,
  uniqueSubnet,
} from "../harness/network.js";
import { ctrd, startCtrd, useHarnessCtrd, waitForOutput } from "./helpers.js";

const fx = useHarnessCtrd("ctrd-net-");
const bridge = uniqueBridge();
const subnet = uniqueSubnet();
const userBridge = uniqueBridge();
const userSubnet = uniqueSubnet();
const userNet = `web-${process.pid}`;
/** The flags of every call: the harness's containerd, and a root of our own for network definitions. */
let g: string[];
const netState = () => join(fx.containerd.stateDir, "network");
// The helpers default ctrd's network to none; these tests use ctrd's real default, the bridge.
const env = { CTRD_NETWORK: "" };

const run = (args: string[]) =>
  ctrd(["run", ...g, ...fx.cgroup, "--rootfs", fx.containerd.rootfs, ...args], { env });

beforeAll(async () => {
  g = [...fx.global, "--root", join(fx.containerd.dir, "ctrd-root", "containerd")];
  const created = await ctrd(["network", "create", ...g, "--subnet", subnet, "--bridge", bridge, "bridge"]);
  expect(created.code, created.stderr).toBe(0);
});

/** After a failed test: its containers (and so their networks), so that the next test starts clean. */
async function removeContainers(): Promise<void> {
  const ps = await ctrd(["ps", "-a", "--json", ...g]);
  const ids = ps.code === 0 ? (JSON.parse(ps.stdout) as { id: string }[]).map((row) => row.id) : [];
  // One at a time: rm stops at its first failure.
  for (const id of ids) await ctrd(["rm", "-f", ...g, id]);
}

afterEach(async () => {
  if (g) await removeContainers();
});

afterAll(async () => {
  if (!g) return;
  await removeContainers();
  for (const name of [userNet, "bridge"]) {
    const removed = await ctrd(["network", "rm", ...g, name]);
    // Not there (the test removed it, or failed before creating it) is fine; anything else is a leak.
    if (removed.code !== 0 && !removed.stderr.includes("not found")) throw new Error(removed.stderr);
  }
});

function expectNothingLeft(forBridge = bridge, forSubnet = subnet, network = "bridge"): void {
  expect(portsOfBridge(forBridge)).toEqual([]);
  expect(rulesFor(forSubnet)).toEqual([]);
  expect(ipamReservations(netState(), network)).toEqual([]);
  expect(mountsUnder(netState())).toEqual([]);
  const attachments = join(netState(), "attachments", "ctrd");
  expect(existsSync(attachments) ? readdirSync(attachments) : []).toEqual([]);
}

const httpd = (content: string) => [
  "sh",
  "-c",
  `mkdir -p /tmp/$(hostname) && echo ${content} > /tmp/$(hostname)/index.html && exec busybox httpd -f -p 80 -h /tmp/$(hostname)`,
];

describe("ctrd run on the default bridge", { timeout: 240_000 }, () => {
  test("-p 127.0.0.1::80: fetched from the host, shown by port and ps, gone after rm -f", async () => {
    const started = await run(["-d", "--name", "web", "-p", "127.0.0.1::80", "--", ...httpd("hello-ctrd")]);
    expect(started, started.stderr).toMatchObject({ code: 0, stdout: "web\n" });
    const port = await ctrd(["port", ...g, "web"]);
    expect(port.stdout).toMatch(/^80\/tcp -> 127\.0\.0\.1:\d+\n$/);
    const hostPort = Number(port.stdout.trim().split(":").pop());
    expect(await fetchWhenUp(`http://127.0.0.1:${hostPort}/`)).toBe("hello-ctrd\n");
    expect((await ctrd(["port", ...g, "web", "80/tcp"])).stdout).toBe(port.stdout);
    expect(await ctrd(["port", ...g, "web", "81"])).toMatchObject({
      code: 125,
      stderr: expect.stringContaining("no public port 81/tcp published for web"),
    });
    const table = await ctrd(["ps", ...g]);
    expect(table.stdout).toMatch(new RegExp(`^web\\s+Up .*127\\.0\\.0\\.1:${hostPort}->80/tcp$`, "m"));
    expect(portsOfBridge(bridge)).toHaveLength(1);

    expect(await ctrd(["rm", "-f", ...g, "web"])).toMatchObject({ code: 0, stdout: "web\n" });
    expectNothingLeft();
  });

  test("run --rm leaves nothing; --dns replaces the nameservers; none has only lo", async () => {
    const dns = await run([
      "--rm",
      "--dns",
      "192.0.2.53",
      "--",
      "sh",
      "-c",
      "cat /etc/resolv.conf; busybox ip -o -4 addr",
    ]);
    expect(dns, dns.stderr).toMatchObject({ code: 0 });
    expect(dns.stdout).toMatch(/^nameserver 192\.0\.2\.53$/m);
    expect(dns.stdout).toContain(`inet ${subnet.split(".").slice(0, 3).join(".")}.`);
    expectNothingLeft();

    const none = await run(["--rm", "--network", "none", "--", "busybox", "ip", "-o", "link"]);
    expect(
      none.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(":")[1]?.trim()),
    ).toEqual(["lo"]);
  });

  test("--add-host NAME:IP and NAME:host-gateway (the default network's gateway, as dockerd's host-gateway-ip), on every network mode", async () => {
    const gateway = `${subnet.split(".").slice(0, 3).join(".")}.1`;
    const hosts = ["--add-host", "gw:host-gateway", "--add-host", "db:192.0.2.7", "--", "cat", "/etc/hosts"];
    for (const network of ["bridge", "none", "host"]) {
      const ran = await run(["--rm", "--network", network, ...hosts]);
      expect(ran, `${network}: ${ran.stderr}`).toMatchObject({ code: 0 });
      expect(ran.stdout).toMatch(new RegExp(`^${gateway.replace(/\./g, "\\.")}\tgw$`, "m"));
      expect(ran.stdout).toMatch(/^192\.0\.2\.7\tdb$/m);
      expect(ran.stdout).not.toContain("host-gateway");
      expectNothingLeft();
    }
    const bad = await run(["--rm", "--add-host", "db", "--", "true"]);
    expect(bad).toMatchObject({
      code: 125,
      stderr: 'ctrd: invalid IP address in add-host: "db" (invalid_argument)\n',
    });
  });

  test("a user network: containers reach each other by name", async () => {
    const created = await ctrd([
      "network",
      "create",
      ...g,
      "--subnet",
      userSubnet,
      "--bridge",
      userBridge,
      userNet,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const ls = await ctrd(["network", "ls", ...g]);
    expect(ls.stdout).toMatch(
      new RegExp(`${userNet}\\s+bridge\\s+${userBridge}\\s+${userSubnet.replace(/\./g, "\\.")}`),
    );
    expect(await run(["-d", "--network", userNet, "--name", "srv", "--", ...httpd("by-name")])).toMatchObject(
      { code: 0 },
    );
    const client = await run([
      "--rm",
      "--network",
      userNet,
      "--name",
      "cli",
      "--",
      "sh",
      "-c",
      "for i in $(seq 300); do busybox wget -q -O - http://srv/ && exit 0; sleep 0.1; done; exit 1",
    ]);
    expect(client, client.stderr).toMatchObject({ code: 0, stdout: "by-name\n" });
    const inspect = JSON.parse((await ctrd(["network", "inspect", ...g, userNet])).stdout) as {
      containers: { containerId: string }[];
    }[];
    expect(inspect[0]?.containers.map((c) => c.containerId)).toEqual(["srv"]);
    expect(await ctrd(["network", "rm", ...g, userNet])).toMatchObject({
      code: 125,
      stderr: expect.stringContaining(`network ${userNet} is in use by 1 container(s): ctrd/srv`),
    });
    expect(await ctrd(["rm", "-f", ...g, "srv"])).toMatchObject({ code: 0 });
    expectNothingLeft(userBridge, userSubnet, userNet);
    expect(await ctrd(["network", "rm", ...g, userNet])).toMatchObject({ code: 0, stdout: `${userNet}\n` });
    expect(existsSync(`/sys/class/net/${userBridge}`)).toBe(false);
    expect(rulesFor(userSubnet, [], true)).toEqual([]);
  });
});

describe("several ctrd processes at once", { timeout: 240_000 }, () => {
  test("8 concurrent run -d -p: distinct addresses and host ports, each fetched; rm leaves nothing", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `par${i}`);
    const started = await Promise.all(
      names.map((name) => run(["-d", "--name", name, "-p", "127.0.0.1::80", "--", ...httpd(name)])),
    );
    for (const result of started) expect(result.code, result.stderr).toBe(0);
    const ports = await Promise.all(names.map((name) => ctrd(["port", ...g, name])));
    const hostPorts = ports.map((p) => Number(p.stdout.trim().split(":").pop()));
    expect(new Set(hostPorts).size).toBe(8);
    for (const [i, name] of names.entries()) {
      expect(await fetchWhenUp(`http://127.0.0.1:${hostPorts[i]}/`)).toBe(`${name}\n`);
    }
    const inspect = JSON.parse((await ctrd(["network", "inspect", ...g, "bridge"])).stdout) as {
      containers: { address: string }[];
    }[];
    expect(new Set(inspect[0]?.containers.map((c) => c.address)).size).toBe(8);
    const removed = await Promise.all(names.map((name) => ctrd(["rm", "-f", ...g, name])));
    for (const result of removed) expect(result.code, result.stderr).toBe(0);
    expectNothingLeft();
  });
});

describe("bad input", { timeout: 240_000 }, () => {
  test("malformed -p, unknown network, overlapping subnet, taken port: one line each, nothing set up", async () => {
    expect(await run(["--rm", "-p", "80:80:80:80", "--", "true"])).toMatchObject({
      code: 125,
      stderr: expect.stringContaining('invalid -p "80:80:80:80"'),
    });
    expect(await run(["--rm", "--network", "nosuch", "--", "true"])).toMatchObject({
      code: 125,
      stderr: expect.stringContaining("network nosuch not found"),
    });
    expect(await ctrd(["network", "create", ...g, "--subnet", subnet, "other"])).toMatchObject({
      code: 125,
      stderr: expect.stringContaining(`subnet ${subnet} overlaps network bridge`),
    });
    const first = await run(["-d", "--name", "holder", "-p", "127.0.0.1::80", "--", "sleep", "600"]);
    expect(first.code, first.stderr).toBe(0);
    const hostPort = (await ctrd(["port", ...g, "holder"])).stdout.trim().split(":").pop();
    expect(
      await run(["--rm", "--name", "second", "-p", `127.0.0.1:${hostPort}:80`, "--", "true"]),
    ).toMatchObject({
      code: 125,
      stderr: expect.stringContaining(
        `host port 127.0.0.1:${hostPort}/tcp is already published by ctrd/holder`,
      ),
    });
    expect(await ctrd(["rm", "-f", ...g, "holder"])).toMatchObject({ code: 0 });
    expectNothingLeft();
  });

  test("--name of a container without a network: already_exists, and the network set up for it is undone", async () => {
    const first = await run(["-d", "--name", "taken", "--network", "none", "--", "sleep", "600"]);
    expect(first.code, first.stderr).toBe(0);
    const second = await run(["--rm", "--name", "taken", "-p", "127.0.0.1::80", "--", "true"]);
    expect(second).toMatchObject({ code: 125, stderr: expect.stringContaining("(already_exists)") });
    // Not kept for the container that has the name: it is another one's.
    expectNothingLeft();
    expect(await ctrd(["rm", "-f", ...g, "taken"])).toMatchObject({ code: 0 });
  });
});

describe("a SIGKILLed ctrd", { timeout: 240_000 }, () => {
  test("killed while its container runs: rm -f afterwards removes everything", async () => {
    const proc = startCtrd(
      [
        "run",
        ...g,
        ...fx.cgroup,
        "--rootfs",
        fx.containerd.rootfs,
        "--name",
        "killed",
        "-p",
        "127.0.0.1::80",
        "--",
        "sh",
        "-c",
        "echo up; sleep 600",
      ],
      { env },
    );
    await waitForOutput(proc, (out) => out.includes("up"), 30_000);
    proc.child.kill("SIGKILL");
    await proc.result;
    expect(portsOfBridge(bridge)).toHaveLength(1);
    expect(await ctrd(["rm", "-f", ...g, "killed"])).toMatchObject({ code: 0 });
    expectNothingLeft();
  });

  test("killed while setting up: the next ctrd's GC removes what it left", async () => {
    const attachments = join(netState(), "attachments", "ctrd");
    const proc = startCtrd(
      [
        "run",
        ...g,
        ...fx.cgroup,
        "--rootfs",
        fx.containerd.rootfs,
        "--name",
        "early",
        "-p",
        "127.0.0.1::80",
        "--",
        "sleep",
        "600",
      ],
      { env },
    );
    // SIGKILL as soon as its attachment record exists: mid-setup, or just after (both must clean up).
    for (
      let i = 0;
      i < 600 && !existsSync(join(attachments, "early.json")) && proc.child.exitCode === null;
      i++
    ) {
      await sleep(5);
    }
    proc.child.kill("SIGKILL");
    await proc.result;
    // The next ctrd: rm -f removes the container if it got that far; its GC removes the rest either way.
    await ctrd(["rm", "-f", ...g, "early"]);
    expectNothingLeft();
  });
});
