// Builds the demo's image offline: a `docker save`-style tar whose one layer is busybox-static and
// its applets, with a Cmd that greets. `ctrd import` then takes it as it would any saved image.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { pack } from "tar-stream";

function tarBuffer(entries) {
  return new Promise((resolve, reject) => {
    const tar = pack();
    const chunks = [];
    tar.on("data", (c) => chunks.push(c));
    tar.on("end", () => resolve(Buffer.concat(chunks)));
    tar.on("error", reject);
    const mtime = new Date(1_700_000_000_000);
    for (const { body, ...header } of entries) tar.entry({ mtime, ...header }, body ?? "");
    tar.finalize();
  });
}

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

export async function writeDemoImage(file, name, busybox = "/bin/busybox") {
  const applets = execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  const layer = await tarBuffer([
    ...["bin", "etc", "proc", "sys", "dev", "tmp", "root"].map((dir) => ({
      name: `${dir}/`,
      type: "directory",
      mode: dir === "tmp" ? 0o1777 : 0o755,
    })),
    { name: "bin/busybox", mode: 0o755, body: readFileSync(busybox) },
    ...applets
      .filter((a) => a !== "busybox")
      .map((a) => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\n" },
    { name: "etc/group", mode: 0o644, body: "root:x:0:\n" },
    {
      name: "etc/motd",
      mode: 0o644,
      body: "Hello from an image: imported, unpacked into a snapshot, run.\n",
    },
  ]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: {
        Env: ["PATH=/bin"],
        Cmd: ["sh", "-c", 'cat /etc/motd; echo; echo "I am $(id -un) in $(pwd) on $(uname -sr)"; ls /'],
        WorkingDir: "/root",
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layer)}`] },
    }),
  );
  const configName = `${sha256(config)}.json`;
  const archive = await tarBuffer([
    { name: configName, body: config },
    { name: "layer/layer.tar", body: layer },
    {
      name: "manifest.json",
      body: JSON.stringify([{ Config: configName, RepoTags: [name], Layers: ["layer/layer.tar"] }]),
    },
  ]);
  await new Promise((resolve, reject) => createWriteStream(file).on("error", reject).end(archive, resolve));
}
