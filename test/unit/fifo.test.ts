import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { FifoError, mkfifo } from "../../src/libcontainerd/remote/fifo.js";

const dir = mkdtempSync(join(tmpdir(), "fifo-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mkfifo", () => {
  it("through native/fifo: a FIFO with the mode asked for; a second one on the same path is EEXIST", async () => {
    const path = join(dir, "addon");
    await mkfifo(path, 0o600);
    const stat = statSync(path);
    expect(stat.isFIFO()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    const again = mkfifo(path);
    await expect(again).rejects.toBeInstanceOf(FifoError);
    await expect(again).rejects.toMatchObject({ code: "EEXIST" });
    await expect(mkfifo(join(dir, "no", "such", "dir"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(mkfifo(join(dir, "a\0b"))).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("without the addon, through mkfifo(1): the same FIFO and the same EEXIST", async () => {
    const path = join(dir, "fallback");
    const script = `
      import { mkfifo } from "./src/libcontainerd/remote/fifo.ts";
      await mkfifo(${JSON.stringify(path)}, 0o600);
      const again = await mkfifo(${JSON.stringify(path)}).then(() => "made", (err) => err.code);
      console.log(again);`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        env: { ...process.env, CTRD_FIFO_ADDON: join(dir, "not-built.node") },
      },
    );
    expect(stdout.trim()).toBe("EEXIST");
    expect(statSync(path).isFIFO()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
