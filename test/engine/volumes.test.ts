import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { beforeAll, describe, expect, it } from "vitest";
import { busyboxLayer, publishImage } from "../harness/images.js";
import { useEngine } from "./harness.js";

// Named and anonymous volumes (dockerd's local driver) through the docker CLI and dockerode.
const engine = useEngine("lcd-engine-volumes-");

/** Where the engine keeps its volumes (`--data-root`/volumes). */
const volumesDir = (): string => join(engine.containerd.dir, "engine", "volumes");

/** The engine's volumes as dirs on disk (hidden ones too: a half made or half removed volume). */
const volumeDirs = (): string[] => readdirSync(volumesDir()).sort();

/** Mounts under the engine's volumes dir (a volume with mount options, while a container has it). */
const volumeMounts = (): string[] =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.includes(volumesDir()));

interface VolumeJson {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  Scope: string;
  UsageData?: { Size: number; RefCount: number };
}

interface MountJson {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

async function inspectVolume(name: string): Promise<VolumeJson> {
  const result = await engine.docker(["volume", "inspect", name]);
  expect(result.code, result.stderr).toBe(0);
  const [volume] = JSON.parse(result.stdout) as VolumeJson[];
  if (!volume) throw new Error(`no volume ${name}`);
  return volume;
}

async function mountsOf(container: string): Promise<MountJson[]> {
  const result = await engine.docker(["inspect", "--format", "{{json .Mounts}}", container]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as MountJson[];
}

async function volumeNames(): Promise<string[]> {
  const result = await engine.docker(["volume", "ls", "-q"]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.split("\n").filter(Boolean).sort();
}

/** An image with a VOLUME at /data holding a file owned by 1000:1000, mode 0640, in a 0750 directory. */
let seeded = "";

beforeAll(async () => {
  const { ref } = await publishImage(engine.registry, engine.containerd.dir, "seeded:latest", {
    layers: [
      busyboxLayer({
        "data/": { dir: true, mode: 0o750 },
        "data/seed": { file: "from the image\n", mode: 0o640, uid: 1000, gid: 1000 },
        "data/sub/": { dir: true, mode: 0o700 },
        "data/sub/deep": { file: "deeper\n", mode: 0o600, uid: 1000, gid: 1000 },
        "data/link": { symlink: "seed" },
      }),
    ],
    config: { Cmd: ["sh"], Volumes: { "/data": {} } },
  });
  seeded = ref;
}, 120_000);

describe("ctrd serve volumes: the docker volume commands", () => {
  it("creates (idempotently), lists with filters, inspects and removes a volume, as dockerd's local driver", async () => {
    const create = await engine.docker(["volume", "create", "--label", "team=a", "vol-basic"]);
    expect(create).toMatchObject({ code: 0, stdout: "vol-basic\n" });
    // The same name again is that volume, unchanged (dockerd's store gives the existing one back).
    expect(await engine.docker(["volume", "create", "--label", "team=b", "vol-basic"])).toMatchObject({
      code: 0,
      stdout: "vol-basic\n",
    });
    const volume = await inspectVolume("vol-basic");
    expect(volume).toMatchObject({
      Name: "vol-basic",
      Driver: "local",
      Mountpoint: join(volumesDir(), "vol-basic", "_data"),
      Labels: { team: "a" },
      Scope: "local",
    });
    expect(volume.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(statSync(volume.Mountpoint).isDirectory()).toBe(true);
    expect(readdirSync(volume.Mountpoint)).toEqual([]);

    expect(await volumeNames()).toContain("vol-basic");
    const filtered = async (filter: string): Promise<string[]> =>
      (await engine.docker(["volume", "ls", "-q", "--filter", filter])).stdout.split("\n").filter(Boolean);
    expect(await filtered("label=team=a")).toEqual(["vol-basic"]);
    expect(await filtered("label=team=b")).toEqual([]);
    expect(await filtered("name=vol-bas")).toEqual(["vol-basic"]);
    expect(await filtered("driver=local")).toContain("vol-basic");
    expect(await filtered("dangling=true")).toContain("vol-basic");
    expect(await filtered("dangling=false")).not.toContain("vol-basic");
    expect((await engine.docker(["volume", "ls", "--filter", "colour=red"])).stderr).toMatch(
      /invalid filter 'colour'/,
    );

    // Names as volume/local checks them; a driver that is not here is a plugin dockerd cannot find.
    expect((await engine.docker(["volume", "create", "a"])).stderr).toMatch(/volume name is too short/);
    expect((await engine.docker(["volume", "create", "bad@name"])).stderr).toMatch(
      /"bad@name" includes invalid characters for a local volume name/,
    );
    expect((await engine.docker(["volume", "create", "-d", "nfs-plugin", "x1"])).stderr).toMatch(
      /plugin "nfs-plugin" not found/,
    );
    expect((await engine.docker(["volume", "create", "-o", "colour=red", "x2"])).stderr).toMatch(
      /invalid option: "colour"/,
    );
    expect(await volumeNames()).not.toContain("x1");

    expect(await engine.docker(["volume", "rm", "vol-basic"])).toMatchObject({
      code: 0,
      stdout: "vol-basic\n",
    });
    expect(existsSync(join(volumesDir(), "vol-basic"))).toBe(false);
    const again = await engine.docker(["volume", "inspect", "vol-basic"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no such volume/i);
    expect((await engine.docker(["volume", "rm", "vol-basic"])).stderr).toMatch(/no such volume/i);
    expect((await engine.docker(["volume", "rm", "-f", "vol-basic"])).code).toBe(0);
    expect(volumeDirs().filter((name) => name.startsWith("."))).toEqual([]);
  });

  it("answers dockerode: createVolume, listVolumes with filters, inspect, remove, pruneVolumes", async () => {
    const docker = new Docker({ socketPath: engine.socket });
    // dockerode answers a Volume handle (its name from the 201's body).
    const created = await docker.createVolume({ Name: "vol-node", Labels: { via: "dockerode" } });
    expect(created.name).toBe("vol-node");
    expect(await created.inspect()).toMatchObject({ Driver: "local", Labels: { via: "dockerode" } });
    const listed = await docker.listVolumes({ filters: JSON.stringify({ label: ["via=dockerode"] }) });
    expect(listed.Volumes.map((volume) => volume.Name)).toEqual(["vol-node"]);
    expect(await docker.getVolume("vol-node").inspect()).toMatchObject({ Name: "vol-node", Scope: "local" });
    await docker.getVolume("vol-node").remove();
    const gone = await docker
      .getVolume("vol-node")
      .inspect()
      .then(
        () => 200,
        (err: { statusCode?: number }) => err.statusCode,
      );
    expect(gone).toBe(404);
    const anonymous = (await (await docker.createVolume({})).inspect()) as VolumeJson;
    expect(anonymous.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(anonymous.Labels).toEqual({ "com.docker.volume.anonymous": "" });
    const pruned = await docker.pruneVolumes({ filters: { all: ["false"] } });
    expect(pruned.VolumesDeleted).toEqual([anonymous.Name]);
  });
});

describe("ctrd serve volumes: containers", () => {
  it("keeps a named volume's data across containers, read-only when asked, and refuses to remove it in use", async () => {
    const write = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-data:/d",
      engine.image,
      "sh",
      "-c",
      "echo kept > /d/file",
    ]);
    expect(write.code, write.stderr).toBe(0);
    expect(readFileSync(join(volumesDir(), "vol-data", "_data", "file"), "utf8")).toBe("kept\n");
    const read = await engine.docker(["run", "--rm", "-v", "vol-data:/d:ro", engine.image, "cat", "/d/file"]);
    expect(read).toMatchObject({ code: 0, stdout: "kept\n" });
    const readOnly = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-data:/d:ro",
      engine.image,
      "touch",
      "/d/x",
    ]);
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/Read-only file system/);
    // The volume made by `-v` survives its --rm container (it is named).
    expect(await volumeNames()).toContain("vol-data");

    const created = await engine.docker(["create", "--name", "vol-user", "-v", "vol-data:/d", engine.image]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    const mounts = await mountsOf("vol-user");
    expect(mounts).toEqual([
      {
        Type: "volume",
        Name: "vol-data",
        Source: join(volumesDir(), "vol-data", "_data"),
        Destination: "/d",
        Driver: "local",
        Mode: "z",
        RW: true,
        Propagation: "",
      },
    ]);
    const refused = await engine.docker(["volume", "rm", "vol-data"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`remove vol-data: volume is in use - [${id}]`);
    expect((await engine.docker(["volume", "rm", "-f", "vol-data"])).stderr).toMatch(/volume is in use/);
    const usedBy = await engine.docker(["ps", "-aq", "--no-trunc", "--filter", "volume=vol-data"]);
    expect(usedBy.stdout.trim()).toBe(id);
    expect(
      (await engine.docker(["volume", "ls", "-q", "--filter", "dangling=false"])).stdout.split("\n"),
    ).toContain("vol-data");
    // docker rm -v leaves named volumes.
    expect((await engine.docker(["rm", "-v", "vol-user"])).code).toBe(0);
    expect(await volumeNames()).toContain("vol-data");
    expect(await engine.docker(["volume", "rm", "vol-data"])).toMatchObject({ code: 0 });
    expect(existsSync(join(volumesDir(), "vol-data"))).toBe(false);
  });

  it("mounts --mount type=volume: made with its labels, readonly, volume-nocopy, and anonymous without a source", async () => {
    const run = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,source=vol-mount,target=/m,volume-label=origin=mount",
      "--mount",
      "type=volume,source=vol-mount,target=/r,readonly",
      engine.image,
      "sh",
      "-c",
      "echo in > /m/f; cat /r/f; touch /r/g 2>&1 || true",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^in\n.*Read-only file system/s);
    expect((await inspectVolume("vol-mount")).Labels).toEqual({ origin: "mount" });
    const nocopy = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,source=vol-nocopy,target=/data,volume-nocopy",
      seeded,
      "true",
    ]);
    expect(nocopy.code, nocopy.stderr).toBe(0);
    expect(readdirSync(join(volumesDir(), "vol-nocopy", "_data"))).toEqual([]);
    const before = await volumeNames();
    const anonymous = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,target=/anon",
      engine.image,
      "sh",
      "-c",
      "echo x > /anon/x",
    ]);
    expect(anonymous.code, anonymous.stderr).toBe(0);
    expect(await volumeNames()).toEqual(before);
    const bad = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,src=a@b,dst=/v",
      engine.image,
      "true",
    ]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/includes invalid characters for a local volume name/);
    const duplicate = await engine.docker([
      "create",
      "-v",
      "vol-dup:/same",
      "-v",
      "vol-dup2:/same",
      engine.image,
    ]);
    expect(duplicate.stderr).toMatch(/Duplicate mount point: \/same/);
    expect(await volumeNames()).not.toContain("vol-dup");
    expect((await engine.docker(["volume", "rm", "vol-mount", "vol-nocopy"])).code).toBe(0);
  });

  it("copies the image's content into a new, empty volume (owners, modes, links), never into one with data", async () => {
    const inside = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-seeded:/data",
      seeded,
      "sh",
      "-c",
      "stat -c '%a %u %g %n' /data /data/seed /data/sub /data/sub/deep; readlink /data/link; cat /data/seed",
    ]);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stdout).toBe(
      "750 0 0 /data\n640 1000 1000 /data/seed\n700 0 0 /data/sub\n600 1000 1000 /data/sub/deep\nseed\nfrom the image\n",
    );
    const data = join(volumesDir(), "vol-seeded", "_data");
    expect(statSync(data).mode & 0o7777).toBe(0o750);
    writeFileSync(join(data, "seed"), "changed by a user\n");
    const second = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-seeded:/data",
      seeded,
      "cat",
      "/data/seed",
    ]);
    expect(second).toMatchObject({ code: 0, stdout: "changed by a user\n" });
    // nocopy (-v NAME:/path:nocopy) leaves a new volume empty.
    const nocopy = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-bare:/data:nocopy",
      seeded,
      "ls",
      "-A",
      "/data",
    ]);
    expect(nocopy).toMatchObject({ code: 0, stdout: "" });
    expect((await engine.docker(["volume", "rm", "vol-seeded", "vol-bare"])).code).toBe(0);
  });

  it("makes anonymous volumes for -v /path and the image's VOLUME; rm -v and --rm remove them, rm alone keeps them", async () => {
    const before = await volumeNames();
    const created = await engine.docker([
      "create",
      "--name",
      "vol-anon",
      "-v",
      "/scratch",
      "-v",
      "vol-keep:/keep",
      seeded,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const mounts = await mountsOf("vol-anon");
    const byDestination = Object.fromEntries(mounts.map((mount) => [mount.Destination, mount]));
    for (const path of ["/scratch", "/data"]) {
      expect(byDestination[path]).toMatchObject({ Type: "volume", Driver: "local", Mode: "", RW: true });
      expect(byDestination[path]?.Name).toMatch(/^[0-9a-f]{64}$/);
      expect(byDestination[path]?.Source).toBe(join(volumesDir(), byDestination[path]?.Name ?? "", "_data"));
      expect((await inspectVolume(byDestination[path]?.Name ?? "")).Labels).toEqual({
        "com.docker.volume.anonymous": "",
      });
    }
    expect(byDestination["/keep"]).toMatchObject({ Name: "vol-keep", Mode: "z" });
    // The image's VOLUME got the image's files at create.
    expect(readFileSync(join(byDestination["/data"]?.Source ?? "", "seed"), "utf8")).toBe("from the image\n");
    const anonymous = [byDestination["/scratch"]?.Name ?? "", byDestination["/data"]?.Name ?? ""];
    expect((await engine.docker(["rm", "-v", "vol-anon"])).code).toBe(0);
    for (const name of anonymous) expect(existsSync(join(volumesDir(), name))).toBe(false);
    expect(await volumeNames()).toEqual([...before, "vol-keep"].sort());

    // --rm (AutoRemove): the engine removes the container and its anonymous volumes when it exits.
    const autoRemoved = await engine.docker([
      "run",
      "--rm",
      "-v",
      "/scratch",
      seeded,
      "sh",
      "-c",
      "echo x > /scratch/x",
    ]);
    expect(autoRemoved.code, autoRemoved.stderr).toBe(0);
    expect(await volumeNames()).toEqual([...before, "vol-keep"].sort());

    // docker rm without -v keeps them (dangling), as dockerd does.
    const kept = await engine.docker(["create", "-v", "/scratch", engine.image]);
    const [mount] = await mountsOf(kept.stdout.trim());
    expect((await engine.docker(["rm", kept.stdout.trim()])).code).toBe(0);
    expect(await volumeNames()).toContain(mount?.Name);
    expect((await engine.docker(["volume", "rm", mount?.Name ?? "", "vol-keep"])).code).toBe(0);
    expect(await volumeNames()).toEqual(before);
  });

  it("shares a container's volumes and binds with --volumes-from (read-only with :ro); the last user's rm -v removes an anonymous one", async () => {
    const hostDir = join(engine.containerd.dir, "vol-from-host");
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, "h"), "from the host\n");
    const store = await engine.docker([
      "create",
      "--name",
      "vol-store",
      "-v",
      "/shared",
      "-v",
      `${hostDir}:/hostdir`,
      engine.image,
    ]);
    expect(store.code, store.stderr).toBe(0);
    const [shared] = (await mountsOf("vol-store")).filter((mount) => mount.Type === "volume");
    const write = await engine.docker([
      "run",
      "--rm",
      "--volumes-from",
      "vol-store",
      engine.image,
      "sh",
      "-c",
      "echo x > /shared/f; cat /hostdir/h",
    ]);
    expect(write).toMatchObject({ code: 0, stdout: "from the host\n" });
    const readOnly = await engine.docker([
      "run",
      "--rm",
      "--volumes-from",
      "vol-store:ro",
      engine.image,
      "sh",
      "-c",
      "cat /shared/f; touch /shared/g",
    ]);
    expect(readOnly.code).toBe(1);
    expect(readOnly.stdout).toBe("x\n");
    expect(readOnly.stderr).toMatch(/Read-only file system/);
    const user = (await engine.docker(["create", "--volumes-from", "vol-store", engine.image])).stdout.trim();
    const mounts = await mountsOf(user);
    expect(mounts).toEqual(
      expect.arrayContaining([
        {
          Type: "bind",
          Source: hostDir,
          Destination: "/hostdir",
          Mode: "",
          RW: true,
          Propagation: "rprivate",
        },
        expect.objectContaining({ Type: "volume", Name: shared?.Name, Destination: "/shared" }),
      ]),
    );
    expect((await engine.docker(["volume", "rm", shared?.Name ?? ""])).stderr).toMatch(/volume is in use/);
    // The store goes with -v while another container has its anonymous volume: the volume stays.
    expect((await engine.docker(["rm", "-v", "vol-store"])).code).toBe(0);
    expect(await volumeNames()).toContain(shared?.Name);
    expect((await engine.docker(["rm", "-v", user])).code).toBe(0);
    expect(await volumeNames()).not.toContain(shared?.Name);
    const missing = await engine.docker([
      "run",
      "--rm",
      "--volumes-from",
      "no-such-store",
      engine.image,
      "true",
    ]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/No such container: no-such-store/);
  });

  it("copies files into a volume with docker cp, for a created and a running container", async () => {
    const dir = join(engine.containerd.dir, "vol-cp");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "payload"), "copied in\n");
    const created = await engine.docker(["create", "-v", "vol-cp:/in", engine.image, "sleep", "300"]);
    const id = created.stdout.trim();
    expect((await engine.docker(["cp", join(dir, "payload"), `${id}:/in/stopped`])).code).toBe(0);
    expect(readFileSync(join(volumesDir(), "vol-cp", "_data", "stopped"), "utf8")).toBe("copied in\n");
    expect((await engine.docker(["start", id])).code).toBe(0);
    expect((await engine.docker(["cp", join(dir, "payload"), `${id}:/in/running`])).code).toBe(0);
    expect(readFileSync(join(volumesDir(), "vol-cp", "_data", "running"), "utf8")).toBe("copied in\n");
    expect((await engine.docker(["exec", id, "cat", "/in/stopped"])).stdout).toBe("copied in\n");
    expect((await engine.docker(["rm", "-f", id])).code).toBe(0);
    // A read-only volume refuses, as moby's checkIfPathIsInAVolume.
    const readOnly = (await engine.docker(["create", "-v", "vol-cp:/ro:ro", engine.image])).stdout.trim();
    const refused = await engine.docker(["cp", join(dir, "payload"), `${readOnly}:/ro/x`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/mounted volume is marked read-only/);
    expect((await engine.docker(["rm", readOnly])).code).toBe(0);
    expect((await engine.docker(["volume", "rm", "vol-cp"])).code).toBe(0);
  });
});

