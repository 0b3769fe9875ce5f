import { describe, expect, it } from "vitest";
import { archivePath } from "../../src/images/archive-import.js";
import { mergeEnv, resolveUser } from "../../src/images/image-spec.js";
import { chainIds, childGcLabels, MediaType, sha256 } from "../../src/images/media-types.js";
import { parsePlatform, platformMatches } from "../../src/images/platform.js";
import { familiarRepository, normalizeReference, parseReference } from "../../src/images/reference.js";
import { parseChallenges } from "../../src/images/registry/auth.js";
import { unsupportedImageService } from "../../src/images/unsupported.js";

const D = `sha256:${"a".repeat(64)}`;

describe("references, as Docker normalises them", () => {
  it.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["team/app", "docker.io/team/app:latest"],
    ["index.docker.io/team/app:v1", "docker.io/team/app:v1"],
    ["127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"],
    ["localhost/app:1", "localhost/app:1"],
    ["ghcr.io/o/r/deep/path:tag", "ghcr.io/o/r/deep/path:tag"],
    [`app@${D}`, `docker.io/library/app@${D}`],
    [`reg.io:443/app:1@${D}`, `reg.io:443/app:1@${D}`],
  ])("%s → %s", (input, output) => {
    expect(normalizeReference(input)).toBe(output);
  });

  it.each([
    "",
    "UPPER/case",
    "app:",
    "app:-bad",
    `${D}`,
    "a".repeat(64),
    "app@sha256:short",
    "/app",
    "app//x",
  ])("refuses %j with InvalidArgumentError", (input) => {
    expect(() => parseReference(input)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });

  it("shows familiar names as docker does", () => {
    expect(familiarRepository(parseReference("busybox"))).toBe("busybox");
    expect(familiarRepository(parseReference("team/app"))).toBe("team/app");
    expect(familiarRepository(parseReference("127.0.0.1:5000/app"))).toBe("127.0.0.1:5000/app");
  });
});

describe("containerd's identities and labels", () => {
  it("chain IDs: the first diff ID, then sha256(parent + ' ' + diff)", () => {
    const a = `sha256:${"1".repeat(64)}`;
    const b = `sha256:${"2".repeat(64)}`;
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });

  it("GC labels: config, m.N, l.N (images.ChildGCLabels)", () => {
    const d = (n: number) => `sha256:${String(n).repeat(64)}`;
    expect(
      childGcLabels([
        { mediaType: MediaType.ociConfig, digest: d(1), size: 1 },
        { mediaType: MediaType.ociLayerGzip, digest: d(2), size: 1 },
        { mediaType: MediaType.dockerLayer, digest: d(3), size: 1 },
      ]),
    ).toEqual({
      "containerd.io/gc.ref.content.config": d(1),
      "containerd.io/gc.ref.content.l.0": d(2),
      "containerd.io/gc.ref.content.l.1": d(3),
    });
    expect(childGcLabels([{ mediaType: MediaType.ociManifest, digest: d(4), size: 1 }])).toEqual({
      "containerd.io/gc.ref.content.m.0": d(4),
    });
  });
});

describe("platforms", () => {
  it("parses and matches (arm64 means v8)", () => {
    expect(parsePlatform("linux/arm64")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(parsePlatform("linux/arm/v7")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(platformMatches(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64" })).toBe(true);
    expect(platformMatches(parsePlatform("linux/amd64"), { os: "linux", architecture: "arm64" })).toBe(false);
    expect(
      platformMatches(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v6" }),
    ).toBe(false);
    expect(() => parsePlatform("linux/amd64/v1/extra")).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});

describe("image config → process", () => {
  const passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
  const group = "root:x:0:\napp:x:1001:\nextra:x:2000:app,other\n";
  it("resolves names from passwd and group, supplementary groups for a bare user", () => {
    expect(resolveUser("app", { passwd, group })).toEqual({ uid: 1000, gid: 1001, additionalGids: [2000] });
    expect(resolveUser("app:extra", { passwd, group })).toEqual({ uid: 1000, gid: 2000, additionalGids: [] });
    expect(resolveUser("1000", { passwd, group })).toEqual({ uid: 1000, gid: 1001, additionalGids: [2000] });
    expect(resolveUser("42:43", { passwd: null, group: null })).toEqual({
      uid: 42,
      gid: 43,
      additionalGids: [],
    });
    expect(() => resolveUser("ghost", { passwd, group })).toThrow(
      expect.objectContaining({ code: "not_found" }),
    );
  });
  it("merges Env by name", () => {
    expect(mergeEnv(["PATH=/bin", "A=1"], ["A=2", "B=3"])).toEqual(["PATH=/bin", "A=2", "B=3"]);
  });
});

describe("registry challenges and archive paths", () => {
  it("parses WWW-Authenticate", () => {
    expect(parseChallenges('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"')).toEqual(
      [
        {
          scheme: "bearer",
          params: { realm: "https://a/token", service: "reg", scope: "repository:x:pull" },
        },
      ],
    );
  });
  it.each(["../x", "a/../../x", "/etc/passwd", "C:\\x", "a\0b"])("refuses archive entry %j", (name) => {
    expect(() => archivePath(name)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });
  it("keeps ordinary entries", () => {
    expect(archivePath("./blobs/sha256/ab")).toBe("blobs/sha256/ab");
  });
});

describe("a backend without images", () => {
  it("answers every call with NotImplementedError", async () => {
    const images = unsupportedImageService("local");
    await expect(images.pull("busybox")).rejects.toMatchObject({ code: "not_implemented" });
    await expect(images.list()).rejects.toMatchObject({ code: "not_implemented" });
  });
});
