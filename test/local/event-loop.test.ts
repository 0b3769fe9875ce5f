import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { ensureFakeLibrary } from "./fake.js";

const here = path.dirname(fileURLToPath(import.meta.url));

it("an awaited exit keeps Node alive although koffi callbacks do not", () => {
  ensureFakeLibrary();
  // tsx keeps a cache in TMPDIR; give the child its own and remove it afterwards.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lcd-event-loop-"));
  try {
    const output = execFileSync(
      process.execPath,
      ["--import", "tsx", path.join(here, "fixtures/wait-only.ts")],
      {
        encoding: "utf8",
        timeout: 20_000,
        env: { ...process.env, TMPDIR: tmp },
      },
    );
    expect(output).toBe("exit 42\n");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
