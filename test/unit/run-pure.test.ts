import { PassThrough, Readable } from "node:stream";
import { expect, test } from "vitest";
import type { Client } from "../../src/libcontainerd/types/client.js";
import { consumeOutput } from "../../src/run/output.js";
import { runSpec } from "../../src/run/run.js";

const source = () => Readable.from([Buffer.from("hello "), Buffer.from("world\n")]);

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

test("capture keeps up to the cap and reads the rest (truncated)", async () => {
  const unused = sink();
  expect(await consumeOutput(source(), "capture", 100, unused.stream)).toEqual({
    text: "hello world\n",
    bytes: 12,
    truncated: false,
  });
  expect(await consumeOutput(source(), "capture", 8, unused.stream)).toEqual({
    text: "hello wo",
    bytes: 12,
    truncated: true,
  });
  expect(unused.text()).toBe("");
});

test("discard reads everything and keeps nothing; inherit and a Writable get every byte and are not ended", async () => {
  const unused = sink();
  expect(await consumeOutput(source(), "discard", 100, unused.stream)).toEqual({
    text: "",
    bytes: 12,
    truncated: false,
  });
  const inherited = sink();
  expect(await consumeOutput(source(), "inherit", 100, inherited.stream)).toMatchObject({
    text: "",
    bytes: 12,
  });
  expect(inherited.text()).toBe("hello world\n");
  expect(inherited.stream.writableEnded).toBe(false);
  const given = sink();
  await consumeOutput(source(), given.stream, 100, unused.stream);
  expect(given.text()).toBe("hello world\n");
  expect(given.stream.writableEnded).toBe(false);
  expect(unused.text()).toBe("");
});

test("no stream: empty output", async () => {
  expect(await consumeOutput(null, "capture", 10, new PassThrough())).toEqual({
    text: "",
    bytes: 0,
    truncated: false,
  });
});

test("runSpec: docker's defaults and the options on Linux; on HCS, Linux-only options are refused, not dropped", () => {
  const linux = { backend: "remote", namespace: "ns" } as Pick<Client, "backend" | "namespace"> as Client;
  const spec = runSpec(linux, "r1", {
    args: ["sh"],
    rootfs: "/r",
    env: { A: "1" },
    user: "1000:100",
    readonlyRootfs: true,
    tmpfs: { "/tmp": "" },
    init: true,
  });
  expect(spec.process?.args).toEqual(["/run/ctrd-init", "--", "sh"]);
  expect(spec.process?.env).toContain("A=1");
  expect(spec.process?.user).toMatchObject({ uid: 1000, gid: 100 });
  expect(spec.root).toEqual({ path: "/r", readonly: true });
  expect(spec.linux?.cgroupsPath).toBe("/ns/r1");
  expect(spec.mounts).toContainEqual({
    destination: "/tmp",
    type: "tmpfs",
    source: "tmpfs",
    options: ["noexec", "nosuid", "nodev"],
  });
  expect(() => runSpec(linux, "r2", { args: ["sh"], rootfs: "/r", user: "root" })).toThrow(
    expect.objectContaining({ code: "invalid_argument" }),
  );
  const hcs = { backend: "local", namespace: "ns" } as Pick<Client, "backend" | "namespace"> as Client;
  expect(runSpec(hcs, "w1", { args: ["cmd"], rootfs: "\\\\?\\Volume{x}" }).root).toEqual({
    path: "\\\\?\\Volume{x}",
  });
  for (const option of [{ init: true }, { readonlyRootfs: true }, { tmpfs: {} }, { user: "1:1" }])
    expect(() => runSpec(hcs, "w2", { args: ["cmd"], ...option })).toThrow(
      expect.objectContaining({ code: "not_implemented" }),
    );
});
