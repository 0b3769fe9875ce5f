import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fetchWhenUp, iptablesSave } from "../harness/network.js";
import { freePort } from "../harness/registry.js";
import { useEngine, waitFor } from "./harness.js";

// dockerd holds a container's published ports only while it runs (its sandbox's endpoints are joined at
// start and left at exit): a stopped container's port is another's to take, and its own start then fails.
const engine = useEngine("lcd-engine-ports-");

/** busybox httpd on port 80 serving `text`, in the foreground. */
function serving(text: string): string[] {
  return ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];
}

/** The iptables rules that forward host port `port` (portmap's DNAT and its chain jumps). */
function forwardingRules(port: number): string[] {
  return iptablesSave()
    .split("\n")
    .filter((line) => new RegExp(`--dport ${port}( |$)`).test(line));
}

/** Whether the kernel's reserved ports (`8080,32768-32770`) cover `port`. */
function reserved(port: number): boolean {
  const list = readFileSync("/proc/sys/net/ipv4/ip_local_reserved_ports", "utf8").trim();
  return list
    .split(",")
    .filter(Boolean)
    .some((range) => {
      const [low = "0", high = low] = range.split("-");
      return port >= Number(low) && port <= Number(high);
    });
}

/** Nothing of a published `port` left: no forwarding rule, no kernel reservation. */
function expectReleased(port: number): void {
  expect(forwardingRules(port)).toEqual([]);
  expect(reserved(port)).toBe(false);
}

async function page(port: number): Promise<string> {
  return fetchWhenUp(`http://127.0.0.1:${port}/`);
}

