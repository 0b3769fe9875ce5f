// An HTTP front to a test registry, as a CDN, proxy or failing network would stand before one: every request
// is passed on to the registry, and a test shapes the few it cares about (a redirect, an answer without a
// Content-Length, a blob that stops mid-way). Closed when the test ends.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { onTestFinished } from "vitest";

export interface FrontShape {
  /** Answers a request without asking the registry; return true when it did. */
  answer?(req: IncomingMessage, res: ServerResponse): boolean;
  /** Passes the registry's answer back; the default sends its status, headers and body as they are. */
  relay?(req: IncomingMessage, answer: IncomingMessage, res: ServerResponse): void;
}

/** Starts a front to `upstream` (`HOST:PORT`) on 127.0.0.1; resolves to its `127.0.0.1:PORT`. */
export async function startRegistryFront(upstream: string, shape: FrontShape = {}): Promise<string> {
  const [upstreamHost, upstreamPort] = upstream.split(":");
  const relay =
    shape.relay ??
    ((_req: IncomingMessage, answer: IncomingMessage, res: ServerResponse) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
  const server = createServer((req, res) => {
    if (shape.answer?.(req, res)) return;
    const forward = httpRequest(
      {
        host: upstreamHost,
        port: Number(upstreamPort),
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => relay(req, answer, res),
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}
