import { describe, expect, it } from "vitest";
import { applyConfigChanges } from "../../src/images/config-changes.js";

// `docker commit --change` / `docker import --change`: Dockerfile instructions applied to a config.
describe("applyConfigChanges", () => {
  const base = { Env: ["PATH=/usr/bin:/bin", "HOME=/root"], Cmd: ["sh"], WorkingDir: "/srv" };

  it("takes CMD and ENTRYPOINT in exec and shell form; an ENTRYPOINT alone clears the CMD, as a build does", () => {
    expect(applyConfigChanges(base, ['CMD ["echo", "hi"]']).Cmd).toEqual(["echo", "hi"]);
    expect(applyConfigChanges(base, ["CMD echo $HOME"]).Cmd).toEqual(["/bin/sh", "-c", "echo $HOME"]);
    const entry = applyConfigChanges(base, ['ENTRYPOINT ["/bin/app"]']);
    expect(entry).toMatchObject({ Entrypoint: ["/bin/app"], Cmd: null });
    expect(applyConfigChanges(base, ["CMD x", 'ENTRYPOINT ["/bin/app"]']).Cmd).toEqual([
      "/bin/sh",
      "-c",
      "x",
    ]);
  });

  it("reads ENV and LABEL pairs with quotes and $VAR from the config's Env, and the legacy one-pair form", () => {
    const changed = applyConfigChanges(base, [
      'ENV A=1 B="two words" PATH=$PATH:/opt/bin',
      "ENV LEGACY some value",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a template
      "LABEL version=${A} 'quoted key'=yes",
    ]);
    expect(changed.Env).toEqual([
      "PATH=/usr/bin:/bin:/opt/bin",
      "HOME=/root",
      "A=1",
      "B=two words",
      "LEGACY=some value",
    ]);
    expect(changed.Labels).toEqual({ version: "1", "quoted key": "yes" });
    expect(base.Env).toEqual(["PATH=/usr/bin:/bin", "HOME=/root"]);
  });

  it("sets EXPOSE (ranges, protocols), USER, WORKDIR (relative to the current one), VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD", () => {
    const changed = applyConfigChanges(base, [
      "EXPOSE 80 53/udp 8000-8001",
      "USER nobody:nogroup",
      "WORKDIR data",
      'VOLUME ["/v1", "/v2"]',
      "STOPSIGNAL SIGINT",
      "HEALTHCHECK --interval=1m30s --retries=2 CMD wget -q localhost",
      "ONBUILD RUN make",
    ]);
    expect(Object.keys(changed.ExposedPorts ?? {})).toEqual(["80/tcp", "53/udp", "8000/tcp", "8001/tcp"]);
    expect(changed).toMatchObject({
      User: "nobody:nogroup",
      WorkingDir: "/srv/data",
      Volumes: { "/v1": {}, "/v2": {} },
      StopSignal: "SIGINT",
      Healthcheck: { Test: ["CMD-SHELL", "wget -q localhost"], Interval: 90e9, Retries: 2 },
      OnBuild: ["RUN make"],
    });
    expect(applyConfigChanges(base, ["HEALTHCHECK NONE"]).Healthcheck).toEqual({ Test: ["NONE"] });
  });

  it("refuses with dockerd's words what BuildFromConfig refuses", () => {
    const refused = (change: string) => () => applyConfigChanges(base, [change]);
    expect(refused("RUN make")).toThrow("run is not a valid change command");
    expect(refused("FROM busybox")).toThrow("from is not a valid change command");
    expect(refused("BOGUS x")).toThrow("bogus is not a valid change command");
    expect(refused("EXPOSE eighty")).toThrow("Invalid containerPort: eighty");
    expect(refused("STOPSIGNAL SIGNOPE")).toThrow("Invalid signal: SIGNOPE");
    expect(refused("USER a b")).toThrow("USER requires exactly one argument");
    expect(refused("ENV")).toThrow("ENV requires at least one argument");
    expect(refused("ONBUILD FROM x")).toThrow("FROM isn't allowed as an ONBUILD trigger");
    expect(refused("HEALTHCHECK --interval=soon CMD true")).toThrow('time: invalid duration "soon"');
  });
});
