import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { NetworkManager } from "../../src/network/manager.js";
import {
  fetchWhenUp,
  ipamReservations,
  mountsUnder,
  portsOfBridge,
  rulesFor,
  uniqueSubnet,
} from "../harness/network.js";
import { useEngine } from "./harness.js";

// A container on more than one network through `ctrd serve`: docker network connect and disconnect of
// created and running containers (docker CLI), several EndpointsConfig at create (dockerode, API 1.44).
const engine = useEngine("lcd-engine-networks-");

const stateDir = (): string => join(engine.containerd.stateDir, "network");

const httpd = (content: string): string[] => [
  "sh",
  "-c",
  `mkdir /w && echo ${content} > /w/index.html && exec httpd -f -p 80 -h /w`,
];

async function docker(args: string[]): Promise<string> {
  const result = await engine.docker(args);
  if (result.code !== 0)
    throw new Error(`docker ${args.join(" ")}: exit ${result.code}: ${result.stdout}${result.stderr}`);
  return result.stdout.trim();
}

/** `docker network inspect`'s subnet and bridge device. */
async function networkOf(name: string): Promise<{ subnet: string; bridge: string; gateway: string }> {
  const [network] = JSON.parse(await docker(["network", "inspect", name])) as {
    IPAM: { Config: { Subnet: string; Gateway: string }[] };
    Options: Record<string, string>;
  }[];
  return {
    subnet: network?.IPAM.Config[0]?.Subnet ?? "",
    gateway: network?.IPAM.Config[0]?.Gateway ?? "",
    bridge: network?.Options["com.docker.network.bridge.name"] ?? "",
  };
}

/** Nothing of the engine's containers left on the network: veths, rules, addresses, records, netns. */
function expectNothingLeft(network: string, details: { subnet: string; bridge: string }): void {
  expect(portsOfBridge(details.bridge)).toEqual([]);
  expect(rulesFor(details.subnet)).toEqual([]);
  expect(ipamReservations(stateDir(), network)).toEqual([]);
  const records = join(stateDir(), "attachments", engine.namespace);
  expect(existsSync(records) ? readdirSync(records) : []).toEqual([]);
  expect(mountsUnder(stateDir())).toEqual([]);
  // The published ports this state dir added to the kernel's reserved list: none once nothing publishes.
  const reserved = join(stateDir(), "reserved-ports.json");
  expect(existsSync(reserved) ? JSON.parse(readFileSync(reserved, "utf8")) : []).toEqual([]);
}

