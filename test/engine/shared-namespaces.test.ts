import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mountsUnder } from "../harness/network.js";
import { useEngine } from "./harness.js";

// `container:NAME` modes through `ctrd serve` with the docker CLI: a container joins another's network,
// PID or IPC namespace at start, as dockerd's initializeNetworking and WithNamespaces do.
const engine = useEngine("lcd-engine-sharedns-");

async function docker(args: string[]): Promise<string> {
  const result = await engine.docker(args);
  if (result.code !== 0)
    throw new Error(`docker ${args.join(" ")}: exit ${result.code}: ${result.stdout}${result.stderr}`);
  return result.stdout.trim();
}

/** The engine's network records and netns mounts of this engine's containers: none once they are gone. */
function expectNoNetworkState(): void {
  const stateDir = join(engine.containerd.stateDir, "network");
  const records = join(stateDir, "attachments", engine.namespace);
  expect(existsSync(records) ? readdirSync(records) : []).toEqual([]);
  expect(mountsUnder(stateDir)).toEqual([]);
}

describe("container:NAME namespace modes", () => {
  it("--network container:web: web's server on 127.0.0.1, its hostname and hosts file, no network of its own", {
    timeout: 180_000,
  }, async () => {
    const web = `web${Date.now().toString(36)}`;
    const webId = await docker([
      "run",
      "-d",
      "--name",
      web,
      "--hostname",
      "webhost",
      "--add-host",
      "db.example:10.99.0.7",
      engine.image,
      "sh",
      "-c",
      "mkdir -p /w && echo from-web > /w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /w",
    ]);
    const sidecar = await engine.docker([
      "run",
      "--rm",
      "--network",
      `container:${web}`,
      engine.image,
      "sh",
      "-c",
      'for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done; echo "host=$(hostname) env=$HOSTNAME"; cat /etc/hosts',
    ]);
    expect(sidecar.code, sidecar.stderr).toBe(0);
    expect(sidecar.stdout).toContain("from-web");
    expect(sidecar.stdout).toContain("host=webhost env=webhost");
    expect(sidecar.stdout).toMatch(/10\.99\.0\.7\s+db\.example/);
    // The same interfaces: web's eth0 is the sidecar's.
    const links = (name: string[]) =>
      docker(["run", "--rm", ...name, engine.image, "cat", "/sys/class/net/eth0/address"]);
    const webMac = await docker(["exec", web, "cat", "/sys/class/net/eth0/address"]);
    expect(await links(["--network", `container:${web}`])).toBe(webMac);

    // docker inspect and ps: the mode as given, no network or address of its own.
    const joined = await docker([
      "create",
      "--name",
      `${web}-j`,
      "--network",
      `container:${web}`,
      engine.image,
      "sleep",
      "60",
    ]);
    await docker(["start", joined]);
    const [view] = JSON.parse(await docker(["inspect", joined])) as {
      HostConfig: { NetworkMode: string };
      NetworkSettings: { Networks: Record<string, unknown>; IPAddress: string };
      Config: { Hostname: string };
      HostsPath: string;
      ResolvConfPath: string;
    }[];
    // As dockerd: named by id, so that a rename of web keeps the sharing.
    expect(view?.HostConfig.NetworkMode).toBe(`container:${webId}`);
    expect(view?.NetworkSettings.Networks).toEqual({});
    expect(view?.NetworkSettings.IPAddress).toBe("");
    expect(view?.Config.Hostname).toBe("webhost");
    const [webView] = JSON.parse(await docker(["inspect", web])) as {
      HostsPath: string;
      ResolvConfPath: string;
    }[];
    expect(view?.HostsPath).toBe(webView?.HostsPath);
    expect(view?.ResolvConfPath).toBe(webView?.ResolvConfPath);
    expect(await docker(["exec", joined, "sh", "-c", "echo $HOSTNAME"])).toBe("webhost");
    // Restarted, it joins web's namespace again (its task's pid is looked up at each start).
    await docker(["restart", "-t", "0", joined]);
    expect(await docker(["exec", joined, "cat", "/sys/class/net/eth0/address"])).toBe(webMac);
    // web restarted goes back into its own (kept) namespace: the joined container, still running, reaches it.
    await docker(["restart", "-t", "0", web]);
    const again = await docker([
      "exec",
      joined,
      "sh",
      "-c",
      "for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done",
    ]);
    expect(again).toBe("from-web");
    await docker(["rm", "-f", joined, web]);
    expectNoNetworkState();
  });

  it("--network container: refused with -p, --hostname, --dns, --add-host, or when the other is not running", {
    timeout: 120_000,
  }, async () => {
    const idle = `idle${Date.now().toString(36)}`;
    const idleId = await docker(["create", "--name", idle, engine.image, "sleep", "60"]);
    const refusals: [string[], string][] = [
      [
        ["-p", "127.0.0.1:8099:80"],
        "conflicting options: port publishing and the container type network mode",
      ],
      [["--hostname", "other"], "conflicting options: hostname and the network mode"],
      [["--dns", "10.99.0.53"], "conflicting options: dns and the network mode"],
      [
        ["--add-host", "a.example:10.99.0.8"],
        "conflicting options: custom host-to-IP mapping and the network mode",
      ],
    ];
    for (const [flags, message] of refusals) {
      const result = await engine.docker([
        "create",
        "--network",
        `container:${idle}`,
        ...flags,
        engine.image,
        "true",
      ]);
      expect(result.code, flags.join(" ")).not.toBe(0);
      expect(result.stderr).toContain(message);
    }
    const notRunning = await engine.docker([
      "run",
      "--rm",
      "--network",
      `container:${idle}`,
      engine.image,
      "true",
    ]);
    expect(notRunning.code).not.toBe(0);
    expect(notRunning.stderr).toContain(
      `cannot join network namespace of a non running container: container ${idle} is created`,
    );
    const pid = await engine.docker(["run", "--rm", "--pid", `container:${idle}`, engine.image, "true"]);
    expect(pid.code).not.toBe(0);
    expect(pid.stderr).toContain(`failed to join PID namespace: container ${idleId} is not running`);
    await docker(["rm", "-f", idle]);
    expect(await docker(["ps", "-aq"])).toBe("");
    expectNoNetworkState();
  });

  it("--pid container:X sees X's processes", { timeout: 120_000 }, async () => {
    const target = `pidx${Date.now().toString(36)}`;
    await docker(["run", "-d", "--name", target, engine.image, "sleep", "4242"]);
    const ps = await docker(["run", "--rm", "--pid", `container:${target}`, engine.image, "ps"]);
    expect(ps).toContain("sleep 4242");
    const own = await docker(["run", "--rm", engine.image, "ps"]);
    expect(own).not.toContain("sleep 4242");
    await docker(["rm", "-f", target]);
  });

  it("a stopped joiner's containerd spec keeps no /proc/PID/ns path of the run that ended; started again it joins anew", {
    timeout: 120_000,
  }, async () => {
    const donor = `nsd${Date.now().toString(36)}`;
    await docker(["run", "-d", "--name", donor, "--ipc", "shareable", engine.image, "sleep", "4242"]);
    const joiner = await docker([
      "run",
      "-d",
      "--network",
      `container:${donor}`,
      "--pid",
      `container:${donor}`,
      "--ipc",
      `container:${donor}`,
      engine.image,
      "sleep",
      "4243",
    ]);
    /** The namespaces of the joiner's spec in containerd (what a task made from it gets), as ctr shows it. */
    const namespaces = (): { type: string; path?: string }[] => {
      const info = JSON.parse(
        execFileSync(
          "ctr",
          ["-a", engine.containerd.address, "-n", engine.namespace, "containers", "info", joiner],
          {
            encoding: "utf8",
          },
        ),
      ) as { Spec: { linux: { namespaces: { type: string; path?: string }[] } } };
      return info.Spec.linux.namespaces;
    };
    const joinedPaths = () =>
      namespaces()
        .filter((namespace) => namespace.path !== undefined)
        .map((namespace) => namespace.type)
        .sort();
    expect(joinedPaths()).toEqual(["ipc", "network", "pid"]);
    await docker(["stop", "-t", "0", joiner]);
    expect(namespaces().filter((namespace) => namespace.path !== undefined)).toEqual([]);
    // The donor restarted (a new process, a new pid): the joiner started again joins it where it is now.
    await docker(["restart", "-t", "0", donor]);
    await docker(["start", joiner]);
    expect(joinedPaths()).toEqual(["ipc", "network", "pid"]);
    const namespacesOf = (id: string) =>
      docker(["exec", id, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/net"]);
    expect(await namespacesOf(joiner)).toBe(await namespacesOf(donor));
    await docker(["rm", "-f", joiner, donor]);
  });

  it("--ipc container:X shares X's IPC namespace and /dev/shm; X must be shareable", {
    timeout: 120_000,
  }, async () => {
    const target = `ipcx${Date.now().toString(36)}`;
    await docker(["run", "-d", "--name", target, "--ipc", "shareable", engine.image, "sleep", "4242"]);
    await docker(["exec", target, "sh", "-c", "echo from-x > /dev/shm/marker"]);
    const joined = await docker([
      "run",
      "--rm",
      "--ipc",
      `container:${target}`,
      engine.image,
      "sh",
      "-c",
      "cat /dev/shm/marker && echo from-joiner > /dev/shm/back && readlink /proc/self/ns/ipc",
    ]);
    const [marker, namespace] = joined.split("\n");
    expect(marker).toBe("from-x");
    expect(namespace).toBe(await docker(["exec", target, "sh", "-c", "readlink /proc/self/ns/ipc"]));
    expect(await docker(["exec", target, "cat", "/dev/shm/back"])).toBe("from-joiner");
    const [view] = JSON.parse(await docker(["inspect", target])) as { HostConfig: { IpcMode: string } }[];
    expect(view?.HostConfig.IpcMode).toBe("shareable");

    const privateIpc = `${target}-p`;
    const privateId = await docker(["run", "-d", "--name", privateIpc, engine.image, "sleep", "4242"]);
    const refused = await engine.docker([
      "run",
      "--rm",
      "--ipc",
      `container:${privateIpc}`,
      engine.image,
      "true",
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `failed to join IPC namespace: container ${privateId}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`,
    );
    await docker(["rm", "-f", target, privateIpc]);
    // The shareable container's /dev/shm tmpfs on the host went with it.
    expect(mountsUnder(join(engine.containerd.dir, "engine"))).toEqual([]);
  });

  it("a shareable container adopted after ctrd serve restarts: joined again, its /dev/shm unmounted when it stops", {
    timeout: 120_000,
  }, async () => {
    const target = `ipcr${Date.now().toString(36)}`;
    await docker(["run", "-d", "--name", target, "--ipc", "shareable", engine.image, "sleep", "4242"]);
    await docker(["exec", target, "sh", "-c", "echo kept > /dev/shm/marker"]);
    await engine.restartServe();
    expect(
      await docker(["run", "--rm", "--ipc", `container:${target}`, engine.image, "cat", "/dev/shm/marker"]),
    ).toBe("kept");
    const shm = mountsUnder(join(engine.containerd.dir, "engine"));
    expect(shm).toHaveLength(1);
    await docker(["stop", "-t", "0", target]);
    expect(mountsUnder(join(engine.containerd.dir, "engine"))).toEqual([]);
    // Started again: a fresh /dev/shm (dockerd mounts one at each start).
    await docker(["start", target]);
    expect(await docker(["exec", target, "sh", "-c", "ls /dev/shm"])).toBe("");
    await docker(["rm", "-f", target]);
    expect(mountsUnder(join(engine.containerd.dir, "engine"))).toEqual([]);
  });
});
