import { beforeAll, describe, expect, it } from "vitest";
import { useEngine } from "./harness.js";

// Everyday docker CLI commands an audit against dockerd 20.10 found answered otherwise (Debian's CLI).
const engine = useEngine("lcd-engine-audit-");

beforeAll(async () => {
  // `docker run` says on stderr that it pulls an image it does not have.
  expect(await engine.docker(["pull", "-q", engine.image])).toMatchObject({ code: 0 });
}, 60_000);

/** What a command must have done: exit 0 with nothing on stderr; its stdout. */
async function ok(args: readonly string[]): Promise<string> {
  const result = await engine.docker(args);
  expect(result, args.join(" ")).toMatchObject({ code: 0, stderr: "" });
  return result.stdout;
}

describe("ctrd serve as dockerd: pruning and disk usage", () => {
  it("docker builder prune and docker system prune succeed (POST /build/prune was a 404)", async () => {
    expect(await ok(["builder", "prune", "-f"])).toContain("Total reclaimed space: 0B");
    const system = await ok(["system", "prune", "-f"]);
    expect(system).toContain("Total reclaimed space: 0B");
  });

  it("docker system df counts what containers wrote; -v shows their command, age, status and size", async () => {
    await ok(["run", "-d", "--name", "df-running", engine.image, "sleep", "1000"]);
    await ok(["exec", "df-running", "sh", "-c", "head -c 1000000 /dev/zero > /blob"]);
    await ok([
      "run",
      "--name",
      "df-exited",
      "-l",
      "audit=prune",
      engine.image,
      "sh",
      "-c",
      "head -c 500000 /dev/zero > /blob",
    ]);
    const summary = await ok([
      "system",
      "df",
      "--format",
      "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}",
    ]);
    expect(summary.split("\n")).toContain("Containers|2|1.5MB|500kB (33%)");
    const verbose = (await ok(["system", "df", "-v"])).split("\n");
    const running = verbose.find((line) => line.trim().endsWith("df-running")) ?? "";
    expect(running).toMatch(/ "sleep 1000" +0 +1MB +(Less than a second|\d+ seconds?) ago +Up /);
    const exited = verbose.find((line) => line.trim().endsWith("df-exited")) ?? "";
    expect(exited).toMatch(/ "sh -c 'head -c 5000…" +0 +500kB +.* ago +Exited \(0\) /);
    await ok(["rm", "-f", "df-running"]);
  });

  it("docker container prune reports the space the containers it removed had written", async () => {
    const pruned = await ok(["container", "prune", "-f", "--filter", "label=audit=prune"]);
    expect(pruned).toContain("Total reclaimed space: 500kB");
    expect(await ok(["ps", "-aq", "--filter", "label=audit=prune"])).toBe("");
  });
});
