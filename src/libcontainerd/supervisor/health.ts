import { connect as netConnect } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";

export type HealthResult = { serving: true } | { serving: false; error: Error };

/**
 * grpc.health.v1 checks against one containerd socket. It owns its HTTP/2 session so a session
 * stuck on a stopped containerd can be dropped after a failed check, and so shutdown leaves no
 * socket open.
 */
export class HealthProbe {
  private session: Http2SessionManager | undefined;
  private health: ReturnType<typeof createClient<typeof Health>> | undefined;

  constructor(private readonly socketPath: string) {}

  async check(timeoutMs: number, signal?: AbortSignal): Promise<HealthResult> {
    const health = this.client();
    try {
      const reply = await health.check({ service: "" }, { timeoutMs, ...(signal ? { signal } : {}) });
      if (reply.status === HealthCheckResponse_ServingStatus.SERVING) return { serving: true };
      this.reset();
      return {
        serving: false,
        error: new Error(
          `containerd health: ${HealthCheckResponse_ServingStatus[reply.status] ?? reply.status}`,
        ),
      };
    } catch (err) {
      this.reset();
      return { serving: false, error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  /** Closes the connection; the next check opens a new one. */
  reset(): void {
    this.session?.abort();
    this.session = undefined;
    this.health = undefined;
  }

  private client(): ReturnType<typeof createClient<typeof Health>> {
    if (this.health) return this.health;
    const socketPath = this.socketPath;
    this.session = new Http2SessionManager(
      "http://localhost",
      {},
      { createConnection: () => netConnect(socketPath) },
    );
    this.health = createClient(
      Health,
      createGrpcTransport({ baseUrl: "http://localhost", sessionManager: this.session }),
    );
    return this.health;
  }
}
