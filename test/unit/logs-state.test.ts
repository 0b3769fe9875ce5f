import { describe, expect, test } from "vitest";
import { humanDuration, statusText } from "../../src/cli/container-status.js";
import { renderTemplate } from "../../src/cli/go-template.js";
import { parseLogOpts } from "../../src/cli/log-options.js";
import { parseTail, parseTimeFlag } from "../../src/cli/logs.js";
import { formatAge } from "../../src/cli/output.js";
import { parseRecord } from "../../src/logs/json-file.js";
import { logOptionsFromLabels } from "../../src/logs/labels.js";
import { loggerUri } from "../../src/logs/logger-binary.js";
import { inspectView } from "../../src/state/inspect.js";
import { exitLabels, rememberedState, STATE_LABELS, startLabels } from "../../src/state/labels.js";
import type { ObservedState } from "../../src/state/observe.js";

const now = Date.parse("2026-11-30T10:00:00Z");
const ago = (ms: number) => new Date(now - ms);

function observed(partial: Partial<ObservedState>): ObservedState {
  return {
    task: "none",
    pid: 0,
    remembered: { oomKilled: false, restartCount: 0 },
    labels: {},
    info: { id: "c1", runtime: { name: "io.containerd.runc.v2" }, labels: {} },
    ...partial,
  };
}

describe("docker's STATUS words", () => {
  test("humanDuration as go-units prints it", () => {
    expect(humanDuration(500)).toBe("Less than a second");
    expect(humanDuration(1000)).toBe("1 second");
    expect(humanDuration(59_000)).toBe("59 seconds");
    expect(humanDuration(61_000)).toBe("About a minute");
    expect(humanDuration(5 * 60_000)).toBe("5 minutes");
    expect(humanDuration(60 * 60_000)).toBe("About an hour");
    expect(humanDuration(5 * 3_600_000)).toBe("5 hours");
    expect(humanDuration(3 * 24 * 3_600_000)).toBe("3 days");
    expect(humanDuration(21 * 24 * 3_600_000)).toBe("3 weeks");
    expect(humanDuration(90 * 24 * 3_600_000)).toBe("3 months");
    expect(humanDuration(3 * 365 * 24 * 3_600_000)).toBe("3 years");
  });

  test("CREATED as docker ps prints it", () => {
    expect(formatAge(ago(300), now)).toBe("Less than a second ago");
    expect(formatAge(ago(1000), now)).toBe("1 second ago");
    expect(formatAge(ago(90_000), now)).toBe("About a minute ago");
    expect(formatAge(ago(3 * 3_600_000), now)).toBe("3 hours ago");
    expect(formatAge(undefined, now)).toBe("-");
  });

  test("Up, Paused, Exited (code) … ago, Created", () => {
    const remembered = { oomKilled: false, restartCount: 0, startedAt: ago(5000) };
    expect(statusText(observed({ task: "running", remembered }), now)).toBe("Up 5 seconds");
    expect(statusText(observed({ task: "paused", remembered }), now)).toBe("Up 5 seconds (Paused)");
    expect(
      statusText(observed({ task: "stopped", exit: { exitCode: 3, exitedAt: ago(120_000) } }), now),
    ).toBe("Exited (3) 2 minutes ago");
    expect(
      statusText(observed({ remembered: { ...remembered, exitCode: 137, finishedAt: ago(2000) } }), now),
    ).toBe("Exited (137) 2 seconds ago");
    expect(statusText(observed({}), now)).toBe("Created");
    expect(statusText(observed({ task: "created" }), now)).toBe("Created");
    // A run whose end nobody saw (observe() gives it Docker's 255): no time to tell.
    expect(statusText(observed({ remembered: { ...remembered, exitCode: 255 } }), now)).toBe("Exited (255)");
  });
});

describe("remembered state labels", () => {
  test("a start clears the last exit and counts restarts; an exit is written whole", () => {
    const first = startLabels(rememberedState({}), ago(0));
    expect(first[STATE_LABELS.restartCount]).toBe("0");
    const afterExit = {
      ...(first as Record<string, string>),
      ...exitLabels({ exitCode: 3, exitedAt: ago(0), oomKilled: true }),
    };
    const state = rememberedState(afterExit);
    expect(state).toMatchObject({ exitCode: 3, oomKilled: true, restartCount: 0 });
    const second = startLabels(state, ago(0));
    expect(second).toMatchObject({ [STATE_LABELS.restartCount]: "1", [STATE_LABELS.exitCode]: undefined });
  });

  test("garbage in labels reads as absent, not as a crash", () => {
    expect(
      rememberedState({
        [STATE_LABELS.exitCode]: "x",
        [STATE_LABELS.startedAt]: "never",
        [STATE_LABELS.restartCount]: "-",
      }),
    ).toEqual({ oomKilled: false, restartCount: 0 });
    expect(logOptionsFromLabels({})).toBeUndefined();
    expect(logOptionsFromLabels({ "io.ctrd.log.path": "/l", "io.ctrd.log.maxSize": "big" })).toEqual({
      path: "/l",
    });
  });
});

