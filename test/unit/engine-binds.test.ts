import { expect, test } from "vitest";
import { parseBind, parseCreateRequest, parseVolumesFrom } from "../../src/engine/containers/config.js";

const message = (run: () => unknown): string => {
  try {
    run();
  } catch (err) {
    return (err as Error).message;
  }
  return "";
};

test("Binds as moby's ParseMountRaw reads them: a host path binds, a name mounts a volume, a path alone is anonymous", () => {
  expect(parseBind("/host:/ctr:ro")).toEqual({
    type: "bind",
    source: "/host",
    destination: "/ctr",
    readonly: true,
    mode: "ro",
    copyData: true,
  });
  expect(parseBind("data:/var/lib/x/")).toEqual({
    type: "volume",
    source: "data",
    destination: "/var/lib/x",
    readonly: false,
    mode: "",
    copyData: true,
  });
  expect(parseBind("data:/x:ro,nocopy")).toMatchObject({ type: "volume", readonly: true, copyData: false });
  expect(parseBind("/anonymous")).toMatchObject({ type: "volume", source: "", destination: "/anonymous" });
  expect(parseBind("data:/x:z,rshared,cached")).toMatchObject({ mode: "z,rshared,cached" });
});

test("Binds refused as dockerd words it", () => {
  expect(message(() => parseBind("/data:ro"))).toBe("invalid volume specification: '/data:ro'");
  expect(message(() => parseBind(":/x"))).toBe("invalid volume specification: ':/x'");
  expect(message(() => parseBind("a:/b:ro:z"))).toBe("invalid volume specification: 'a:/b:ro:z'");
  expect(message(() => parseBind("data:/x:ro,rw"))).toBe("invalid mode: ro,rw");
  expect(message(() => parseBind("data:/x:fast"))).toBe("invalid mode: fast");
  expect(message(() => parseBind("data:relative"))).toBe(
    `invalid volume specification: 'data:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute`,
  );
  expect(message(() => parseBind("data:/"))).toMatch(/destination can't be '\/'/);
  expect(message(() => parseBind("/host:/x:nocopy"))).toMatch(/field VolumeOptions must not be specified/);
  expect(message(() => parseBind("a:/x"))).toBe(
    "create a: volume name is too short, names should be at least two alphanumeric characters",
  );
  expect(message(() => parseBind("./dir:/x"))).toMatch(
    /^create \.\/dir: "\.\/dir" includes invalid characters for a local volume name.*use absolute path$/,
  );
});

test("--mount type=volume: a name or none, VolumeOptions checked, other types' options refused", () => {
  const mounts = (entry: Record<string, unknown>) =>
    parseCreateRequest({ Image: "busybox", HostConfig: { Mounts: [entry] } }).hostConfig.Mounts;
  // Kept as given: the options of a volume it makes.
  const full = {
    Type: "volume",
    Source: "data",
    Target: "/d",
    ReadOnly: true,
    VolumeOptions: { NoCopy: true, Labels: { a: "b" }, DriverConfig: { Name: "local", Options: { o: "x" } } },
  };
  expect(mounts(full)).toEqual([full]);
  expect(mounts({ Type: "volume", Target: "/anon" })).toEqual([
    { Type: "volume", Source: "", Target: "/anon", ReadOnly: false },
  ]);
  expect(message(() => mounts({ Type: "volume", Target: "/d", BindOptions: {} }))).toBe(
    `invalid mount config for type "volume": field BindOptions must not be specified`,
  );
  expect(message(() => mounts({ Type: "bind", Source: "/", Target: "/d", VolumeOptions: {} }))).toBe(
    `invalid mount config for type "bind": field VolumeOptions must not be specified`,
  );
  expect(
    message(() => mounts({ Type: "volume", Target: "/d", VolumeOptions: { DriverConfig: { Name: "nfs" } } })),
  ).toBe(`error looking up volume plugin nfs: plugin "nfs" not found`);
  expect(message(() => mounts({ Type: "volume", Source: "x", Target: "/d" }))).toMatch(
    /volume name is too short/,
  );
});

test("Config.Volumes paths must be absolute", () => {
  expect(message(() => parseCreateRequest({ Image: "busybox", Volumes: { relative: {} } }))).toMatch(
    /mount path must be absolute/,
  );
  expect(parseCreateRequest({ Image: "busybox", Volumes: { "/data": {} } }).config.Volumes).toEqual({
    "/data": {},
  });
});

test("--volumes-from as moby's ParseVolumesFrom: CONTAINER[:ro|rw], no propagation or nocopy", () => {
  expect(parseVolumesFrom("store")).toEqual({ container: "store", readonly: false });
  expect(parseVolumesFrom("store:ro")).toEqual({ container: "store", readonly: true });
  expect(parseVolumesFrom("store:rw,z")).toEqual({ container: "store", readonly: false });
  expect(message(() => parseVolumesFrom(""))).toBe("volumes-from specification cannot be an empty string");
  expect(message(() => parseVolumesFrom("store:rshared"))).toBe("invalid mode: rshared");
  expect(message(() => parseVolumesFrom("store:nocopy"))).toBe("invalid mode: nocopy");
});
