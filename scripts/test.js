#!/usr/bin/env node
// Runs the whole vitest suite and ends with one plain line, "tests: N passed, N failed, N skipped",
// which CI reads. The exit code is vitest's; a run that executed no test fails.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = mkdtempSync(join(tmpdir(), "lcd-vitest-"));
const report = join(out, "report.json");
const args = [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync("npx", args, { stdio: "inherit" });

let summary;
try {
  summary = JSON.parse(readFileSync(report, "utf8"));
} catch {
  summary = undefined;
}
rmSync(out, { recursive: true, force: true });

if (!summary) {
  console.log("tests: 0 passed, 1 failed (vitest wrote no report)");
  process.exit(run.status || 1);
}
const passed = summary.numPassedTests;
const failed = summary.numFailedTests + (summary.numRuntimeErrorTestSuites ?? 0);
const skipped = summary.numPendingTests + summary.numTodoTests;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status !== 0 ? run.status || 1 : passed === 0 ? 1 : 0);
