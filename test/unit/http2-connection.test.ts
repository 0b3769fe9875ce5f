// Our HTTP/2 client connection against an independent implementation: node:http2's server, which is
// nghttp2. It sends what grpc-go may send and what we must read right: CONTINUATION frames,
// padding, small and changing windows, SETTINGS mid-connection, MAX_CONCURRENT_STREAMS, GOAWAY with
// a last-stream-id, RST_STREAM REFUSED_STREAM, PINGs. A raw socket server plays a server that
// breaks the protocol. Every check is on what went over the wire or what the peer saw.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import {
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
  type Settings,
} from "node:http2";
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  type ClientStream,
  type ConnectionOptions,
  Http2Connection,
  type StreamEnd,
} from "../../src/libcontainerd/grpc/http2/connection.js";
import { ErrorCode, FrameType } from "../../src/libcontainerd/grpc/http2/frames.js";
import { encodeHeaderBlock } from "../../src/libcontainerd/grpc/http2/hpack.js";

const dir = mkdtempSync(join(tmpdir(), "lcd-h2-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Peer {
  path: string;
  server: Http2Server;
  sessions: Http2Session[];
}

/** node:http2's server on a unix socket, answering each stream with `handler`. */
async function peer(
  settings: Settings,
  handler: (stream: ServerHttp2Stream, headers: Record<string, unknown>) => void,
  options: Parameters<typeof createServer>[0] = {},
): Promise<Peer> {
  const path = join(dir, `s${++serial}.sock`);
  const server = createServer({ settings, ...options });
  const sessions: Http2Session[] = [];
  server.on("session", (session) => sessions.push(session));
  server.on("stream", (stream, headers) => {
    // Resets (ours, or the handler's) end server streams with an error event: expected here.
    stream.on("error", () => {});
    handler(stream, headers);
  });
  server.listen(path);
  await once(server, "listening");
  cleanups.push(async () => {
    for (const session of sessions) session.destroy();
    server.close();
    await once(server, "close");
  });
  return { path, server, sessions };
}

const OPTIONS: ConnectionOptions = { streamWindow: 4 * 1024 * 1024, connectionWindow: 32 * 1024 * 1024 };

function connection(path: string, options: Partial<ConnectionOptions> = {}): Http2Connection {
  const conn = new Http2Connection((onread) => netConnect({ path, onread }), { ...OPTIONS, ...options });
  cleanups.push(() => conn.destroy());
  return conn;
}

interface Response {
  blocks: { fields: Record<string, string>; endStream: boolean }[];
  body: Buffer;
  end: StreamEnd;
}

const requestBlock = (path: string, extra: [string, string][] = []) =>
  encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
    ["content-type", "application/grpc+proto"],
    ...extra,
  ]);

/** One request: `body` as DATA (then END_STREAM), the whole response as it came. */
function request(
  conn: Http2Connection,
  path: string,
  body: Uint8Array[] = [],
  extra: [string, string][] = [],
): { response: Promise<Response>; cancel: () => void } {
  const blocks: Response["blocks"] = [];
  const chunks: Buffer[] = [];
  let resolve!: (r: Response) => void;
  const response = new Promise<Response>((r) => {
    resolve = r;
  });
  const stream = conn.request(requestBlock(path, extra), {
    onHeaders(fields, endStream) {
      const record: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
      blocks.push({ fields: record, endStream });
    },
    onData(chunk) {
      chunks.push(Buffer.from(chunk));
    },
    onWritable() {},
    onClose(end) {
      resolve({ blocks, body: Buffer.concat(chunks), end });
    },
  });
  stream.write(body, true);
  return { response, cancel: () => stream.cancel() };
}

/** Reads a request body to its end and answers with `body` and grpc-status trailers. */
async function echo(stream: ServerHttp2Stream, reply: (body: Buffer) => Buffer = (b) => b): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "fine" }));
  stream.end(reply(Buffer.concat(chunks)));
}

