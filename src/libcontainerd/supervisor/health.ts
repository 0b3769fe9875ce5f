import type { ClientHttp2Session } from "node:http2";
import { Worker } from "node:worker_threads";
import { ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { createContainerdTransport, serviceClient } from "../grpc/transport.js";

export type HealthResult = { serving: true; latencyMs: number } | { serving: false; error: Error };

/**
 * One grpc.health.v1 Check over a raw HTTP/2 stream (an empty request; SERVING is field 1 = 1),
 * `finish` called once. Self-contained (its parameters and Node's globals only): it runs as source
 * text on the probe's worker thread, which loads node:http2 for it (this thread never does).
 */
function healthCheck(
  session: ClientHttp2Session,
  timeoutMs: number,
  finish: (serving: boolean, error?: string) => void,
): void {
  let done = false;
  const end = (serving: boolean, error?: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    finish(serving, error);
  };
  const timer = setTimeout(() => end(false, `no answer within ${timeoutMs} ms`), timeoutMs);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let grpcStatus: unknown;
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) grpcStatus = headers["grpc-status"];
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = trailers["grpc-status"];
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (err) => end(false, err.message));
    stream.on("close", () => {
      const body = Buffer.concat(chunks);
      if (grpcStatus !== "0") return end(false, `health check answered grpc-status ${String(grpcStatus)}`);
      const status = body.length >= 7 && body[5] === 0x08 ? body[6] : 0;
      end(status === 1, status === 1 ? undefined : `containerd health status ${status}`);
    });
    stream.end(Buffer.alloc(5));
  } catch (err) {
    end(false, err instanceof Error ? err.message : String(err));
  }
}

/**
 * The probe thread: healthCheck on a connection of its own, timed by the worker's clock. The
 * client's event loop may be busy for seconds under load; a probe timed there would blame
 * containerd for our own delay (the supervisor once killed a working containerd that way). Plain
 * JavaScript with only Node built-ins, so it runs the same from the TypeScript sources and from
 * the bundle.
 */
const PROBE_WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const http2 = require("node:http2");
const net = require("node:net");
const healthCheck = ${healthCheck.toString()};
let session;
function open() {
  if (session && !session.closed && !session.destroyed) return session;
  session = http2.connect("http://localhost", { createConnection: () => net.connect(workerData.socket) });
  session.on("error", () => {});
  return session;
}
function drop() {
  if (session) session.destroy();
  session = undefined;
}
parentPort.on("message", ({ id, timeoutMs }) => {
  const started = performance.now();
  healthCheck(open(), timeoutMs, (serving, error) => {
    if (!serving) drop();
    parentPort.postMessage({ id, serving, error, latencyMs: performance.now() - started });
  });
});
`;

/**
 * One check on this thread, on a connection of its own that it closes: for waiting until a
 * containerd serves while the caller's event loop has nothing else to do (a command starting, which
 * would otherwise start the probe thread, ~30 ms, for this one answer). A late answer there only
 * costs a retry: the wait goes on until its own deadline. Through the library's own transport, so
 * a command loads no node:http2 (~7 ms).
 */
export async function checkServingHere(
  socketPath: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HealthResult> {
  const started = performance.now();
  const transport = createContainerdTransport({ address: socketPath, namespace: "default" });
  try {
    const { status } = await serviceClient(Health, transport).check({}, { timeoutMs, signal });
    if (status === HealthCheckResponse_ServingStatus.SERVING) {
      return { serving: true, latencyMs: performance.now() - started };
    }
    return { serving: false, error: new Error(`containerd health: containerd health status ${status}`) };
  } catch (err) {
    const message = err instanceof ConnectError ? err.rawMessage : String(err);
    return { serving: false, error: new Error(`containerd health: ${message}`, { cause: err }) };
  } finally {
    transport.close();
  }
}

interface ProbeReply {
  id: number;
  serving: boolean;
  error?: string;
  latencyMs: number;
}

/** How long past its own deadline a probe may stay unanswered before the worker counts as dead. */
const WORKER_GRACE_MS = 30_000;

/**
 * grpc.health.v1 checks against one containerd socket, from a worker thread (see above). The worker
 * keeps one HTTP/2 connection and drops it after a failed check; `reset()` ends the worker and its
 * connection (the next check starts a new one), so shutdown leaves no socket or thread behind.
 */
export class HealthProbe {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, (reply: ProbeReply) => void>();

  constructor(private readonly socketPath: string) {}

  check(timeoutMs: number, signal?: AbortSignal): Promise<HealthResult> {
    if (signal?.aborted)
      return Promise.resolve({ serving: false, error: new Error("health check canceled") });
    const worker = this.startWorker();
    const id = this.nextId++;
    return new Promise<HealthResult>((resolve) => {
      const settle = (reply: ProbeReply): void => {
        this.pending.delete(id);
        clearTimeout(deadWorker);
        signal?.removeEventListener("abort", onAbort);
        resolve(
          reply.serving
            ? { serving: true, latencyMs: reply.latencyMs }
            : { serving: false, error: new Error(`containerd health: ${reply.error ?? "not serving"}`) },
        );
      };
      const onAbort = (): void =>
        settle({ id, serving: false, error: "health check canceled", latencyMs: 0 });
      // Only for a worker that died: the probe's own deadline runs on the worker's clock.
      const deadWorker = setTimeout(
        () => settle({ id, serving: false, error: "the probe thread did not answer", latencyMs: 0 }),
        timeoutMs + WORKER_GRACE_MS,
      );
      deadWorker.unref();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, settle);
      worker.postMessage({ id, timeoutMs });
    });
  }

  /** Ends the probe thread and its connection; the next check starts a new one. */
  reset(): void {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    void worker.terminate();
    for (const [id, settle] of [...this.pending]) {
      settle({ id, serving: false, error: "health probe reset", latencyMs: 0 });
    }
  }

  private startWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(PROBE_WORKER_SOURCE, { eval: true, workerData: { socket: this.socketPath } });
    // A supervisor that is not shut down must not keep the process alive through its probe thread.
    worker.unref();
    worker.on("message", (reply: ProbeReply) => this.pending.get(reply.id)?.(reply));
    worker.on("error", () => {
      if (this.worker === worker) this.reset();
    });
    this.worker = worker;
    return worker;
  }
}
