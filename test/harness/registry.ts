import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createSign, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, get as httpGet, type Server } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { requireBinary } from "./binaries.js";
import { scratchDir } from "./temp-dirs.js";

export interface RegistryOptions {
  /** `htpasswd`: Basic auth; `token`: Bearer tokens from a small token server (JWTs signed here). */
  auth?: "htpasswd" | "token";
  /** Serve HTTPS with a certificate from a CA made for this registry. */
  tls?: boolean;
}

/** A real distribution registry (Debian's docker-registry) on 127.0.0.1, with its own storage. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly dir: string;
  /** The CA that signed its certificate (PEM), with `tls`. */
  readonly ca?: string;
  readonly caFile?: string;
  /** The user the auth variants accept. */
  readonly username: string;
  readonly password: string;
  /** Where the registry keeps a blob: flip a byte there to tamper with it. */
  blobPath(digest: string): string;
  /** Blob GETs served so far (from the registry's access log), by digest. */
  blobFetches(): Map<string, number>;
  /** Digests served partially (206: a Range request resumed them). */
  rangeFetches(): string[];
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync(requireBinary("openssl"), args, { cwd, stdio: "pipe" });
}

/** A CA, and a server certificate for 127.0.0.1 signed by it. */
function makeCertificates(dir: string): { caFile: string; cert: string; key: string } {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-subj",
      "/CN=lcd-test-ca",
      "-days",
      "2",
    ],
    dir,
  );
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      "/CN=127.0.0.1",
    ],
    dir,
  );
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "san.ext",
    ],
    dir,
  );
  return { caFile: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

/**
 * The token server distribution's `token` auth expects (docs/spec/auth/token.md): Basic credentials
 * in, a JWT out, RS256-signed, its certificate in the `x5c` header (trusted via rootcertbundle),
 * granting what the `scope` asked for.
 */
async function startTokenServer(
  dir: string,
  username: string,
  password: string,
): Promise<{ server: Server; realm: string; certFile: string }> {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "token.key",
      "-out",
      "token.pem",
      "-subj",
      "/CN=lcd-token-issuer",
      "-days",
      "2",
    ],
    dir,
  );
  const key = readFileSync(join(dir, "token.key"), "utf8");
  const certDer = Buffer.from(
    readFileSync(join(dir, "token.pem"), "utf8").replace(/-----[^-]+-----|\s/g, ""),
    "base64",
  );
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ details: "bad credentials" }));
      return;
    }
    const access = url.searchParams.getAll("scope").map((scope) => {
      const [type = "", name = "", actions = ""] = scope.split(":");
      return { type, name, actions: actions.split(",").filter(Boolean) };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [certDer.toString("base64")] };
    const claims = {
      iss: "lcd-token-issuer",
      sub: username,
      aud: url.searchParams.get("service") ?? "",
      exp: now + 600,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(key);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: `${signingInput}.${b64url(signature)}`, expires_in: 600 }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { server, realm: `http://127.0.0.1:${port}/token`, certFile: join(dir, "token.pem") };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const binary = requireBinary("docker-registry");
  const scratch = scratchDir("lcd-reg-");
  const dir = scratch.dir;
  const username = "tester";
  const password = `pw-${randomBytes(6).toString("hex")}`;
  let tokenServer: Server | undefined;
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const lines = [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: false",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "storage")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: ${host}`,
      `  secret: ${randomBytes(16).toString("hex")}`,
    ];
    let ca: { caFile: string; cert: string; key: string } | undefined;
    if (opts.tls) {
      ca = makeCertificates(dir);
      lines.push("  tls:", `    certificate: ${ca.cert}`, `    key: ${ca.key}`);
    }
    if (opts.auth === "htpasswd") {
      execFileSync(requireBinary("htpasswd"), ["-Bbc", join(dir, "htpasswd"), username, password], {
        stdio: "pipe",
      });
      lines.push("auth:", "  htpasswd:", "    realm: lcd-test", `    path: ${join(dir, "htpasswd")}`);
    } else if (opts.auth === "token") {
      const token = await startTokenServer(dir, username, password);
      tokenServer = token.server;
      lines.push(
        "auth:",
        "  token:",
        `    realm: ${token.realm}`,
        "    service: lcd-test-registry",
        "    issuer: lcd-token-issuer",
        `    rootcertbundle: ${token.certFile}`,
      );
    }
    const config = join(dir, "config.yml");
    writeFileSync(config, `${lines.join("\n")}\n`);
    const logPath = join(dir, "registry.log");
    const caPem = ca ? readFileSync(ca.caFile, "utf8") : undefined;

    const launch = async () => {
      const log = openSync(logPath, "a");
      child = spawn(binary, ["serve", config], { stdio: ["ignore", log, log], detached: true });
      closeSync(log);
      child.unref();
      await waitReady(host, caPem, child, () => readLog(logPath));
    };
    const stopChild = async (signal: NodeJS.Signals) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      // The child was unref'd at start; waiting on it must keep a script (a bench) alive, or Node
      // exits with the await unsettled and whatever cleanup follows never runs.
      c.ref();
      c.kill(signal);
      await exited;
    };
    await launch();
    const registry: TestRegistry = {
      host,
      dir,
      username,
      password,
      ...(ca && caPem ? { ca: caPem, caFile: ca.caFile } : {}),
      blobPath: (digest) => {
        const hex = digest.replace(/^sha256:/, "");
        return join(dir, "storage/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      },
      blobFetches: () => {
        const counts = new Map<string, number>();
        for (const m of readLog(logPath).matchAll(
          /"GET \/v2\/[^ ]*\/blobs\/(sha256:[a-f0-9]{64}) HTTP\/1.1" (200|206)/g,
        )) {
          const digest = m[1] as string;
          counts.set(digest, (counts.get(digest) ?? 0) + 1);
        }
        return counts;
      },
      rangeFetches: () =>
        [...readLog(logPath).matchAll(/"GET \/v2\/[^ ]*\/blobs\/(sha256:[a-f0-9]{64}) HTTP\/1.1" 206/g)].map(
          (m) => m[1] as string,
        ),
      kill: () => stopChild("SIGKILL"),
      restart: launch,
      async stop() {
        await stopChild("SIGTERM");
        await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()));
        await scratch.cleanup();
      },
    };
    return registry;
  } catch (err) {
    child?.kill("SIGKILL");
    tokenServer?.close();
    await scratch.cleanup();
    throw err;
  }
}

function readLog(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

async function waitReady(
  host: string,
  ca: string | undefined,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`docker-registry exited during start-up:\n${log()}`);
    const status = await new Promise<number>((resolve) => {
      const onResponse = (res: { statusCode?: number; resume(): void }) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      };
      const req = ca
        ? httpsGet(`https://${host}/v2/`, { ca }, onResponse)
        : httpGet(`http://${host}/v2/`, onResponse);
      req.on("error", () => resolve(0));
    });
    if (status === 200 || status === 401) return;
    await sleep(50);
  }
  throw new Error(`docker-registry did not answer on ${host} within 20 s:\n${log()}`);
}
