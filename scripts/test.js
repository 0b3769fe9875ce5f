#!/usr/bin/env node
// Runs the whole vitest suite in a TMPDIR of its own, then checks that the tests left nothing
// behind in it (temp dirs, containerd, shims, runc): every test cleans up after itself, and a
// leak fails the run. Ends with one plain line, "tests: N passed, N failed, N skipped", which CI
// reads. A run that executed no test fails.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runDir = mkdtempSync(join(tmpdir(), "lcd-run-"));
const report = join(tmpdir(), `lcd-vitest-report-${process.pid}.json`);
const args = [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync("npx", args, { stdio: "inherit", env: { ...process.env, TMPDIR: runDir } });

let summary;
try {
  summary = JSON.parse(readFileSync(report, "utf8"));
} catch {
  summary = undefined;
}
rmSync(report, { force: true });

function processesUnder(dir) {
  const found = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      if (cmdline.includes(dir)) found.push(`${pid}: ${cmdline}`);
    } catch {}
  }
  return found;
}

// Shims exit a moment after their task is deleted; give them that moment.
let leftDirs = [];
let leftProcesses = [];
for (let attempt = 0; attempt < 30; attempt++) {
  // tsx keeps its compile cache in TMPDIR (tsx-<uid>); that is the tool's, not a leak.
  leftDirs = readdirSync(runDir).filter((name) => !/^tsx-\d+$/.test(name));
  leftProcesses = processesUnder(runDir);
  if (leftDirs.length === 0 && leftProcesses.length === 0) break;
  spawnSync("sleep", ["0.2"]);
}
const leaked = leftDirs.length > 0 || leftProcesses.length > 0;
if (leaked) {
  console.log(`\nThe tests left things behind in ${runDir}:`);
  console.log(`  dirs: ${leftDirs.join(", ") || "none"}`);
  console.log(`  processes:\n    ${leftProcesses.join("\n    ") || "none"}`);
} else {
  rmSync(runDir, { recursive: true, force: true });
}

if (!summary) {
  console.log("tests: 0 passed, 1 failed (vitest wrote no report)");
  process.exit(run.status || 1);
}
const passed = summary.numPassedTests;
// A file that failed before any of its tests ran (an error at import) counts as one failure: its
// tests are not in numFailedTests, and vitest lists them as skipped.
const brokenFiles = (summary.testResults ?? []).filter(
  (file) => file.status === "failed" && !file.assertionResults.some((test) => test.status === "failed"),
).length;
const counted = summary.numFailedTests + brokenFiles + (leaked ? 1 : 0);
// vitest failing with every test passed: an error outside any test (an unhandled rejection).
const failed = counted === 0 && run.status !== 0 ? 1 : counted;
const skipped = summary.numPendingTests + summary.numTodoTests;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status !== 0 ? run.status || 1 : passed === 0 || leaked ? 1 : 0);
