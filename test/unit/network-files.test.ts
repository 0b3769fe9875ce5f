import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { removeOrphanTemporaries } from "../../src/network/files.js";

const dir = mkdtempSync(join(tmpdir(), "net-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("temporaries of a writer that died are removed; a live writer's, records and other files stay", async () => {
  const dead = spawnSync("true").pid!;
  writeFileSync(join(dir, `web.json.${dead}.k3x9.tmp`), "{");
  writeFileSync(join(dir, `db.json.${process.pid}.a1b2.tmp`), "{");
  writeFileSync(join(dir, "web.json"), "{}");
  writeFileSync(join(dir, "notes.tmp"), "");
  await removeOrphanTemporaries(dir);
  expect(readdirSync(dir).sort()).toEqual([`db.json.${process.pid}.a1b2.tmp`, "notes.tmp", "web.json"]);
  await removeOrphanTemporaries(join(dir, "missing"));
});
