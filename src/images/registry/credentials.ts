import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, UnauthenticatedError } from "../../libcontainerd/types/errors.js";
import { DOCKER_HUB } from "../reference.js";

/** A user name and password (or token), or an identity token from `docker login`. */
export interface Credentials {
  username: string;
  password: string;
}

/** Credentials for a registry domain, or undefined for anonymous access. */
export type CredentialsProvider = (domain: string, signal?: AbortSignal) => Promise<Credentials | undefined>;

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** The key Docker files Docker Hub's credentials under. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

/** `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), as the docker CLI reads it. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

function hostOfKey(key: string): string {
  // Keys are hosts, or URLs such as https://index.docker.io/v1/.
  const stripped = key.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  return stripped === "index.docker.io" || stripped === "registry-1.docker.io" ? DOCKER_HUB : stripped;
}

/**
 * Credentials from a docker config file: `auths` entries, `credHelpers` per registry and the
 * `credsStore` default, both run as `docker-credential-<name> get` as the docker CLI does.
 */
export function dockerConfigCredentials(path = defaultDockerConfigPath()): CredentialsProvider {
  return async (domain, signal) => {
    let config: DockerConfig;
    try {
      config = JSON.parse(
        await readFile(path, { encoding: "utf8", ...(signal ? { signal } : {}) }),
      ) as DockerConfig;
    } catch (err) {
      if ((err as { code?: unknown }).code === "ENOENT") return undefined;
      throw new InvalidArgumentError(`cannot read docker config ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const helper = config.credHelpers?.[domain] ?? config.credsStore;
    if (helper) {
      const fromHelper = await runHelper(helper, domain === DOCKER_HUB ? DOCKER_HUB_KEY : domain, signal);
      if (fromHelper) return fromHelper;
    }
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (hostOfKey(key) !== domain) continue;
      if (entry.identitytoken) return { username: "<token>", password: entry.identitytoken };
      if (entry.username !== undefined && entry.password !== undefined)
        return { username: entry.username, password: entry.password };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
    }
    return undefined;
  };
}

/** The credential-helper protocol: server URL on stdin, `{ Username, Secret }` on stdout. */
function runHelper(name: string, serverUrl: string, signal?: AbortSignal): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    return Promise.reject(new InvalidArgumentError(`invalid credential helper name ${JSON.stringify(name)}`));
  return new Promise((resolve, reject) => {
    const child = execFile(
      `docker-credential-${name}`,
      ["get"],
      { timeout: 30_000, ...(signal ? { signal } : {}) },
      (err, stdout, stderr) => {
        if (err) {
          // Helpers answer "credentials not found in native keychain" when they hold nothing.
          if (/not found/i.test(`${stdout}${stderr}`)) return resolve(undefined);
          return reject(
            new UnauthenticatedError(
              `credential helper docker-credential-${name} failed: ${(stderr || err.message).trim()}`,
              { cause: err },
            ),
          );
        }
        try {
          const reply = JSON.parse(stdout) as { Username?: string; Secret?: string };
          if (!reply.Secret) return resolve(undefined);
          resolve({ username: reply.Username ?? "", password: reply.Secret });
        } catch (parseErr) {
          reject(
            new UnauthenticatedError(`credential helper docker-credential-${name} gave no JSON`, {
              cause: parseErr,
            }),
          );
        }
      },
    );
    child.stdin?.end(serverUrl);
  });
}