describe("HTTP/2 connection against node:http2 (nghttp2)", () => {
  it("a request and its response: headers, DATA, trailers; the peer saw our headers as sent", async () => {
    let seen: Record<string, unknown> = {};
    const { path } = await peer({}, (stream, headers) => {
      seen = headers;
      void echo(stream, (b) => Buffer.concat([Buffer.from("echo:"), b]));
    });
    const conn = connection(path);
    const { response } = request(conn, "/svc/Method", [Buffer.from("hello")], [["x-extra", "1"]]);
    const r = await response;
    expect(seen).toMatchObject({
      ":method": "POST",
      ":scheme": "http",
      ":path": "/svc/Method",
      ":authority": "localhost",
      "content-type": "application/grpc+proto",
      "x-extra": "1",
    });
    expect(r.end).toEqual({ kind: "done" });
    expect(r.body.toString()).toBe("echo:hello");
    expect(r.blocks).toEqual([
      {
        fields: expect.objectContaining({ ":status": "200", "content-type": "application/grpc" }),
        endStream: false,
      },
      { fields: { "grpc-status": "0", "grpc-message": "fine" }, endStream: true },
    ]);
  });

  it("CONTINUATION both ways: header blocks larger than a frame, and a dynamic table kept across them", async () => {
    const big = "v".repeat(40_000);
    let seenLength = 0;
    const { path } = await peer(
      { maxHeaderListSize: 1_000_000 },
      (stream, headers) => {
        seenLength = String(headers["x-big-request"]).length;
        stream.respond({ ":status": 200, "x-big": big, "x-again": "same" }, { endStream: true });
      },
      { maxHeaderListPairs: 1000, maxSessionMemory: 100 } as Parameters<typeof createServer>[0],
    );
    const conn = connection(path);
    for (let i = 0; i < 3; i++) {
      const r = await request(conn, "/big", [], [["x-big-request", big]]).response;
      expect(seenLength).toBe(big.length);
      expect(r.blocks[0]!.fields["x-big"]).toBe(big);
      expect(r.blocks[0]!.fields["x-again"]).toBe("same");
      expect(r.end).toEqual({ kind: "done" });
    }
  });

  it("padded HEADERS and DATA are read without their padding", async () => {
    const { path } = await peer({}, (stream) => void echo(stream), {
      paddingStrategy: constants.PADDING_STRATEGY_MAX,
    });
    const conn = connection(path);
    const body = Buffer.alloc(50_000, 7);
    const r = await request(conn, "/pad", [body]).response;
    expect(r.body.equals(body)).toBe(true);
    expect(r.blocks.at(-1)!.fields["grpc-status"]).toBe("0");
  });

  it("a small send window: a large request waits for WINDOW_UPDATEs and arrives whole", async () => {
    const { path } = await peer(
      { initialWindowSize: 1000 },
      (stream) => void echo(stream, (b) => Buffer.from(String(b.length))),
    );
    const conn = connection(path);
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 1);
    // Several parts, one larger than a frame: split to the peer's max frame size, not copied.
    const r = await request(conn, "/big-request", [
      body.subarray(0, 10),
      body.subarray(10, 100_000),
      body.subarray(100_000),
    ]).response;
    expect(r.body.toString()).toBe(String(body.length));
  });

  it("a small receive window: a large response is read as we give the window back", async () => {
    const size = 5 * 1024 * 1024;
    const { path } = await peer({}, (stream) => {
      stream.respond({ ":status": 200 });
      stream.end(Buffer.alloc(size, 3));
    });
    const conn = connection(path, { streamWindow: 65_535, connectionWindow: 65_535 });
    const r = await request(conn, "/big-response").response;
    expect(r.body.length).toBe(size);
    expect(r.end).toEqual({ kind: "done" });
  });

  it("a window given back as the reader takes the data (windowOnRead): padded DATA read as it comes; a reader that asks for more than the window, reading none", async () => {
    const size = 300 * 1000;
    const { path } = await peer(
      {},
      (stream) => {
        // Read to its end: else node resets the stream (NO_ERROR) once its answer is out.
        stream.resume();
        stream.respond({ ":status": 200 });
        // Small writes, one after another: small DATA frames, which nghttp2 pads up to a whole frame.
        const write = (left: number): void => {
          if (left === 0) stream.end();
          else stream.write(Buffer.alloc(1000, 5), () => write(left - 1000));
        };
        write(size);
      },
      // Padding counts against the window, and no reader takes it: it must be given back as it comes.
      { paddingStrategy: constants.PADDING_STRATEGY_MAX },
    );
    const conn = connection(path, { streamWindow: 65_535 });
    /** The response, `onChunk` told of each chunk; `atStart` called once the stream is open. */
    const read = (
      onChunk: (stream: ClientStream, chunk: number, received: number) => void,
      atStart: (stream: ClientStream) => void = () => {},
    ) =>
      new Promise<{ received: number; end: StreamEnd }>((resolve) => {
        let received = 0;
        const stream: ClientStream = conn.request(
          requestBlock("/window-on-read"),
          {
            onHeaders() {},
            onData(chunk) {
              received += chunk.length;
              onChunk(stream, chunk.length, received);
            },
            onWritable() {},
            onClose(end) {
              resolve({ received, end });
            },
          },
          true,
        );
        stream.write([], true);
        atStart(stream);
      });
    const whole = { received: size, end: { kind: "done" } };
    // Each chunk taken as it comes: 16 windows' worth arrives.
    expect(await read((stream, chunk) => stream.read(chunk))).toEqual(whole);
    // Nothing taken until all of it is here, as a reader needs a message larger than the window
    // whole: the rest is granted beyond the window; taken, the window is back for the stream's end.
    expect(
      await read(
        (stream, _chunk, received) => {
          if (received < size) stream.expect(size - received);
          else stream.read(size);
        },
        (stream) => stream.expect(size),
      ),
    ).toEqual(whole);
  });

  it("windowOnRead: a stream still waiting for a slot (MAX_CONCURRENT_STREAMS) is granted nothing before it starts (expect, read)", async () => {
    let release: (() => void) | undefined;
    const { path, sessions } = await peer({ maxConcurrentStreams: 1 }, (stream, headers) => {
      if (headers[":path"] === "/held") release = () => void echo(stream);
      else void echo(stream);
    });
    const conn = connection(path);
    await request(conn, "/settings-arrive").response;
    const held = request(conn, "/held");
    let body = 0;
    const waiting = new Promise<StreamEnd>((resolve) => {
      const stream: ClientStream = conn.request(
        requestBlock("/waiting"),
        {
          onHeaders() {},
          onData(chunk) {
            body += chunk.length;
            stream.read(chunk.length);
          },
          onWritable() {},
          onClose: resolve,
        },
        true,
      );
      stream.write([Buffer.alloc(100, 1)], true);
      // No id yet: a WINDOW_UPDATE now would name stream 0, the connection.
      stream.expect(1_000_000);
      stream.read(2_000_000);
    });
    while (!release) await new Promise((r) => setTimeout(r, 5));
    release();
    await held.response;
    expect(await waiting).toEqual({ kind: "done" });
    expect(body).toBe(100);
    // What the server may send us: never more than the connection window we gave.
    expect(sessions[0]!.state.remoteWindowSize).toBeLessThanOrEqual(OPTIONS.connectionWindow);
  });

  it("SETTINGS changed mid-connection: INITIAL_WINDOW_SIZE shrinks the windows of streams in flight, MAX_FRAME_SIZE grows; we ACK", async () => {
    let acked: Promise<void> | undefined;
    const { path } = await peer({}, (stream) => {
      // While the request's DATA is under way.
      acked ??= new Promise((resolve, reject) =>
        stream.session!.settings({ initialWindowSize: 100, maxFrameSize: 20_000 }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
      void echo(stream, (b) => Buffer.from(String(b.length)));
    });
    const conn = connection(path);
    const body = Buffer.alloc(1024 * 1024, 2);
    const first = request(conn, "/during", [body]).response;
    const r = await first;
    await acked;
    expect(r.body.toString()).toBe(String(body.length));
    const after = await request(conn, "/after", [body]).response;
    expect(after.body.toString()).toBe(String(body.length));
  });

  it("MAX_CONCURRENT_STREAMS: calls beyond it wait, and all finish", async () => {
    let open = 0;
    let most = 0;
    const { path } = await peer({ maxConcurrentStreams: 2 }, (stream) => {
      open++;
      most = Math.max(most, open);
      stream.on("close", () => open--);
      setTimeout(() => void echo(stream), 20);
    });
    const conn = connection(path);
    await request(conn, "/settings-arrive").response;
    const all = await Promise.all(
      Array.from({ length: 7 }, (_, i) => request(conn, `/c${i}`, [Buffer.from(`m${i}`)]).response),
    );
    expect(all.map((r) => r.body.toString())).toEqual(Array.from({ length: 7 }, (_, i) => `m${i}`));
    expect(most).toBe(2);
  });

  it("GOAWAY with a last-stream-id: streams above it are refused, those at or below finish; no new streams", async () => {
    const held: ServerHttp2Stream[] = [];
    let unusable = 0;
    const { path } = await peer({}, (stream) => {
      held.push(stream);
      if (held.length === 3) {
        // Streams 1 and 3 were processed; 5 was not.
        stream.session!.goaway(constants.NGHTTP2_NO_ERROR, 3);
        for (const s of held.slice(0, 2)) void echo(s);
      }
    });
    const conn = new Http2Connection((onread) => netConnect({ path, onread }), {
      ...OPTIONS,
      onUnusable: () => unusable++,
    });
    cleanups.push(() => conn.destroy());
    const calls = [1, 3, 5].map((n) => request(conn, `/s${n}`, [Buffer.from(`m${n}`)]).response);
    const [one, three, five] = await Promise.all(calls);
    expect(one!.end).toEqual({ kind: "done" });
    expect(one!.body.toString()).toBe("m1");
    expect(three!.end).toEqual({ kind: "done" });
    expect(five!.end).toEqual({ kind: "refused" });
    expect(unusable).toBe(1);
    expect(conn.usable).toBe(false);
    expect(() =>
      conn.request(requestBlock("/late"), { onHeaders() {}, onData() {}, onWritable() {}, onClose() {} }),
    ).toThrow();
  });

  it("RST_STREAM REFUSED_STREAM before a response, and our CANCEL reaching the peer", async () => {
    let cancelled: number | undefined;
    const { path } = await peer({}, (stream, headers) => {
      if (headers[":path"] === "/refuse") stream.close(constants.NGHTTP2_REFUSED_STREAM);
      else
        stream.on("close", () => {
          cancelled = stream.rstCode;
        });
    });
    const conn = connection(path);
    const refused = await request(conn, "/refuse").response;
    expect(refused.end).toEqual({ kind: "reset", code: ErrorCode.REFUSED_STREAM, local: false });
    const hanging = request(conn, "/hang");
    await new Promise((r) => setTimeout(r, 50));
    hanging.cancel();
    expect((await hanging.response).end).toEqual({ kind: "reset", code: ErrorCode.CANCEL, local: true });
    while (cancelled === undefined) await new Promise((r) => setTimeout(r, 10));
    expect(cancelled).toBe(constants.NGHTTP2_CANCEL);
    // The connection carries on.
    expect(conn.usable).toBe(true);
  });

  it("PINGs from the server are answered with their payload (we send none of our own)", async () => {
    let session!: Http2Session;
    const { path } = await peer({}, (stream) => {
      session = stream.session!;
      void echo(stream);
    });
    const conn = connection(path);
    await request(conn, "/ping-setup").response;
    const payload = Buffer.from("bdp-ping");
    const ack = await new Promise<Buffer>((resolve, reject) =>
      session.ping(payload, (err, _ms, echoed) => (err ? reject(err) : resolve(echoed))),
    );
    expect(ack.equals(payload)).toBe(true);
  });
});

describe("HTTP/2 connection and the process's life", () => {
  it("keeps a process alive while a stream is open, and lets it exit once none is (no close())", async () => {
    const { path } = await peer({}, (stream) => {
      // Held a while: a connection that let go of the process would end it (exit 13) meanwhile.
      setTimeout(() => {
        stream.respond({ ":status": 200 }, { endStream: true });
      }, 300);
    });
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/fixtures/http2-exit-client.ts", path, "/held"],
      { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
    expect({ code, signal, stdout }, stderr).toEqual({ code: 0, signal: null, stdout: "answered 200\n" });
  });
});

describe("HTTP/2 connection against a server that breaks the protocol", () => {
  /** A raw server: sends its SETTINGS, then `frames`, and records the frames we send. */
  async function rawServer(
    frames: Buffer[],
  ): Promise<{ path: string; received: Promise<{ type: number; payload: Buffer }[]> }> {
    const path = join(dir, `raw${++serial}.sock`);
    const server: Server = createNetServer();
    const sockets: Socket[] = [];
    let resolve!: (v: { type: number; payload: Buffer }[]) => void;
    const received = new Promise<{ type: number; payload: Buffer }[]>((r) => {
      resolve = r;
    });
    server.on("connection", (socket) => {
      sockets.push(socket);
      let bytes = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        bytes = Buffer.concat([bytes, chunk]);
      });
      socket.on("close", () => {
        const out: { type: number; payload: Buffer }[] = [];
        for (let at = 24; at + 9 <= bytes.length; ) {
          const length = bytes.readUIntBE(at, 3);
          out.push({ type: bytes[at + 3]!, payload: bytes.subarray(at + 9, at + 9 + length) });
          at += 9 + length;
        }
        resolve(out);
      });
      socket.write(Buffer.from([0, 0, 0, FrameType.SETTINGS, 0, 0, 0, 0, 0]));
      setTimeout(() => socket.write(Buffer.concat(frames)), 20);
    });
    server.listen(path);
    await once(server, "listening");
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      server.close();
    });
    return { path, received };
  }

  const header = (length: number, type: number, flags: number, stream: number) => {
    const out = Buffer.alloc(9);
    out.writeUIntBE(length, 0, 3);
    out[3] = type;
    out[4] = flags;
    out.writeUInt32BE(stream, 5);
    return out;
  };

  it("DATA on stream 0: GOAWAY PROTOCOL_ERROR, and the open stream ends with its connection", async () => {
    const { path, received } = await rawServer([header(1, FrameType.DATA, 0, 0), Buffer.from([1])]);
    const conn = connection(path);
    const r = await request(conn, "/x").response;
    expect(r.end).toMatchObject({ kind: "lost", connected: true });
    const goaway = (await received).find((f) => f.type === FrameType.GOAWAY);
    expect(goaway?.payload.readUInt32BE(4)).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it("a header block our decoder cannot read: GOAWAY COMPRESSION_ERROR", async () => {
    // Indexed field 70: beyond the static table, and the dynamic table is empty.
    const { path, received } = await rawServer([
      header(1, FrameType.HEADERS, 0x4 | 0x1, 1),
      Buffer.from([0x80 | 70]),
    ]);
    const conn = connection(path);
    const r = await request(conn, "/x").response;
    expect(r.end).toMatchObject({ kind: "lost" });
    const goaway = (await received).find((f) => f.type === FrameType.GOAWAY);
    expect(goaway?.payload.readUInt32BE(4)).toBe(ErrorCode.COMPRESSION_ERROR);
  });

  it("a frame larger than our MAX_FRAME_SIZE: GOAWAY FRAME_SIZE_ERROR", async () => {
    const { path, received } = await rawServer([header(20_000, FrameType.DATA, 0, 1), Buffer.alloc(20_000)]);
    const conn = connection(path);
    const r = await request(conn, "/x").response;
    expect(r.end).toMatchObject({ kind: "lost" });
    const goaway = (await received).find((f) => f.type === FrameType.GOAWAY);
    expect(goaway?.payload.readUInt32BE(4)).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  it("a socket that never connects: the stream ends lost, not connected, with the errno", async () => {
    const conn = connection(join(dir, "nobody-listens.sock"));
    const r = await request(conn, "/x").response;
    expect(r.end).toMatchObject({
      kind: "lost",
      connected: false,
      cause: expect.objectContaining({ code: "ENOENT" }),
    });
  });
});
