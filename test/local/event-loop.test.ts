import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { ensureFakeLibrary } from "./fake.js";

const here = path.dirname(fileURLToPath(import.meta.url));

it("an awaited exit keeps Node alive although koffi callbacks do not", () => {
  ensureFakeLibrary();
  const output = execFileSync(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/wait-only.ts")],
    {
      encoding: "utf8",
      timeout: 20_000,
    },
  );
  expect(output).toBe("exit 42\n");
});
