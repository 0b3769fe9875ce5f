import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dockerConfigCredentials } from "../../src/images/registry/credentials.js";
import { useRemote } from "../harness/remote.js";
import { publish, runImage, useRegistry } from "./helpers.js";

describe("registry auth: Basic (htpasswd), docker config and credential helpers", () => {
  const remote = useRemote("images-auth");
  const reg = useRegistry({ auth: "htpasswd" });

  it("anonymous and wrong credentials are UnauthenticatedError; right ones pull", async () => {
    const { ref } = await publish(reg, "secret:1");
    expect(await remote.client.images.pull(ref).catch((e: unknown) => e)).toMatchObject({
      code: "unauthenticated",
    });
    const wrong = { username: reg.registry.username, password: "wrong" };
    expect(
      await remote.client.images.pull(ref, { credentials: wrong }).catch((e: unknown) => e),
    ).toMatchObject({
      code: "unauthenticated",
      message: expect.stringContaining("refused the credentials"),
    });
    const right = { username: reg.registry.username, password: reg.registry.password };
    await remote.client.images.pull(ref, { credentials: right });
    expect((await runImage(remote, remote.client, ref)).stdout).toContain("hello from the image");
  });

  it("reads ~/.docker/config.json: auths, credHelpers and credsStore programs", async () => {
    const { ref } = await publish(reg, "secret:2");
    const dir = join(reg.workDir, "docker-config");
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    const config = join(dir, "config.json");
    const auth = Buffer.from(`${reg.registry.username}:${reg.registry.password}`).toString("base64");
    writeFileSync(config, JSON.stringify({ auths: { [reg.registry.host]: { auth } } }));
    await remote.client.images.pull(ref, { credentials: dockerConfigCredentials(config) });

    // A helper program speaks the docker-credential protocol: server on stdin, JSON on stdout.
    const helper = join(bin, "docker-credential-lcdtest");
    writeFileSync(
      helper,
      `#!/bin/sh\nread server\n[ "$server" = "${reg.registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `echo '{"Username":"${reg.registry.username}","Secret":"${reg.registry.password}"}'\n`,
    );
    chmodSync(helper, 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      writeFileSync(config, JSON.stringify({ credHelpers: { [reg.registry.host]: "lcdtest" } }));
      await remote.client.images.remove(ref);
      await remote.client.images.pull(ref, { credentials: dockerConfigCredentials(config) });
      writeFileSync(config, JSON.stringify({ credsStore: "lcdtest" }));
      await remote.client.images.remove(ref);
      await remote.client.images.pull(ref, { credentials: dockerConfigCredentials(config) });
      writeFileSync(config, JSON.stringify({ credsStore: "lcdtest-missing" }));
      expect(
        await remote.client.images
          .pull(ref, { credentials: dockerConfigCredentials(config) })
          .catch((e: unknown) => e),
      ).toMatchObject({ code: "unauthenticated" });
    } finally {
      process.env.PATH = path;
    }
  });
});

describe("registry auth: Bearer tokens from the realm the registry names", () => {
  const remote = useRemote("images-token");
  const reg = useRegistry({ auth: "token" });

  it("gets a token with the credentials and pulls; wrong ones are UnauthenticatedError", async () => {
    const { ref } = await publish(reg, "tokened:1");
    const wrong = { username: reg.registry.username, password: "nope" };
    expect(
      await remote.client.images.pull(ref, { credentials: wrong }).catch((e: unknown) => e),
    ).toMatchObject({
      code: "unauthenticated",
    });
    const right = { username: reg.registry.username, password: reg.registry.password };
    await remote.client.images.pull(ref, { credentials: right });
    expect((await runImage(remote, remote.client, ref)).stdout).toContain("hello from the image");
  });
});

describe("registry over TLS with a CA made by the test", () => {
  const remote = useRemote("images-tls");
  const reg = useRegistry({ tls: true });

  it("pulls with the CA given; without it the TLS failure is a clear UnavailableError", async () => {
    const { ref } = await publish(reg, "tls:1");
    expect(await remote.client.images.pull(ref, { plainHttp: false }).catch((e: unknown) => e)).toMatchObject(
      {
        code: "unavailable",
        message: expect.stringContaining("TLS"),
      },
    );
    await remote.client.images.pull(ref, { ca: reg.registry.ca ?? "" });
    expect((await runImage(remote, remote.client, ref)).stdout).toContain("hello from the image");
  });
});
