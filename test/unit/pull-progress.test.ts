import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { PullProgressView } from "../../src/cli/pull-progress.js";

function capture(): { out: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (c: Buffer) => {
    text += c.toString();
  });
  return { out: stream as unknown as NodeJS.WriteStream, text: () => text };
}

const layer = `sha256:${"ab".repeat(32)}`;

describe("pull progress", () => {
  it("off a terminal: one line per state change, none per byte", () => {
    const { out, text } = capture();
    const view = new PullProgressView(out, false);
    view.update({ digest: layer, kind: "layer", state: "waiting", current: 0, total: 10 });
    for (let i = 1; i < 10; i++)
      view.update({ digest: layer, kind: "layer", state: "downloading", current: i, total: 10 });
    view.update({ digest: layer, kind: "layer", state: "downloaded", current: 10, total: 10 });
    view.update({ digest: layer, kind: "layer", state: "unpacked", current: 10, total: 10 });
    view.finish();
    expect(text()).toBe("abababababab: waiting\nabababababab: downloaded\nabababababab: unpacked\n");
  });

  it("on a terminal: a bar per layer, redrawn in place", () => {
    const { out, text } = capture();
    const view = new PullProgressView(out, true);
    view.update({ digest: layer, kind: "layer", state: "downloading", current: 5, total: 10 });
    view.finish(); // draws now, instead of waiting for the redraw timer
    view.update({ digest: layer, kind: "layer", state: "unpacked", current: 10, total: 10 });
    view.finish();
    expect(text()).toContain(`[${"=".repeat(15)}${" ".repeat(15)}]`);
    expect(text()).toContain("\x1b[1A");
    expect(text()).toContain(`[${"=".repeat(30)}]`);
  });
});