describe("docker network connect and disconnect", () => {
  // Many docker commands and a restart of ctrd serve: more than the default minute on a loaded machine.
  it("connects a running container to a second network, reached there by name; disconnect takes it away", {
    timeout: 240_000,
  }, async () => {
    const name = `mn${Date.now().toString(36)}`;
    const [a, b] = [`${name}-a`, `${name}-b`];
    await docker(["network", "create", a]);
    await docker(["network", "create", b]);
    const [netA, netB] = [await networkOf(a), await networkOf(b)];
    await docker(["run", "-d", "--name", `${name}-sa`, "--network", a, engine.image, ...httpd("from-a")]);
    await docker(["run", "-d", "--name", `${name}-sb`, "--network", b, engine.image, ...httpd("from-b")]);
    const client = `${name}-c`;
    await docker([
      "run",
      "-d",
      "--name",
      client,
      "--network",
      a,
      "-p",
      "127.0.0.1::80",
      engine.image,
      ...httpd("from-c"),
    ]);
    const hostPort = (await docker(["port", client, "80/tcp"])).split(":").at(-1);
    const events = engine.spawnDocker([
      "events",
      "--filter",
      "type=network",
      "--format",
      "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}",
    ]);
    let seen = "";
    events.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      seen += chunk;
    });
    try {
      const connected = await engine.docker(["network", "connect", "--alias", `${name}-alias`, b, client]);
      expect(connected.code, connected.stderr).toBe(0);
      const id = await docker(["inspect", "-f", "{{.Id}}", client]);
      const settings = JSON.parse(
        await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", client]),
      ) as Record<
        string,
        { IPAddress: string; Gateway: string; Aliases: string[]; MacAddress: string; EndpointID: string }
      >;
      expect(Object.keys(settings)).toEqual([a, b]);
      expect(settings[b]?.IPAddress.startsWith(netB.subnet.split(".").slice(0, 3).join("."))).toBe(true);
      expect(settings[b]).toMatchObject({
        Gateway: netB.gateway,
        Aliases: [id.slice(0, 12), `${name}-alias`],
      });
      expect(settings[b]?.MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(settings[b]?.EndpointID).not.toBe(settings[a]?.EndpointID);
      const [inspectedB] = JSON.parse(await docker(["network", "inspect", b])) as {
        Containers: Record<string, { Name: string; IPv4Address: string }>;
      }[];
      expect(inspectedB?.Containers[id]).toMatchObject({
        Name: client,
        IPv4Address: `${settings[b]?.IPAddress}/24`,
      });

      // The running container reaches both networks' containers by name, and b's reach it by its alias.
      const both = await engine.docker([
        "exec",
        client,
        "sh",
        "-c",
        `until wget -qO- http://${name}-sa/; do sleep 0.1; done; until wget -qO- http://${name}-sb/; do sleep 0.1; done; ip route`,
      ]);
      expect(both.code, both.stderr).toBe(0);
      expect(both.stdout).toContain("from-a\nfrom-b\n");
      expect(both.stdout.match(/^default /gm)).toEqual(["default "]);
      expect(both.stdout).toMatch(new RegExp(`^default via ${netA.gateway} dev eth0`, "m"));
      expect(await docker(["exec", `${name}-sb`, "sh", "-c", `wget -qO- http://${name}-alias/`])).toBe(
        "from-c",
      );
      expect(await fetchWhenUp(`http://127.0.0.1:${hostPort}/`)).toBe("from-c\n");

      expect((await engine.docker(["network", "rm", b])).stderr).toMatch(/has active endpoints/);
      const twice = await engine.docker(["network", "connect", b, client]);
      expect(twice.stderr).toMatch(new RegExp(`endpoint with name ${client} already exists in network ${b}`));
      expect((await engine.docker(["network", "connect", "host", client])).stderr).toMatch(/host network/);
      expect(
        (await engine.docker(["network", "connect", "--ip", "10.99.0.9", "bridge", client])).stderr,
      ).toMatch(
        /invalid endpoint settings:\nuser specified IP address is supported on user defined networks only/,
      );

      const disconnected = await engine.docker(["network", "disconnect", b, client]);
      expect(disconnected.code, disconnected.stderr).toBe(0);
      const gone = await engine.docker([
        "exec",
        client,
        "sh",
        "-c",
        `ip -o link; wget -qO- http://${name}-sb/`,
      ]);
      expect(gone.code).not.toBe(0);
      expect(gone.stdout).not.toMatch(/eth1/);
      expect(gone.stderr).toMatch(/bad address/);
      expect(
        (await engine.docker(["exec", `${name}-sb`, "sh", "-c", `wget -qO- http://${name}-alias/`])).code,
      ).not.toBe(0);
      expect(
        Object.keys(
          JSON.parse(await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", client])),
        ),
      ).toEqual([a]);
      const [afterB] = JSON.parse(await docker(["network", "inspect", b])) as {
        Containers: Record<string, unknown>;
      }[];
      expect(Object.keys(afterB?.Containers ?? {})).toHaveLength(1);
      expect((await engine.docker(["network", "disconnect", b, client])).stderr).toMatch(
        new RegExp(`container ${id} is not connected to network ${b}`),
      );
      expect(await fetchWhenUp(`http://127.0.0.1:${hostPort}/`)).toBe("from-c\n");
      for (let attempt = 0; attempt < 100 && !seen.includes(`disconnect ${b} ${id}`); attempt++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(seen).toContain(`connect ${b} ${id}\n`);
      expect(seen).toContain(`disconnect ${b} ${id}\n`);

      // Connected again, across a restart of ctrd serve: still on both, disconnected and removed as before.
      await docker(["network", "connect", b, client]);
      await engine.restartServe();
      const restarted = JSON.parse(
        await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", client]),
      );
      expect(Object.keys(restarted)).toEqual([a, b]);
      expect(await docker(["exec", client, "sh", "-c", `wget -qO- http://${name}-sb/`])).toBe("from-b");
      await docker(["network", "disconnect", b, client]);
      await docker(["network", "connect", b, client]);
    } finally {
      events.kill();
      await engine.docker(["rm", "-f", client, `${name}-sa`, `${name}-sb`]);
    }
    expectNothingLeft(a, netA);
    expectNothingLeft(b, netB);
    expect((await engine.docker(["network", "rm", a, b])).code).toBe(0);
  });

  it("connects and disconnects a created container; it starts on the networks it has then", async () => {
    const name = `mc${Date.now().toString(36)}`;
    await docker(["network", "create", name]);
    const details = await networkOf(name);
    await docker(["run", "-d", "--name", `${name}-web`, "--network", name, engine.image, ...httpd("web")]);
    const fetchThenList = `wget -qO- http://${name}-web/ && ip -o link`;
    await docker(["create", "--name", `${name}-c`, engine.image, "sh", "-c", fetchThenList]);
    await docker(["network", "connect", name, `${name}-c`]);
    // On the default bridge and the network: eth0 and eth1.
    expect(await docker(["network", "disconnect", "bridge", `${name}-c`])).toBe("");
    expect(
      (await engine.docker(["network", "connect", "--alias", "x", "bridge", `${name}-c`])).stderr,
    ).toMatch(/network-scoped alias is supported only for containers in user defined networks/);
    expect(await docker(["start", "-a", `${name}-c`])).toMatch(/^web\n[\s\S]*: eth1@/);
    const isolated = await docker(["create", "--network", "none", engine.image, "true"]);
    expect((await engine.docker(["network", "connect", name, isolated])).stderr).toMatch(
      /cannot be connected to multiple networks with one of the networks in private \(none\) mode/,
    );
    await docker(["rm", "-f", `${name}-c`, `${name}-web`, isolated]);
    expectNothingLeft(name, details);
    await docker(["network", "rm", name]);
  });
});

describe("the engine's record and the network state apart", () => {
  it("adopts a connect or disconnect the container's record lost (the engine killed between the two)", async () => {
    const name = `ma${Date.now().toString(36)}`;
    await docker(["network", "create", name]);
    const details = await networkOf(name);
    const id = await docker(["create", "--name", `${name}-c`, engine.image, "true"]);
    // What a killed engine leaves: the interface made, the container's record not yet saved.
    const manager = new NetworkManager({
      stateDir: stateDir(),
      dataDir: join(engine.containerd.dir, "root", "network"),
    });
    await manager.connect({ namespace: engine.namespace, containerId: id, network: name });
    expect(await docker(["network", "connect", name, `${name}-c`])).toBe("");
    const networks = JSON.parse(await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", id]));
    expect(Object.keys(networks)).toEqual(["bridge", name]);
    // And the other way: the interface gone, the record not yet saved.
    await manager.disconnect(engine.namespace, id, name);
    expect(await docker(["network", "disconnect", name, `${name}-c`])).toBe("");
    const after = JSON.parse(await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", id]));
    expect(Object.keys(after)).toEqual(["bridge"]);
    await docker(["rm", id]);
    expectNothingLeft(name, details);
    await docker(["network", "rm", name]);
  });
});

describe("several EndpointsConfig at create (API 1.44) with dockerode", () => {
  it("creates a container on two networks, NetworkMode's first, each with its aliases", async () => {
    const client = new Docker({ socketPath: engine.socket });
    await docker(["pull", engine.image]);
    const name = `me${Date.now().toString(36)}`;
    const [a, b] = [`${name}-a`, `${name}-b`];
    await client.createNetwork({ Name: a });
    await client.createNetwork({ Name: b });
    const [netA, netB] = [await networkOf(a), await networkOf(b)];
    const web = await client.createContainer({
      name: `${name}-web`,
      Image: engine.image,
      Cmd: httpd("two-networks"),
      HostConfig: { NetworkMode: a },
      NetworkingConfig: { EndpointsConfig: { [a]: { Aliases: ["web-a"] }, [b]: { Aliases: ["web-b"] } } },
    });
    await web.start();
    const probe = async (network: string, host: string): Promise<string> => {
      const run = await engine.docker([
        "run",
        "--rm",
        "--network",
        network,
        engine.image,
        "sh",
        "-c",
        `until wget -qO- http://${host}/; do sleep 0.1; done`,
      ]);
      expect(run.code, run.stderr).toBe(0);
      return run.stdout;
    };
    try {
      const inspected = await web.inspect();
      expect(Object.keys(inspected.NetworkSettings.Networks)).toEqual([a, b]);
      expect(inspected.NetworkSettings.Networks[b]?.Aliases).toEqual([inspected.Id.slice(0, 12), "web-b"]);
      expect(await probe(a, "web-a")).toBe("two-networks\n");
      expect(await probe(b, "web-b")).toBe("two-networks\n");
      const own = await engine.docker(["exec", `${name}-web`, "sh", "-c", "ip route; cat /etc/hosts"]);
      expect(own.stdout).toMatch(new RegExp(`^default via ${netA.gateway} dev eth0`, "m"));
      expect(own.stdout).toMatch(new RegExp(`^${inspected.NetworkSettings.Networks[b]?.IPAddress}\\t`, "m"));
      // Only the names on its own networks: b's alias is not a's.
      const wrongNetwork = await engine.docker([
        "run",
        "--rm",
        "--network",
        a,
        engine.image,
        "sh",
        "-c",
        "wget -qO- http://web-b/",
      ]);
      expect(wrongNetwork.stderr).toMatch(/bad address 'web-b'/);
    } finally {
      await web.remove({ force: true });
    }
    expectNothingLeft(a, netA);
    expectNothingLeft(b, netB);
    await client.getNetwork(a).remove();
    await client.getNetwork(b).remove();
  });
});

describe("a container's own address (--ip, IPAMConfig.IPv4Address)", () => {
  it("an own address stays across a restart and is free again once disconnected or removed", {
    timeout: 120_000,
  }, async () => {
    const name = `ipkeep${Date.now().toString(36)}`;
    const subnet = uniqueSubnet();
    const prefix = subnet.split(".").slice(0, 3).join(".");
    await docker(["network", "create", "--subnet", subnet, name]);
    const details = await networkOf(name);
    const addressOf = async (container: string): Promise<string> =>
      docker(["inspect", "-f", `{{(index .NetworkSettings.Networks "${name}").IPAddress}}`, container]);
    const run = (container: string, address: string): Promise<string> =>
      docker([
        "run",
        "-d",
        "--name",
        container,
        "--network",
        name,
        "--ip",
        address,
        engine.image,
        "sleep",
        "600",
      ]);
    try {
      await run(`${name}-a`, `${prefix}.10`);
      await docker(["restart", "-t", "0", `${name}-a`]);
      expect(await addressOf(`${name}-a`)).toBe(`${prefix}.10`);
      expect(await docker(["exec", `${name}-a`, "sh", "-c", "ip -o -4 addr show eth0"])).toContain(
        `inet ${prefix}.10/24`,
      );
      await docker(["rm", "-f", `${name}-a`]);
      await run(`${name}-b`, `${prefix}.10`);
      await docker(["run", "-d", "--name", `${name}-c`, engine.image, "sleep", "600"]);
      await docker(["network", "connect", "--ip", `${prefix}.20`, name, `${name}-c`]);
      await docker(["network", "disconnect", name, `${name}-c`]);
      await run(`${name}-d`, `${prefix}.20`);
      expect(await addressOf(`${name}-d`)).toBe(`${prefix}.20`);
    } finally {
      await engine.docker(["rm", "-f", `${name}-a`, `${name}-b`, `${name}-c`, `${name}-d`]);
    }
    expectNothingLeft(name, details);
    await docker(["network", "rm", name]);
  });

  it("an address asked for on another container's network (container:NAME) is refused, not dropped", {
    timeout: 120_000,
  }, async () => {
    const name = `ipshare${Date.now().toString(36)}`;
    const [donor, sharer] = [`${name}-donor`, `${name}-sharer`];
    const client = new Docker({ socketPath: engine.socket });
    try {
      await docker(["create", "--name", donor, engine.image, "sleep", "600"]);
      const mode = `container:${donor}`;
      // dockerd's verifyNetworkingConfig: validateEndpointSettings on every endpoint, the mode's too.
      const refused = await client
        .createContainer({
          name: sharer,
          Image: engine.image,
          Cmd: ["true"],
          HostConfig: { NetworkMode: mode },
          NetworkingConfig: { EndpointsConfig: { [mode]: { IPAMConfig: { IPv4Address: "10.99.0.5" } } } },
        })
        .then(
          () => undefined,
          (err: { statusCode?: number; message: string }) => err,
        );
      expect(refused?.statusCode).toBe(400);
      expect(refused?.message).toMatch(
        /user specified IP address is supported on user defined networks only/,
      );
      expect((await engine.docker(["inspect", sharer])).code).not.toBe(0);
    } finally {
      await engine.docker(["rm", "-f", donor, sharer]);
    }
  });

  it("docker run --ip and network connect --ip give the address asked for, refused as dockerd refuses it", {
    timeout: 240_000,
  }, async () => {
    const name = `ip${Date.now().toString(36)}`;
    const [fixed, auto] = [`${name}-fixed`, `${name}-auto`];
    const subnet = uniqueSubnet();
    const prefix = subnet.split(".").slice(0, 3).join(".");
    await docker(["network", "create", "--subnet", subnet, fixed]);
    await docker(["network", "create", auto]);
    const [netFixed, netAuto] = [await networkOf(fixed), await networkOf(auto)];
    const client = new Docker({ socketPath: engine.socket });
    const refusedNames: string[] = [];
    const refusal = async (args: string[]): Promise<string> => {
      // Each refused run is named, so that one wrongly made is removed at the end.
      const runName = `${name}-r${refusedNames.length}`;
      if (args[0] === "run") refusedNames.push(runName);
      const named = args[0] === "run" ? ["run", "--name", runName, ...args.slice(1)] : args;
      const result = await engine.docker(named);
      expect(result.code, `${named.join(" ")}: ${result.stdout}`).not.toBe(0);
      return result.stderr;
    };
    try {
      await docker([
        "run",
        "-d",
        "--name",
        `${name}-a`,
        "--network",
        fixed,
        "--ip",
        `${prefix}.10`,
        engine.image,
        "sleep",
        "600",
      ]);
      const [a] = JSON.parse(await docker(["inspect", `${name}-a`])) as {
        NetworkSettings: { Networks: Record<string, { IPAddress: string; IPAMConfig: unknown }> };
      }[];
      expect(a?.NetworkSettings.Networks[fixed]).toMatchObject({
        IPAddress: `${prefix}.10`,
        IPAMConfig: { IPv4Address: `${prefix}.10` },
      });
      expect(await docker(["exec", `${name}-a`, "sh", "-c", "ip -o -4 addr show eth0"])).toContain(
        `inet ${prefix}.10/24`,
      );
      // Taken: dockerd's IPAM error (403), and no container or interface is left of the attempt.
      expect(
        await refusal(["run", "-d", "--network", fixed, "--ip", `${prefix}.10`, engine.image, "true"]),
      ).toMatch(/Address already in use/);
      expect((await engine.docker(["inspect", `${name}-r0`])).code).not.toBe(0);
      expect(
        await refusal(["run", "-d", "--network", fixed, "--ip", `${netFixed.gateway}`, engine.image, "true"]),
      ).toMatch(/Address already in use/);
      expect(
        await refusal(["run", "-d", "--network", fixed, "--ip", "192.0.2.10", engine.image, "true"]),
      ).toMatch(
        /invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 192\.0\.2\.10/,
      );
      expect(
        await refusal(["run", "-d", "--network", auto, "--ip", `${prefix}.11`, engine.image, "true"]),
      ).toMatch(
        /invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets/,
      );
      expect(
        await refusal(["run", "-d", "--network", "bridge", "--ip", `${prefix}.11`, engine.image, "true"]),
      ).toMatch(/user specified IP address is supported on user defined networks only/);
      // network connect --ip: a running container on the default bridge gets eth1 with the address.
      await docker(["run", "-d", "--name", `${name}-b`, engine.image, "sleep", "600"]);
      await docker(["network", "connect", "--ip", `${prefix}.20`, fixed, `${name}-b`]);
      expect(await docker(["exec", `${name}-b`, "sh", "-c", "ip -o -4 addr show eth1"])).toContain(
        `inet ${prefix}.20/24`,
      );
      const connected = JSON.parse(
        await docker(["inspect", "-f", `{{json (index .NetworkSettings.Networks "${fixed}")}}`, `${name}-b`]),
      ) as { IPAddress: string; IPAMConfig: unknown };
      expect(connected).toMatchObject({
        IPAddress: `${prefix}.20`,
        IPAMConfig: { IPv4Address: `${prefix}.20` },
      });
      // From a's address to b's own: the addresses are the interfaces'.
      expect(await docker(["exec", `${name}-a`, "sh", "-c", `ping -c 1 -W 5 ${prefix}.20`])).toMatch(
        /1 packets received/,
      );
      await docker(["run", "-d", "--name", `${name}-c`, engine.image, "sleep", "600"]);
      expect(await refusal(["network", "connect", "--ip", `${prefix}.20`, fixed, `${name}-c`])).toMatch(
        /Address already in use/,
      );
      expect(await refusal(["network", "connect", "--ip", `${prefix}.21`, auto, `${name}-c`])).toMatch(
        /user specified IP address is supported only when connecting to networks with user configured subnets/,
      );
      const cNetworks = JSON.parse(
        await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", `${name}-c`]),
      );
      expect(Object.keys(cNetworks)).toEqual(["bridge"]);
      expect(await docker(["exec", `${name}-c`, "sh", "-c", "ip -o link"])).not.toMatch(/eth1/);
      // The API's statuses and IPAMConfig at create (dockerode).
      const created = await client.createContainer({
        name: `${name}-d`,
        Image: engine.image,
        Cmd: ["sleep", "600"],
        HostConfig: { NetworkMode: fixed },
        NetworkingConfig: { EndpointsConfig: { [fixed]: { IPAMConfig: { IPv4Address: `${prefix}.30` } } } },
      });
      const inspected = await created.inspect();
      expect(inspected.NetworkSettings.Networks[fixed]).toMatchObject({
        IPAddress: `${prefix}.30`,
        IPAMConfig: { IPv4Address: `${prefix}.30` },
      });
      const status = (body: Docker.ContainerCreateOptions) =>
        client.createContainer(body).then(
          async (made) => {
            await made.remove({ force: true });
            return 0;
          },
          (err: { statusCode?: number }) => err.statusCode,
        );
      const asking = (network: string, address: string): Docker.ContainerCreateOptions => ({
        Image: engine.image,
        HostConfig: { NetworkMode: network },
        NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: address } } } },
      });
      expect(await status(asking(fixed, `${prefix}.30`))).toBe(403);
      // The subnet's network and broadcast addresses are never a container's (dockerd's IPAM holds them).
      expect(await status(asking(fixed, `${prefix}.0`))).toBe(403);
      expect(await status(asking(fixed, `${prefix}.255`))).toBe(403);
      expect(await status(asking(fixed, "192.0.2.10"))).toBe(400);
      expect(await status(asking(auto, `${prefix}.31`))).toBe(400);
      expect(await status(asking(fixed, "not-an-address"))).toBe(400);
    } finally {
      await engine.docker(["rm", "-f", `${name}-a`, `${name}-b`, `${name}-c`, `${name}-d`, ...refusedNames]);
    }
    expect((await engine.docker(["ps", "-aq", "--filter", `network=${fixed}`])).stdout.trim()).toBe("");
    expectNothingLeft(fixed, netFixed);
    expectNothingLeft(auto, netAuto);
    await docker(["network", "rm", fixed, auto]);
  });
});