describe("ctrd serve volumes: prune, df, events, restarts", () => {
  it("prunes unused volumes (API 1.41: named ones too; all=false: anonymous only), with label filters and the space reclaimed", async () => {
    const fill = (volume: string, bytes: number) =>
      engine.docker([
        "run",
        "--rm",
        "-v",
        `${volume}:/v`,
        engine.image,
        "sh",
        "-c",
        `head -c ${bytes} /dev/zero > /v/f`,
      ]);
    expect((await fill("vol-p1", 1000)).code).toBe(0);
    expect((await fill("vol-p2", 3000)).code).toBe(0);
    expect((await engine.docker(["volume", "create", "--label", "keep=yes", "vol-p3"])).code).toBe(0);
    const user = await engine.docker(["create", "-v", "vol-p2:/v", engine.image]);
    const anonymous = (await engine.docker(["create", "-v", "/v", engine.image])).stdout.trim();
    const [anonymousMount] = await mountsOf(anonymous);
    expect((await engine.docker(["rm", anonymous])).code).toBe(0);

    const anonymousOnly = await engine.api(
      "POST",
      `/volumes/prune?filters=${encodeURIComponent(JSON.stringify({ all: ["false"] }))}`,
    );
    expect(anonymousOnly.status).toBe(200);
    expect(JSON.parse(anonymousOnly.body)).toEqual({
      VolumesDeleted: [anonymousMount?.Name],
      SpaceReclaimed: 0,
    });

    const pruned = await engine.docker(["volume", "prune", "-f", "--filter", "label!=keep"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/Deleted Volumes:\nvol-p1\n/);
    expect(pruned.stdout).toMatch(/Total reclaimed space: 1kB/);
    expect(await volumeNames()).toEqual(expect.arrayContaining(["vol-p2", "vol-p3"]));
    expect(await volumeNames()).not.toContain("vol-p1");
    const byApi = await engine.api("POST", "/v1.41/volumes/prune");
    expect(JSON.parse(byApi.body)).toEqual({ VolumesDeleted: ["vol-p3"], SpaceReclaimed: 0 });
    expect((await engine.docker(["rm", user.stdout.trim()])).code).toBe(0);
    expect((await engine.docker(["volume", "rm", "vol-p2"])).code).toBe(0);
  });

  it("shows volumes in /system/df with their size and users, and publishes create, mount, unmount and destroy events", async () => {
    const since = Date.now() / 1000;
    expect(
      (
        await engine.docker([
          "run",
          "--rm",
          "-v",
          "vol-ev:/v",
          engine.image,
          "sh",
          "-c",
          "head -c 2048 /dev/zero > /v/f",
        ])
      ).code,
    ).toBe(0);
    const user = (await engine.docker(["create", "-v", "vol-ev:/v", engine.image])).stdout.trim();
    const df = await engine.api("GET", "/system/df");
    const { Volumes } = JSON.parse(df.body) as { Volumes: VolumeJson[] };
    expect(Volumes.find((volume) => volume.Name === "vol-ev")).toMatchObject({
      Driver: "local",
      UsageData: { Size: 2048, RefCount: 1 },
    });
    expect((await engine.docker(["system", "df", "-v"])).stdout).toMatch(/vol-ev\s+1\s+2\.048kB/);
    expect((await engine.docker(["rm", user])).code).toBe(0);
    expect((await engine.docker(["volume", "rm", "vol-ev"])).code).toBe(0);
    const until = Date.now() / 1000 + 1;
    const events = await engine.docker([
      "events",
      "--since",
      since.toFixed(3),
      "--until",
      until.toFixed(3),
      "--filter",
      "type=volume",
      "--filter",
      "volume=vol-ev",
      "--format",
      "{{.Action}}",
    ]);
    expect(events.stdout.split("\n").filter(Boolean)).toEqual(["create", "mount", "unmount", "destroy"]);
  });

  it("keeps volumes and their users across an engine restart, and clears what a crash left half made", async () => {
    const user = (await engine.docker(["create", "-v", "vol-restart:/v", engine.image])).stdout.trim();
    mkdirSync(join(volumesDir(), ".creating-leftover", "_data"), { recursive: true });
    mkdirSync(join(volumesDir(), ".removing-leftover", "_data"), { recursive: true });
    await engine.restartServe();
    expect(volumeDirs().filter((name) => name.startsWith("."))).toEqual([]);
    expect(await volumeNames()).toContain("vol-restart");
    expect((await engine.docker(["volume", "rm", "vol-restart"])).stderr).toMatch(/volume is in use/);
    expect((await engine.docker(["rm", user])).code).toBe(0);
    expect((await engine.docker(["volume", "rm", "vol-restart"])).code).toBe(0);
  });

  it("mounts a volume with local driver options (a tmpfs) while a container runs, and unmounts it after", async () => {
    const create = await engine.docker([
      "volume",
      "create",
      "--opt",
      "type=tmpfs",
      "--opt",
      "device=tmpfs",
      "--opt",
      "o=size=1m",
      "vol-tmpfs",
    ]);
    expect(create.code, create.stderr).toBe(0);
    // Not local data: /system/df leaves it out, as dockerd's LocalVolumesSize.
    const df = JSON.parse((await engine.api("GET", "/system/df")).body) as { Volumes: VolumeJson[] };
    expect(df.Volumes.map((volume) => volume.Name)).not.toContain("vol-tmpfs");
    expect((await inspectVolume("vol-tmpfs")).Options).toEqual({
      type: "tmpfs",
      device: "tmpfs",
      o: "size=1m",
    });
    const run = await engine.docker([
      "run",
      "--rm",
      "-v",
      "vol-tmpfs:/t",
      engine.image,
      "sh",
      "-c",
      "grep ' /t ' /proc/mounts; echo gone > /t/f",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^tmpfs \/t tmpfs .*size=1024k/);
    expect(volumeMounts()).toEqual([]);
    expect(readdirSync(join(volumesDir(), "vol-tmpfs", "_data"))).toEqual([]);
    // --mount's volume-opt: the options of a volume it makes.
    const viaMount = await engine.docker([
      "run",
      "--rm",
      "--mount",
      "type=volume,source=vol-tmpfs2,target=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
      engine.image,
      "grep",
      " /t ",
      "/proc/mounts",
    ]);
    expect(viaMount.code, viaMount.stderr).toBe(0);
    expect(viaMount.stdout).toMatch(/^tmpfs \/t tmpfs /);
    expect((await inspectVolume("vol-tmpfs2")).Options).toEqual({ type: "tmpfs", device: "tmpfs" });
    expect(volumeMounts()).toEqual([]);
    // A host directory through the local driver (compose's driver_opts type: none, o: bind, device: …).
    const hostDir = join(engine.containerd.dir, "vol-bind-opts");
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, "h"), "bound\n");
    const bound = await engine.docker([
      "run",
      "--rm",
      "--mount",
      `type=volume,source=vol-bind,target=/b,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=${hostDir}`,
      engine.image,
      "sh",
      "-c",
      "cat /b/h; echo back > /b/c",
    ]);
    expect(bound).toMatchObject({ code: 0, stdout: "bound\n" });
    expect(readFileSync(join(hostDir, "c"), "utf8")).toBe("back\n");
    expect(volumeMounts()).toEqual([]);
    expect((await engine.docker(["volume", "rm", "vol-bind"])).code).toBe(0);
    expect(readFileSync(join(hostDir, "h"), "utf8")).toBe("bound\n");
    // Left mounted (its container exited while the engine was down): unmounted first, the host's files kept.
    const stale = await engine.docker([
      "volume",
      "create",
      "--opt",
      "type=none",
      "--opt",
      "o=bind",
      "--opt",
      `device=${hostDir}`,
      "vol-stale",
    ]);
    expect(stale.code, stale.stderr).toBe(0);
    execFileSync("mount", ["--bind", hostDir, join(volumesDir(), "vol-stale", "_data")]);
    expect((await engine.docker(["volume", "rm", "vol-stale"])).code).toBe(0);
    expect(readdirSync(hostDir).sort()).toEqual(["c", "h"]);
    expect(volumeMounts()).toEqual([]);
    // Mounted while a detached container runs, kept through an engine restart, unmounted when it stops.
    const running = await engine.docker(["run", "-d", "-v", "vol-tmpfs:/t", engine.image, "sleep", "300"]);
    expect(running.code, running.stderr).toBe(0);
    expect(volumeMounts()).toHaveLength(1);
    await engine.restartServe();
    expect(volumeMounts()).toHaveLength(1);
    expect(
      (await engine.docker(["exec", running.stdout.trim(), "sh", "-c", "echo ok > /t/f && cat /t/f"])).stdout,
    ).toBe("ok\n");
    expect((await engine.docker(["rm", "-f", running.stdout.trim()])).code).toBe(0);
    expect(volumeMounts()).toEqual([]);
    expect((await engine.docker(["volume", "rm", "vol-tmpfs", "vol-tmpfs2"])).code).toBe(0);
  });

  it("stays consistent under concurrent requests: one volume per name, never removed from under a container", async () => {
    const creates = await Promise.all(
      Array.from({ length: 8 }, () => engine.api("POST", "/volumes/create", { Name: "vol-race" })),
    );
    expect(creates.map((answer) => answer.status)).toEqual(Array(8).fill(201));
    expect(new Set(creates.map((answer) => (JSON.parse(answer.body) as VolumeJson).CreatedAt)).size).toBe(1);
    expect(volumeDirs().filter((name) => name.startsWith("vol-race"))).toEqual(["vol-race"]);
    // A container made while the volume is removed: either it was removed first (and the container makes it
    // again) or the removal is refused; a container never ends up with a volume that is not there.
    for (let round = 0; round < 5; round++) {
      const [created, removed] = await Promise.all([
        engine.api("POST", "/containers/create", {
          Image: engine.image,
          HostConfig: { Binds: ["vol-race:/d"] },
        }),
        engine.api("DELETE", "/volumes/vol-race"),
      ]);
      expect(created.status, created.body).toBe(201);
      expect([204, 404, 409]).toContain(removed.status);
      expect((await engine.api("GET", "/volumes/vol-race")).status).toBe(200);
      const { Id } = JSON.parse(created.body) as { Id: string };
      expect((await engine.api("DELETE", `/containers/${Id}`)).status).toBe(204);
    }
    const removals = await Promise.all(
      Array.from({ length: 4 }, () => engine.api("DELETE", "/volumes/vol-race?force=1")),
    );
    expect(removals.map((answer) => answer.status)).toEqual(Array(4).fill(204));
    expect(volumeDirs().filter((name) => name.includes("race") || name.startsWith("."))).toEqual([]);
  });

  it("leaves no volume dirs and no mounts behind", async () => {
    expect(volumeMounts()).toEqual([]);
    expect(volumeDirs()).toEqual([]);
  });
});
