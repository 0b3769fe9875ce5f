import { Worker } from "node:worker_threads";

export type HealthResult = { serving: true; latencyMs: number } | { serving: false; error: Error };

/**
 * The probe itself, run on a worker thread of its own: a grpc.health.v1 Check over a raw HTTP/2
 * stream (an empty request; SERVING is field 1 = 1), timed by the worker's clock. The client's
 * event loop may be busy for seconds under load; a probe timed there would blame containerd for
 * our own delay (the supervisor once killed a working containerd that way). Plain JavaScript with
 * only Node built-ins, so it runs the same from the TypeScript sources and from dist/.
 */
const PROBE_WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const http2 = require("node:http2");
const net = require("node:net");
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
  let done = false;
  const finish = (serving, error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (!serving) drop();
    parentPort.postMessage({ id, serving, error, latencyMs: performance.now() - started });
  };
  const timer = setTimeout(() => finish(false, "no answer within " + timeoutMs + " ms"), timeoutMs);
  try {
    const stream = open().request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks = [];
    let grpcStatus;
    stream.on("response", (headers) => { if (headers["grpc-status"] !== undefined) grpcStatus = headers["grpc-status"]; });
    stream.on("trailers", (trailers) => { grpcStatus = trailers["grpc-status"]; });
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("error", (err) => finish(false, err.message));
    stream.on("close", () => {
      const body = Buffer.concat(chunks);
      if (grpcStatus !== "0") return finish(false, "health check answered grpc-status " + grpcStatus);
      const status = body.length >= 7 && body[5] === 0x08 ? body[6] : 0;
      finish(status === 1, status === 1 ? undefined : "containerd health status " + status);
    });
    stream.end(Buffer.alloc(5));
  } catch (err) {
    finish(false, err instanceof Error ? err.message : String(err));
  }
});
`;

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