describe("inspect", () => {
  test("docker's shape from spec, labels and what was observed", () => {
    const view = inspectView(
      observed({
        task: "running",
        pid: 42,
        remembered: {
          oomKilled: false,
          restartCount: 2,
          startedAt: ago(1000),
          finishedAt: ago(5000),
          exitCode: 1,
        },
        labels: {
          "io.ctrd.log.path": "/logs/c1.log",
          "io.ctrd.log.maxSize": "1000",
          "io.ctrd/command": "[]",
          app: "web",
        },
        info: {
          id: "c1",
          runtime: { name: "io.containerd.runc.v2" },
          labels: {},
          createdAt: ago(10_000),
          spec: {
            ociVersion: "1.0.2",
            hostname: "c1",
            process: {
              args: ["sh", "-c", "x"],
              cwd: "/w",
              env: ["A=1"],
              user: { uid: 1000, gid: 1000 },
              terminal: true,
            },
            root: { path: "/r" },
            mounts: [
              { destination: "/proc", type: "proc", source: "proc" },
              { destination: "/data", type: "bind", source: "/host", options: ["rbind", "ro"] },
            ],
            linux: {
              resources: {
                memory: { limit: 1024 },
                cpu: { quota: 150_000, period: 100_000 },
                pids: { limit: -1 },
              },
            },
          },
        },
      }),
    );
    expect(view).toMatchObject({
      Id: "c1",
      Name: "/c1",
      Path: "sh",
      Args: ["-c", "x"],
      State: { Status: "running", Running: true, Pid: 42, ExitCode: 0, FinishedAt: ago(5000).toISOString() },
      RestartCount: 2,
      LogPath: "/logs/c1.log",
      Config: { User: "1000:1000", Env: ["A=1"], WorkingDir: "/w", Tty: true, Labels: { app: "web" } },
      HostConfig: {
        Memory: 1024,
        NanoCpus: 1.5e9,
        PidsLimit: null,
        LogConfig: { Type: "json-file", Config: { "max-size": "1000" } },
      },
      Mounts: [{ Type: "bind", Source: "/host", Destination: "/data", RW: false }],
    });
  });
});

describe("ctrd's parsers", () => {
  test("--since/--until: Unix, RFC 3339, durations before now; garbage is a usage error", () => {
    expect(parseTimeFlag("1700000000.5", "--since").getTime()).toBe(1_700_000_000_500);
    expect(parseTimeFlag("2026-11-30T09:00:00Z", "--since").toISOString()).toBe("2026-11-30T09:00:00.000Z");
    expect(parseTimeFlag("1h30m", "--since", now).getTime()).toBe(now - 90 * 60_000);
    expect(() => parseTimeFlag("yesterday", "--since")).toThrow(/invalid --since/);
    expect(() => parseTimeFlag("10x", "--since")).toThrow(/invalid --since/);
  });

  test("--tail: a count or all", () => {
    expect(parseTail("all")).toBeUndefined();
    expect(parseTail("0")).toBe(0);
    expect(() => parseTail("-1")).toThrow(/invalid --tail/);
    expect(() => parseTail("ten")).toThrow(/invalid --tail/);
  });

  test("--log-opt: max-size and max-file as Docker takes them", () => {
    expect(parseLogOpts(["max-size=10m", "max-file=3"])).toEqual({ maxSize: 10 * 1024 * 1024, maxFiles: 3 });
    expect(() => parseLogOpts(["max-file=3"])).toThrow(/needs max-size/);
    expect(() => parseLogOpts(["max-size=lots"])).toThrow(/invalid --log-opt max-size/);
    expect(() => parseLogOpts(["mode=non-blocking"])).toThrow(/invalid --log-opt/);
  });

  test("Go templates: fields, json, Go's printing, errors", () => {
    const data = {
      State: { ExitCode: 3, Running: false },
      Config: { Cmd: ["a", "b"], Labels: { z: "1", a: "2" } },
      N: null,
    };
    expect(renderTemplate("{{.State.ExitCode}}", data)).toBe("3");
    expect(renderTemplate("code={{ .State.ExitCode }} run={{.State.Running}}", data)).toBe(
      "code=3 run=false",
    );
    expect(renderTemplate("{{json .Config}}", data)).toBe('{"Cmd":["a","b"],"Labels":{"z":"1","a":"2"}}');
    expect(renderTemplate("{{.Config.Cmd}} {{.Config.Labels}} {{.N}} {{.Nope}}", data)).toBe(
      "[a b] map[a:2 z:1] <nil> <no value>",
    );
    expect(() => renderTemplate("{{.State", data)).toThrow(/unclosed/);
    expect(() => renderTemplate("{{if .State}}x{{end}}", data)).toThrow(/not supported/);
    expect(() => renderTemplate("{{.State..X}}", data)).toThrow(/bad field/);
  });
});

describe("the logger's contract", () => {
  test("the URI: the logger's path, then the query containerd turns into argument pairs", () => {
    expect(
      loggerUri({ path: "/var/log/a b&c.log", maxSize: 1000, maxFiles: 3 }, "/opt/my logger/ctrd-logger"),
    ).toBe(
      "binary:///opt/my%20logger/ctrd-logger?path=%2Fvar%2Flog%2Fa%20b%26c.log&max-size=1000&max-files=3",
    );
  });

  test("records: Docker's json-file lines; anything else is skipped", () => {
    expect(
      parseRecord('{"log":"hi\\n","stream":"stderr","time":"2026-11-30T10:00:00.123456789Z"}'),
    ).toMatchObject({
      log: "hi\n",
      stream: "stderr",
      timestamp: "2026-11-30T10:00:00.123456789Z",
    });
    expect(parseRecord('{"log":"hi","stream":"stdin","time":"2026-11-30T10:00:00Z"}')).toBeUndefined();
    expect(parseRecord('{"log":"hi","stream":"stdout","time":"soon"}')).toBeUndefined();
    expect(parseRecord('{"log":"cut')).toBeUndefined();
  });
});
