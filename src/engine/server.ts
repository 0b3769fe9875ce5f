import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { InvalidArgumentError } from "../libcontainerd/types/errors.js";
import { badRequest, toHttpError } from "./errors.js";
import { type Exchange, type ExchangeBase, HttpExchange, UpgradeExchange } from "./http.js";
import { API_VERSION, type Router, splitVersion } from "./router.js";

/** Where the engine listens: a unix socket, or TCP (only with TLS). */
export type EngineHost = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

export interface TlsFiles {
  cert: string;
  key: string;
  /** With a CA, clients must present a certificate it signed (docker's --tlsverify). */
  ca?: string;
}

export interface ListenOptions {
  /** The group that may use the unix socket (mode 0660, owner root). */
  group?: string;
  tls?: TlsFiles;
}

export const DEFAULT_ENGINE_SOCKET = "/run/ctrd/docker.sock";

/** `unix:///path`, `/path`, `tcp://host:port`, as docker's -H takes them. */
export function parseHost(value: string): EngineHost {
  if (value.startsWith("unix://")) return { kind: "unix", path: value.slice("unix://".length) };
  if (value.startsWith("/")) return { kind: "unix", path: value };
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(value);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port > 0 && port < 65536) return { kind: "tcp", host: (tcp[1] ?? "").replace(/^\[|\]$/g, ""), port };
  }
  throw new InvalidArgumentError(
    `invalid --host ${JSON.stringify(value)}: want unix:///PATH or tcp://HOST:PORT`,
  );
}

/** A group name (or number) from /etc/group. */
export function groupId(name: string, groupFile = "/etc/group"): number {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync(groupFile, "utf8").split("\n")) {
    const [groupName, , gid] = line.split(":");
    if (groupName === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new InvalidArgumentError(`no group ${JSON.stringify(name)} in ${groupFile}`);
}

/** Whether something answers on the unix socket at `path` (then it is not ours to remove). */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/**
 * The HTTP side of the engine: version prefixes, routing, errors in Docker's shape, hijacked
 * connections. It never lets an exception out: any failure becomes a response or a closed connection.
 */
export class EngineServer {
  private server: Server | undefined;
  private readonly connections = new Set<Duplex>();
  private socketPath: string | undefined;

  constructor(
    private readonly router: Router,
    private readonly logger: Logger,
    private readonly serverVersion: string,
  ) {}

  async listen(host: EngineHost, options: ListenOptions = {}): Promise<void> {
    if (host.kind === "tcp" && !options.tls)
      throw new InvalidArgumentError(
        "a TCP address needs TLS (--tlscert and --tlskey): the Engine API gives root on this host to whoever reaches it",
      );
    const server =
      host.kind === "tcp" && options.tls
        ? createHttpsServer({
            cert: readFileSync(options.tls.cert),
            key: readFileSync(options.tls.key),
            ...(options.tls.ca
              ? { ca: readFileSync(options.tls.ca), requestCert: true, rejectUnauthorized: true }
              : {}),
          })
        : createHttpServer();
    // Streams (events, logs -f, image load) may take as long as they take.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    // Idle keep-alive connections stay open until the client closes them, as with dockerd (Go's http.Server
    // has no idle timeout). Node's default closes them after 5 s, and a client that reuses one at that moment
    // (the docker CLI does, 200 of them on a loaded machine) sees "connection reset by peer" on a POST it
    // cannot retry.
    server.keepAliveTimeout = 0;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    server.on("connection", (socket: Socket) => this.track(socket));
    server.on("secureConnection", (socket: Socket) => this.track(socket));
    server.on("clientError", (_err: Error, socket: Duplex) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    if (host.kind === "unix") {
      await this.prepareSocketPath(host.path);
      await listenOn(server, host.path);
      this.socketPath = host.path;
      const gid = options.group !== undefined ? groupId(options.group) : 0;
      chownSync(host.path, 0, gid);
      chmodSync(host.path, 0o660);
    } else {
      await listenOn(server, host.port, host.host);
    }
    this.server = server;
  }

  /** The TCP port actually bound (for tcp://HOST:0). */
  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === "object" && address !== null ? address.port : undefined;
  }

  private async prepareSocketPath(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (!existsSync(path)) return;
    if (!lstatSync(path).isSocket())
      throw new InvalidArgumentError(`${path} exists and is not a socket; not removing it`);
    if (await socketInUse(path)) throw new InvalidArgumentError(`another engine already listens on ${path}`);
    unlinkSync(path);
  }

  private track(socket: Duplex): void {
    this.connections.add(socket);
    socket.once("close", () => this.connections.delete(socket));
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.connections) socket.destroy();
    server.closeAllConnections();
    await closed;
    if (this.socketPath !== undefined && existsSync(this.socketPath)) {
      try {
        unlinkSync(this.socketPath);
      } catch {}
    }
  }

  private commonHeaders(): Record<string, string> {
    return { Server: `Docker/${this.serverVersion} (linux)`, "Api-Version": API_VERSION, Ostype: "linux" };
  }

  private base(req: IncomingMessage): ExchangeBase {
    const target = req.url ?? "/";
    let url: URL;
    try {
      // Prefixed, not resolved against a base: `//x` would otherwise read as a host.
      url = new URL(target.startsWith("/") ? `http://engine${target}` : target);
    } catch {
      throw badRequest(`invalid request target ${JSON.stringify(target.slice(0, 200))}`);
    }
    const { apiVersion, path } = splitVersion(url.pathname);
    return {
      method: req.method ?? "GET",
      path,
      apiVersion,
      query: url.searchParams,
      headers: req.headers,
      commonHeaders: this.commonHeaders(),
    };
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    let exchange: Exchange;
    try {
      exchange = new HttpExchange(this.base(req), req, res);
    } catch (err) {
      const { status, message } = toHttpError(err);
      res.writeHead(status, { ...this.commonHeaders(), "Content-Type": "application/json" });
      res.end(`${JSON.stringify({ message })}\n`);
      return;
    }
    void this.dispatch(exchange, () => {
      if (!res.writableEnded) res.destroy();
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.track(socket);
    let exchange: Exchange;
    try {
      exchange = new UpgradeExchange(this.base(req), socket, head);
    } catch (err) {
      const { status, message } = toHttpError(err);
      const body = `${JSON.stringify({ message })}\n`;
      socket.end(
        `HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    void this.dispatch(exchange, () => socket.destroy());
  }

  private async dispatch(exchange: Exchange, abandon: () => void): Promise<void> {
    try {
      const { handler, params } = this.router.match(exchange.method, exchange.path);
      exchange.params = params;
      await handler(exchange);
    } catch (err) {
      const { status, message } = toHttpError(err);
      // The connection closed under the handler (docker cp cut short: "Premature close", an aborted
      // read of the body): the client went away, which is no failure of the engine's, and nobody
      // is left to answer.
      if (exchange.signal.aborted)
        this.logger.debug({ err, path: exchange.path }, "request ended: the client went away");
      // 501: what this engine does not do, answered as such; not a failure of it.
      else if (status >= 500 && status !== 501)
        this.logger.error({ err, path: exchange.path }, "request failed");
      else this.logger.debug({ err, path: exchange.path, status }, "request refused");
      if (exchange.started) abandon();
      else {
        try {
          exchange.send(status, { message });
        } catch {
          abandon();
        }
      }
    }
  }
}

function listenOn(server: Server, pathOrPort: string | number, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = (): void => {
      server.off("error", reject);
      resolve();
    };
    if (typeof pathOrPort === "string") server.listen(pathOrPort, done);
    else server.listen(pathOrPort, host, done);
  });
}