describe("published ports follow the container's runs (ctrd serve, docker CLI)", () => {
  it("frees a stopped container's port for another; its start then fails as dockerd's, and works once it is free", async () => {
    const port = await freePort();
    const publish = ["-p", `127.0.0.1:${port}:80`];
    const first = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-a",
      ...publish,
      engine.image,
      ...serving("a"),
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(await page(port)).toBe("a\n");
    expect(reserved(port)).toBe(true);
    // As dockerd: a second container may be created with the same port; only its start fails.
    const created = await engine.docker([
      "create",
      "--name",
      "web-c",
      ...publish,
      engine.image,
      ...serving("c"),
    ]);
    expect(created.code, created.stderr).toBe(0);
    const clash = await engine.docker(["start", "web-c"]);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain(`Bind for 127.0.0.1:${port} failed: port is already allocated`);
    expect((await engine.docker(["rm", "web-c"])).code).toBe(0);

    expect((await engine.docker(["stop", "-t", "1", "web-a"])).code).toBe(0);
    expect(await engine.docker(["port", "web-a"])).toMatchObject({ code: 0, stdout: "" });
    expectReleased(port);

    const second = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-b",
      ...publish,
      engine.image,
      ...serving("b"),
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(await page(port)).toBe("b\n");
    const taken = await engine.docker(["start", "web-a"]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain(`driver failed programming external connectivity on endpoint web-a (`);
    expect(taken.stderr).toContain(`Bind for 127.0.0.1:${port} failed: port is already allocated`);
    // The failed start left b's forwarding as it was.
    expect(await page(port)).toBe("b\n");

    expect((await engine.docker(["rm", "-f", "web-b"])).code).toBe(0);
    expect(forwardingRules(port)).toEqual([]);
    // A host process holding it meanwhile: dockerd's userland proxy's words.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    try {
      const held = await engine.docker(["start", "web-a"]);
      expect(held.code).not.toBe(0);
      expect(held.stderr).toContain(
        `Error starting userland proxy: listen tcp4 127.0.0.1:${port}: bind: address already in use`,
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    expectReleased(port);
    const again = await engine.docker(["start", "web-a"]);
    expect(again.code, again.stderr).toBe(0);
    expect(await page(port)).toBe("a\n");
    expect((await engine.docker(["port", "web-a"])).stdout).toBe(`80/tcp -> 127.0.0.1:${port}\n`);

    expect((await engine.docker(["rm", "-f", "web-a"])).code).toBe(0);
    expectReleased(port);
  });

  it("gives a restart policy's next run its port again, and frees it when the container is done", async () => {
    const port = await freePort();
    const control = mkdtempSync(join(tmpdir(), "lcd-ports-ctl-"));
    try {
      // Each run serves its number until the test allows it to fail (`stopN`), then exits 3.
      const script = [
        "echo x >> /ctl/runs",
        "n=$(wc -l < /ctl/runs)",
        "mkdir -p /www && echo run$n > /www/index.html",
        "httpd -p 80 -h /www",
        "until [ -e /ctl/stop$n ]; do sleep 0.1; done",
        "exit 3",
      ].join("; ");
      const started = await engine.docker([
        "run",
        "-d",
        "--name",
        "web-r",
        "--restart",
        "on-failure:1",
        "-v",
        `${control}:/ctl`,
        "-p",
        `127.0.0.1:${port}:80`,
        engine.image,
        "sh",
        "-c",
        script,
      ]);
      expect(started.code, started.stderr).toBe(0);
      expect(await page(port)).toBe("run1\n");
      writeFileSync(join(control, "stop1"), "");
      await waitFor(
        async () => (await page(port).catch(() => "")) === "run2\n",
        "the restarted container serving on its port",
      );
      expect((await engine.docker(["port", "web-r"])).stdout).toBe(`80/tcp -> 127.0.0.1:${port}\n`);
      writeFileSync(join(control, "stop2"), "");
      await waitFor(async () => {
        const state = await engine.docker(["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "web-r"]);
        return state.stdout.trim() === "exited 1";
      }, "the container exiting for good");
      expect(await engine.docker(["port", "web-r"])).toMatchObject({ code: 0, stdout: "" });
      expectReleased(port);
      expect((await engine.docker(["rm", "web-r"])).code).toBe(0);
    } finally {
      await engine.docker(["rm", "-f", "web-r"]);
      rmSync(control, { recursive: true, force: true });
    }
  });
  it("frees the port of a container that died while ctrd serve was down, when serve starts again", async () => {
    const port = await freePort();
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-d",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      ...serving("d"),
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect(await page(port)).toBe("d\n");
    const pid = Number((await engine.docker(["inspect", "-f", "{{.State.Pid}}", "web-d"])).stdout.trim());
    await engine.stopServe("SIGKILL");
    try {
      // The container's own process (this test started it), killed while nothing follows it.
      process.kill(pid, "SIGKILL");
      await waitFor(async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      }, "the container's process ending");
    } finally {
      await engine.startServe();
    }
    await waitFor(
      async () =>
        (await engine.docker(["inspect", "-f", "{{.State.Status}}", "web-d"])).stdout.trim() === "exited",
      "the exit found at start-up",
    );
    expect(await engine.docker(["port", "web-d"])).toMatchObject({ code: 0, stdout: "" });
    expectReleased(port);
    const other = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-e",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      ...serving("e"),
    ]);
    expect(other.code, other.stderr).toBe(0);
    expect(await page(port)).toBe("e\n");
    expect((await engine.docker(["rm", "-f", "web-d", "web-e"])).code).toBe(0);
    expectReleased(port);
  });
  it("keeps a running container's port held when ctrd serve restarts and adopts it; docker restart republishes it once", async () => {
    const port = await freePort();
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-f",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      ...serving("f"),
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect(await page(port)).toBe("f\n");
    const rules = forwardingRules(port);
    expect(rules.length).toBeGreaterThan(0);
    await engine.stopServe("SIGKILL");
    await engine.startServe();
    expect((await engine.docker(["inspect", "-f", "{{.State.Status}}", "web-f"])).stdout.trim()).toBe(
      "running",
    );
    expect(forwardingRules(port)).toEqual(rules);
    expect(reserved(port)).toBe(true);
    expect((await engine.docker(["port", "web-f"])).stdout).toContain(`127.0.0.1:${port}`);
    const other = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-g",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      ...serving("g"),
    ]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("port is already allocated");
    expect(await page(port)).toBe("f\n");
    const restarted = await engine.docker(["restart", "web-f"]);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(await page(port)).toBe("f\n");
    expect(forwardingRules(port).length).toBe(rules.length);
    expect((await engine.docker(["rm", "-f", "web-f", "web-g"])).code).toBe(0);
    expectReleased(port);
  });

  it("gives back the port of a start whose task cannot be made, and re-picks -P ports at each start", async () => {
    const port = await freePort();
    const failed = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-h",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      "/no/such/binary",
    ]);
    expect(failed.code).not.toBe(0);
    expectReleased(port);
    const all = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-i",
      "-P",
      "--expose",
      "80",
      engine.image,
      ...serving("i"),
    ]);
    expect(all.code, all.stderr).toBe(0);
    const hostPort = async (): Promise<number> =>
      Number(
        (await engine.docker(["port", "web-i", "80/tcp"])).stdout.trim().split("\n")[0]?.split(":").pop(),
      );
    const before = await hostPort();
    expect(before).toBeGreaterThan(0);
    expect(await page(before)).toBe("i\n");
    expect((await engine.docker(["stop", "-t", "1", "web-i"])).code).toBe(0);
    expectReleased(before);
    expect((await engine.docker(["start", "web-i"])).code).toBe(0);
    const after = await hostPort();
    expect(after).toBeGreaterThan(0);
    expect(await page(after)).toBe("i\n");
    expect((await engine.docker(["rm", "-f", "web-h", "web-i"])).code).toBe(0);
    expectReleased(after);
    expectReleased(port);
  });
  // dockerd gives a container's port bindings to the first endpoint of a sandbox that has none
  // (buildCreateEndpointOptions: not internal, no port map yet): connected again, they are published again.
  it("publishes the ports again on a reconnect of the publishing network, running or stopped, and leaves no rule behind; two starts at once publish once", async () => {
    const port = await freePort();
    const started = await engine.docker([
      "run",
      "-d",
      "--name",
      "web-j",
      "-p",
      `127.0.0.1:${port}:80`,
      engine.image,
      ...serving("j"),
    ]);
    expect(started.code, started.stderr).toBe(0);
    const rules = forwardingRules(port);
    expect((await engine.docker(["stop", "-t", "1", "web-j"])).code).toBe(0);
    const both = await Promise.all([engine.docker(["start", "web-j"]), engine.docker(["start", "web-j"])]);
    for (const result of both) expect(result.code, result.stderr).toBe(0);
    expect(await page(port)).toBe("j\n");
    expect(forwardingRules(port)).toEqual(rules);
    expect((await engine.docker(["network", "disconnect", "bridge", "web-j"])).code).toBe(0);
    expectReleased(port);
    expect((await engine.docker(["network", "connect", "bridge", "web-j"])).code).toBe(0);
    expect(await page(port)).toBe("j\n");
    expect((await engine.docker(["port", "web-j"])).stdout).toContain(`127.0.0.1:${port}`);
    expect((await engine.docker(["stop", "-t", "1", "web-j"])).code).toBe(0);
    expectReleased(port);
    expect((await engine.docker(["start", "web-j"])).code).toBe(0);
    expect(await page(port)).toBe("j\n");
    expect((await engine.docker(["stop", "-t", "1", "web-j"])).code).toBe(0);
    expect((await engine.docker(["network", "disconnect", "bridge", "web-j"])).code).toBe(0);
    expect((await engine.docker(["network", "connect", "bridge", "web-j"])).code).toBe(0);
    expect((await engine.docker(["start", "web-j"])).code).toBe(0);
    expect(await page(port)).toBe("j\n");
    expect(forwardingRules(port).length).toBe(rules.length);
    expect((await engine.docker(["rm", "-f", "web-j"])).code).toBe(0);
    expectReleased(port);
  });
});
