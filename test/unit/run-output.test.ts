import { PassThrough, Readable } from "node:stream";
import { expect, test } from "vitest";
import { consumeOutput } from "../../src/run/output.js";

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
