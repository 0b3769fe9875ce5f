// A unix-socket proxy in front of containerd that reads the HTTP/2 frames going both ways: how
// many connections a client opened, how many PINGs it sent, which GOAWAYs containerd sent. It can
// also break a connection the way a server does (a GOAWAY, then close), with a request held back
// or a response swallowed, so "the connection died mid-call" is a deterministic test.
import { once } from "node:events";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
export const FRAME = { HEADERS: 0x1, PING: 0x6, GOAWAY: 0x7 } as const;
const FLAG_ACK = 0x1;

export interface TappedGoaway {
  connection: number;
  errorCode: number;
  debug: string;
}

/** Splits a byte stream into HTTP/2 frames as they complete. */
class FrameReader {
  private pending = Buffer.alloc(0);
  private skip: number;

  constructor(
    hasPreface: boolean,
    private readonly onFrame: (type: number, flags: number, payload: Buffer, raw: Buffer) => void,
    /** Bytes of the client preface, passed through as they come. */
    private readonly onPreface: (bytes: Buffer) => void = () => {},
  ) {
    this.skip = hasPreface ? PREFACE_BYTES : 0;
  }

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.pending.length);
      this.onPreface(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      this.skip -= n;
    }
    while (this.pending.length >= FRAME_HEADER_BYTES) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < FRAME_HEADER_BYTES + length) return;
      const type = this.pending[3] ?? 0;
      const flags = this.pending[4] ?? 0;
      const raw = this.pending.subarray(0, FRAME_HEADER_BYTES + length);
      this.onFrame(type, flags, raw.subarray(FRAME_HEADER_BYTES), raw);
      this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
    }
  }
}

interface TappedConnection {
  id: number;
  client: Socket;
  upstream: Socket;
  /** Client bytes not yet forwarded (while `holdRequests`). */
  held: Buffer[];
  clientStreamsOpened: number;
}

export class H2Tap {
  /** Client PING frames (not ACKs), per connection id. */
  readonly clientPings: number[] = [];
  readonly goaways: TappedGoaway[] = [];
  private readonly connections = new Map<number, TappedConnection>();
  private nextId = 0;
  private holdRequests = false;
  private swallowResponses = false;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  /** Listens on `address` and forwards every connection to `upstream`. */
  static async start(address: string, upstream: string): Promise<H2Tap> {
    const server = createServer();
    const tap = new H2Tap(server, address);
    server.on("connection", (client) => tap.accept(client, upstream));
    server.listen(address);
    await once(server, "listening");
    return tap;
  }

  /** Connections accepted so far (open or closed). */
  get connectionCount(): number {
    return this.nextId;
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** New client bytes are held back instead of reaching containerd (until `breakConnections`). */
  holdNewRequests(): void {
    this.holdRequests = true;
  }

  /** containerd's answers are dropped instead of reaching the client (until `breakConnections`). */
  swallowNewResponses(): void {
    this.swallowResponses = true;
  }

  /** Streams the client has opened on all connections (HEADERS frames that start a stream). */
  get streamsOpened(): number {
    let n = 0;
    for (const c of this.connections.values()) n += c.clientStreamsOpened;
    return n;
  }

  /** Bytes held back from containerd on all connections. */
  get heldBytes(): number {
    let n = 0;
    for (const c of this.connections.values()) for (const b of c.held) n += b.length;
    return n;
  }

  /**
   * Ends every open connection as grpc-go does for too many pings: a GOAWAY carrying `errorCode`
   * and `debug`, then the socket closes. Held requests are dropped; later connections pass freely.
   */
  async breakConnections(errorCode = 11, debug = "too_many_pings"): Promise<void> {
    this.holdRequests = false;
    this.swallowResponses = false;
    const closing: Promise<unknown>[] = [];
    for (const c of this.connections.values()) {
      const payload = Buffer.alloc(8 + debug.length);
      payload.writeUInt32BE(0x7fffffff, 0);
      payload.writeUInt32BE(errorCode, 4);
      payload.write(debug, 8, "ascii");
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      header.writeUIntBE(payload.length, 0, 3);
      header[3] = FRAME.GOAWAY;
      c.upstream.destroy();
      closing.push(once(c.client, "close"));
      c.client.end(Buffer.concat([header, payload]));
    }
    await Promise.all(closing);
  }

  async close(): Promise<void> {
    for (const c of this.connections.values()) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.server.close();
    await once(this.server, "close");
  }

  private accept(client: Socket, upstreamPath: string): void {
    const id = this.nextId++;
    this.clientPings[id] = 0;
    const upstream = netConnect(upstreamPath);
    const connection: TappedConnection = { id, client, upstream, held: [], clientStreamsOpened: 0 };
    this.connections.set(id, connection);
    // Forwarded frame by frame, so a GOAWAY written later always starts on a frame boundary.
    const fromClient = new FrameReader(
      true,
      (type, flags, _payload, raw) => {
        if (type === FRAME.PING && (flags & FLAG_ACK) === 0) {
          this.clientPings[id] = (this.clientPings[id] ?? 0) + 1;
        }
        if (type === FRAME.HEADERS) connection.clientStreamsOpened++;
        const copy = Buffer.from(raw);
        if (this.holdRequests) connection.held.push(copy);
        else upstream.write(copy);
      },
      (preface) => upstream.write(Buffer.from(preface)),
    );
    const fromServer = new FrameReader(false, (type, _flags, payload, raw) => {
      if (type === FRAME.GOAWAY) {
        this.goaways.push({
          connection: id,
          errorCode: payload.readUInt32BE(4),
          debug: payload.subarray(8).toString("latin1"),
        });
      }
      if (!this.swallowResponses) client.write(Buffer.from(raw));
    });
    client.on("data", (chunk: Buffer) => fromClient.push(chunk));
    upstream.on("data", (chunk: Buffer) => fromServer.push(chunk));
    const close = (): void => {
      this.connections.delete(id);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close);
    upstream.on("close", close);
    client.on("error", () => {});
    upstream.on("error", () => {});
  }
}
