// The gRPC transport (grpc-http2.ts over our HTTP/2 client) against node:http2's server on TCP
// (containerd's tcp:// addresses), as a gRPC server answers: messages and trailers, trailers-only
// errors with a percent-encoded grpc-message, an HTTP status without grpc-status, REFUSED_STREAM
// and GOAWAY (unary and server-streaming calls sent again, transparently, within the first
// attempt's deadline), deadlines and aborts (RST_STREAM CANCEL at the server), oversized messages,
// a port nobody listens on, flow control by what the caller reads. What is checked is what the
// caller gets and what the server saw.
import { once } from "node:events";
import {
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { Containers } from "../../src/gen/github.com/containerd/containerd/api/services/containers/v1/containers_pb.js";
import {
  Content,
  ReadContentResponseSchema,
  WriteAction,
} from "../../src/gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js";
import {
  Version,
  VersionResponseSchema,
} from "../../src/gen/github.com/containerd/containerd/api/services/version/v1/version_pb.js";
import { grpcTimeout, isConnectionLoss } from "../../src/libcontainerd/grpc/grpc-http2.js";
import {
  createContainerdTransport,
  MAX_MESSAGE_BYTES,
  serviceClient,
} from "../../src/libcontainerd/grpc/transport.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Seen {
  headers: Record<string, unknown>;
  /** The request's DATA. */
  body: Buffer[];
  rstCode?: number;
}

/** A gRPC-shaped node:http2 server on 127.0.0.1; `answer` gets each stream once its request ended. */
async function grpcServer(answer: (stream: ServerHttp2Stream, seen: Seen, index: number) => void) {
  const server: Http2Server = createServer();
  const seen: Seen[] = [];
  const sessions: Http2Session[] = [];
  server.on("session", (session) => sessions.push(session));
  server.on("stream", (stream, headers) => {
    const entry: Seen = { headers, body: [] };
    seen.push(entry);
    stream.on("error", () => {});
    stream.on("close", () => {
      entry.rstCode = stream.rstCode;
    });
    stream.on("data", (chunk: Buffer) => entry.body.push(chunk));
    const index = seen.length - 1;
    stream.on("end", () => answer(stream, entry, index));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const transport = createContainerdTransport({ address: `tcp://127.0.0.1:${port}`, namespace: "ns-test" });
  cleanups.push(async () => {
    transport.close();
    // Streams a test left open (held, never answered) would keep server.close() waiting.
    for (const session of sessions) session.destroy();
    server.close();
    await once(server, "close");
  });
  return {
    seen,
    version: serviceClient(Version, transport),
    containers: serviceClient(Containers, transport),
    content: serviceClient(Content, transport),
  };
}

const grpcMessage = (bytes: Uint8Array) => {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
};

function reply(stream: ServerHttp2Stream, body: Buffer, status = "0", message?: string): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () =>
    stream.sendTrailers({ "grpc-status": status, ...(message ? { "grpc-message": message } : {}) }),
  );
  stream.end(body);
}

/** One Content.Read answer: `bytes` of data, each byte `n`, at offset `n`. */
const readAnswer = (n: number, bytes: number) =>
  grpcMessage(
    toBinary(
      ReadContentResponseSchema,
      create(ReadContentResponseSchema, { offset: BigInt(n), data: Buffer.alloc(bytes, n & 0xff) }),
    ),
  );

/**
 * Writes `messages` one after another, each once the previous one's write completed, which node:http2
 * reports only once nghttp2 sent it all (within our windows); `sent` counts the bytes of completed
 * writes. The messages at `pauses` wait 100 ms first.
 */
function streamAnswers(
  stream: ServerHttp2Stream,
  messages: Buffer[],
  pauses: ReadonlySet<number> = new Set(),
): { sent: number } {
  const progress = { sent: 0 };
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  const paused = new Set<number>();
  const next = (i: number): void => {
    if (stream.closed) return;
    if (i === messages.length) {
      stream.end();
      return;
    }
    if (pauses.has(i) && !paused.has(i)) {
      paused.add(i);
      setTimeout(() => next(i), 100);
      return;
    }
    stream.write(messages[i], (err) => {
      if (err) return;
      progress.sent += messages[i]!.length;
      next(i + 1);
    });
  };
  next(0);
  return progress;
}

/** Resolves once `value()` stayed the same over 10 looks 25 ms apart: the writer is stuck (or done). */
async function settled(value: () => number): Promise<number> {
  let last = value();
  for (let same = 0; same < 10; ) {
    await new Promise((r) => setTimeout(r, 25));
    const now = value();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** Resolves once `condition()` holds, or after 3 s (the assertion after it then says what did not happen). */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition() && waited < 3000; waited += 20)
    await new Promise((r) => setTimeout(r, 20));
}

const collect = async <T>(messages: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const message of messages) out.push(message);
  return out;
};

/** Refuses `stream` (RST_STREAM REFUSED_STREAM) after `ms`, as a server that took long to decide would. */
function refuseAfter(stream: ServerHttp2Stream, ms: number): void {
  setTimeout(() => {
    if (!stream.closed) stream.close(constants.NGHTTP2_REFUSED_STREAM);
  }, ms);
}

/**
 * The attempts of a call with a 300 ms deadline that the server ends 200 ms in: the first sent the
 * whole deadline as grpc-timeout; a retry, sent 200 ms or more into the call, what was left (or
 * none went out, the time gone); never a third.
 */
function expectTimeLeft(seen: Seen[]): void {
  expect(seen.length).toBeLessThanOrEqual(2);
  const timeouts = seen.map((s) => Number.parseInt(String(s.headers["grpc-timeout"]), 10));
  expect(timeouts[0]).toBe(300);
  for (const timeout of timeouts.slice(1)) expect(timeout).toBeLessThanOrEqual(100);
}

/** Our receive window per stream (grpc-http2.ts's STREAM_WINDOW_BYTES). */
const STREAM_WINDOW = 4 * 1024 * 1024;

const rejection = async (promise: Promise<unknown>): Promise<ConnectError> => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
};

describe("gRPC transport against node:http2 over TCP", () => {
  it("a unary call: the request headers a gRPC server needs, the answer decoded", async () => {
    const { seen, version } = await grpcServer((stream) =>
      reply(
        stream,
        grpcMessage(
          toBinary(VersionResponseSchema, create(VersionResponseSchema, { version: "v9", revision: "r1" })),
        ),
      ),
    );
    expect(await version.version({})).toMatchObject({ version: "v9", revision: "r1" });
    expect(seen[0]!.headers).toMatchObject({
      ":method": "POST",
      ":scheme": "http",
      ":path": "/containerd.services.version.v1.Version/Version",
      "content-type": "application/grpc+proto",
      te: "trailers",
      "containerd-namespace": "ns-test",
    });
    // A call's own headers take precedence over the transport's.
    await version.version({}, { headers: { "containerd-namespace": "other", "x-lease": "l1" } });
    expect(seen[1]!.headers).toMatchObject({ "containerd-namespace": "other", "x-lease": "l1" });
  });

  it("a trailers-only error answer: its code, and its grpc-message percent-decoded", async () => {
    const { containers } = await grpcServer((stream) =>
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "5",
          "grpc-message": "container%20%22x%22%3A%20not%20found",
        },
        { endStream: true },
      ),
    );
    const err = await rejection(containers.get({ id: "x" }));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe('container "x": not found');
    expect(isConnectionLoss(err)).toBe(false);
  });

  it("an HTTP status without grpc-status is mapped as gRPC does (503 → unavailable)", async () => {
    const { containers } = await grpcServer((stream) =>
      stream.respond({ ":status": 503 }, { endStream: true }),
    );
    const err = await rejection(containers.create({ container: { id: "c" } }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("HTTP status 503");
  });

  it("REFUSED_STREAM: the call is sent again, transparently, until answered; refused every time, it is a connection loss", async () => {
    const { seen, containers } = await grpcServer((stream, _seen, index) => {
      if (index < 2 || index >= 3) stream.close(constants.NGHTTP2_REFUSED_STREAM);
      else reply(stream, grpcMessage(new Uint8Array()));
    });
    await containers.create({ container: { id: "c" } });
    expect(seen).toHaveLength(3);
    const err = await rejection(containers.create({ container: { id: "c" } }));
    expect(err.code).toBe(Code.Unavailable);
    expect(isConnectionLoss(err)).toBe(true);
    // The first try and three transparent retries.
    expect(seen).toHaveLength(7);
  });

  it("GOAWAY with a last-stream-id: calls above it are sent again on a new connection, the others answered on the old", async () => {
    const held: ServerHttp2Stream[] = [];
    const sessions = new Set<unknown>();
    const { seen, containers } = await grpcServer((stream) => {
      sessions.add(stream.session);
      if (sessions.size > 1) return reply(stream, grpcMessage(new Uint8Array()));
      held.push(stream);
      if (held.length < 3) return;
      // Streams 3 and 5 were never processed: only stream 1 is answered here.
      stream.session!.goaway(constants.NGHTTP2_NO_ERROR, 1);
      reply(held[0]!, grpcMessage(new Uint8Array()));
    });
    const calls = [1, 2, 3].map((n) => containers.create({ container: { id: `c${n}` } }));
    await Promise.all(calls);
    expect(sessions.size).toBe(2);
    expect(seen).toHaveLength(5);
  });

  it("a deadline: grpc-timeout sent, the call ends DeadlineExceeded, the server sees CANCEL", async () => {
    const { seen, containers } = await grpcServer(() => {});
    const err = await rejection(containers.create({ container: { id: "c" } }, { timeoutMs: 50 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(seen[0]!.headers["grpc-timeout"]).toBe("50m");
    while (seen[0]!.rstCode === undefined) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]!.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("a deadline of 28 hours or more: grpc-timeout in the largest unit that keeps 8 digits, as grpc-go reads it", async () => {
    const { seen, containers } = await grpcServer((stream) => reply(stream, grpcMessage(new Uint8Array())));
    for (const timeoutMs of [99_999_999, 100_000_000, 48 * 3_600_000])
      await containers.create({ container: { id: "c" } }, { timeoutMs });
    expect(seen.map((s) => s.headers["grpc-timeout"])).toEqual(["99999999m", "100000S", "172800S"]);
    expect(grpcTimeout(1e13)).toBe("2777778H");
    expect(grpcTimeout(1e16)).toBe("99999999H");
  });

  it("the server resets a stream: its code mapped as grpc-go maps it, the connection not counted lost", async () => {
    const { seen, containers } = await grpcServer((stream, _seen, index) =>
      index === 0
        ? stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM)
        : reply(stream, grpcMessage(new Uint8Array())),
    );
    const err = await rejection(containers.create({ container: { id: "c" } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(isConnectionLoss(err)).toBe(false);
    // Not sent again: the server saw the call.
    await containers.create({ container: { id: "d" } });
    expect(seen).toHaveLength(2);
  });

  it("a grpc-message with a byte that is no UTF-8: the rest still percent-decoded", async () => {
    const { containers } = await grpcServer((stream) =>
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "5",
          "grpc-message": "open /var/lib/caf%C3%A9/x%FF: no such file",
        },
        { endStream: true },
      ),
    );
    const err = await rejection(containers.get({ id: "x" }));
    expect(err.rawMessage).toBe("open /var/lib/café/x\uFFFD: no such file");
  });

  it("tells the server how large a header block it takes (SETTINGS_MAX_HEADER_LIST_SIZE)", async () => {
    let advertised: number | undefined;
    const { containers } = await grpcServer((stream) => {
      advertised = stream.session?.remoteSettings.maxHeaderListSize;
      reply(stream, grpcMessage(new Uint8Array()));
    });
    await containers.create({ container: { id: "c" } });
    expect(advertised).toBe(1024 * 1024);
  });

  it("an answer of many DATA frames arrives whole (the parser joins its parts once)", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    const { version } = await grpcServer((stream) =>
      reply(
        stream,
        grpcMessage(
          toBinary(VersionResponseSchema, create(VersionResponseSchema, { version: big.toString() })),
        ),
      ),
    );
    expect((await version.version({})).version).toBe(big.toString());
  });

  it("an abort: the call ends Canceled with the signal's reason, the server sees CANCEL", async () => {
    const controller = new AbortController();
    const { seen, containers } = await grpcServer(() => controller.abort(new Error("user stop")));
    const err = await rejection(containers.create({ container: { id: "c" } }, { signal: controller.signal }));
    expect(err.code).toBe(Code.Canceled);
    while (seen[0]!.rstCode === undefined) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]!.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("an answer larger than the message limit: ResourceExhausted, the stream cancelled", async () => {
    const { seen, containers } = await grpcServer((stream) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 1);
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.write(head);
    });
    const err = await rejection(containers.create({ container: { id: "c" } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    while (seen[0]!.rstCode === undefined) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]!.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("a port nobody listens on: cannot connect, with ECONNREFUSED on the cause", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, "close");
    const transport = createContainerdTransport({ address: `tcp://127.0.0.1:${port}`, namespace: "n" });
    cleanups.push(() => transport.close());
    const err = await rejection(serviceClient(Containers, transport).create({ container: { id: "c" } }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("cannot connect to containerd (ECONNREFUSED)");
    expect((err.cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    expect(isConnectionLoss(err)).toBe(true);
  });

  it("a server stream whose caller stops reading: the server is held at the stream window; all of it arrives once the caller reads on", async () => {
    const messages = Array.from({ length: 256 }, (_, n) => readAnswer(n, 64 * 1024));
    const total = messages.reduce((sum, m) => sum + m.length, 0);
    let progress: { sent: number } | undefined;
    const { content } = await grpcServer((stream) => {
      progress = streamAnswers(stream, messages);
    });
    const reader = content.read({ digest: "sha256:x" })[Symbol.asyncIterator]();
    const first = await reader.next();
    expect(first.value?.offset).toBe(0n);
    // The caller holds one message and reads no more. The server sends the window's worth (its
    // first write, what we took, is not given back before a quarter of the window is taken) and no
    // more: what it sent is bounded by the window, not by the 16 MiB it has.
    while (progress!.sent < STREAM_WINDOW - 2 * messages[0]!.length)
      await new Promise((r) => setTimeout(r, 10));
    const held = await settled(() => progress!.sent);
    expect(held).toBeLessThanOrEqual(STREAM_WINDOW);
    expect(held).toBeLessThan(total);
    let n = 1;
    for (let next = await reader.next(); !next.done; next = await reader.next(), n++) {
      expect(next.value.offset).toBe(BigInt(n));
      expect(next.value.data.length).toBe(64 * 1024);
      expect(next.value.data.every((b: number) => b === (n & 0xff))).toBe(true);
    }
    expect(n).toBe(messages.length);
    expect(progress!.sent).toBe(total);
  });

  it("a caller that breaks out of a server stream, without a signal: the call ends (RST_STREAM), not held at the window", async () => {
    const messages = Array.from({ length: 256 }, (_, n) => readAnswer(n, 64 * 1024));
    let server: ServerHttp2Stream | undefined;
    const { content, seen } = await grpcServer((stream) => {
      server = stream;
      streamAnswers(stream, messages);
    });
    for await (const message of content.read({ digest: "sha256:x" })) {
      expect(message.offset).toBe(0n);
      break; // connect's iterable has no return() of its own: before, nothing reached the transport
    }
    await until(() => server?.closed === true);
    expect(server?.closed).toBe(true);
    expect(seen[0]?.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("a throw in the loop over a server stream ends that call too", async () => {
    let server: ServerHttp2Stream | undefined;
    const { content, seen } = await grpcServer((stream) => {
      server = stream;
      // One message, and the stream left open: only the caller can end it.
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.write(readAnswer(0, 10));
    });
    const messages = content.read({ digest: "sha256:y" });
    await expect(
      (async () => {
        for await (const _ of messages) throw new Error("the caller's own");
      })(),
    ).rejects.toThrow("the caller's own");
    await until(() => server?.closed === true);
    expect(server?.closed).toBe(true);
    expect(seen).toHaveLength(1);
  });

  it("a server stream's message larger than the stream window arrives whole, the caller waiting for it or not", async () => {
    const big = 6 * 1024 * 1024;
    const messages = [readAnswer(0, 10), readAnswer(1, big), readAnswer(2, 10), readAnswer(3, big)];
    let progress: { sent: number } | undefined;
    const { content } = await grpcServer((stream) => {
      progress = streamAnswers(stream, messages, new Set([1]));
    });
    const reader = content.read({ digest: "sha256:x" })[Symbol.asyncIterator]();
    expect((await reader.next()).value?.offset).toBe(0n);
    // The first large message begins while its caller waits for it (the server paused before it).
    // The second has the window's worth arrived before its caller asks for it: the rest comes once
    // asked for.
    const second = await reader.next();
    expect(second.value?.data.length).toBe(big);
    expect((await reader.next()).value?.offset).toBe(2n);
    await settled(() => progress!.sent);
    const fourth = await reader.next();
    expect(fourth.value?.offset).toBe(3n);
    expect(fourth.value?.data.length).toBe(big);
    expect(fourth.value?.data.every((b: number) => b === 3)).toBe(true);
    expect((await reader.next()).done).toBe(true);
  });

  it("a message larger than the window is granted only once its caller asks for it, not when it begins behind the message the caller waited for", async () => {
    const big = 6 * 1024 * 1024;
    // One write: the small message and the start of the large one share a DATA frame.
    const both = Buffer.concat([readAnswer(0, 10), readAnswer(1, big)]);
    let progress: { sent: number } | undefined;
    const { content } = await grpcServer((stream) => {
      progress = streamAnswers(stream, [both]);
    });
    const reader = content.read({ digest: "sha256:x" })[Symbol.asyncIterator]();
    expect((await reader.next()).value?.offset).toBe(0n);
    // The caller holds the first message and does not ask for the second: the server is held at
    // the window, its one write not done.
    await settled(() => progress!.sent);
    expect(progress!.sent).toBe(0);
    const second = await reader.next();
    expect(second.value?.data.length).toBe(big);
    expect((await reader.next()).done).toBe(true);
    expect(progress!.sent).toBe(both.length);
  });

  it("a unary call refused again and again: its deadline counts from the first try, a retry is sent with the time left, and the call ends DeadlineExceeded", async () => {
    const { seen, containers } = await grpcServer((stream) => refuseAfter(stream, 200));
    const err = await rejection(containers.create({ container: { id: "c" } }, { timeoutMs: 300 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expectTimeLeft(seen);
  });

  it("a server-streaming call refused before any answer (REFUSED_STREAM) is sent again, transparently, the same request; refused every time, Unavailable", async () => {
    const { seen, content } = await grpcServer((stream, _seen, index) => {
      if (index < 2 || index >= 3) stream.close(constants.NGHTTP2_REFUSED_STREAM);
      else streamAnswers(stream, [readAnswer(0, 10), readAnswer(1, 10)]);
    });
    const answers = await collect(content.read({ digest: "sha256:x", offset: 7n }));
    expect(answers.map((a) => a.offset)).toEqual([0n, 1n]);
    expect(seen).toHaveLength(3);
    const request = Buffer.concat(seen[0]!.body);
    expect(request.length).toBeGreaterThan(5);
    for (const s of seen) expect(Buffer.concat(s.body)).toEqual(request);
    const err = await rejection(collect(content.read({ digest: "sha256:x" })));
    expect(err.code).toBe(Code.Unavailable);
    expect(isConnectionLoss(err)).toBe(true);
    // The first try and three transparent retries.
    expect(seen).toHaveLength(7);
  });

  it("a server-streaming call above a GOAWAY's last-stream-id is sent again on a new connection", async () => {
    const held: ServerHttp2Stream[] = [];
    const sessions = new Set<unknown>();
    const { seen, containers, content } = await grpcServer((stream) => {
      sessions.add(stream.session);
      if (sessions.size > 1) return streamAnswers(stream, [readAnswer(0, 10)]);
      held.push(stream);
      if (held.length < 2) return;
      // Stream 3, the read, was never processed: only stream 1 is answered here.
      stream.session!.goaway(constants.NGHTTP2_NO_ERROR, 1);
      reply(held[0]!, grpcMessage(new Uint8Array()));
    });
    const created = containers.create({ container: { id: "c" } });
    // Awaited below; should the read fail first, its failure is the one reported.
    created.catch(() => {});
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    const answers = await collect(content.read({ digest: "sha256:x" }));
    await created;
    expect(answers.map((a) => a.offset)).toEqual([0n]);
    expect(sessions.size).toBe(2);
    expect(seen.map((s) => s.headers[":path"])).toEqual([
      "/containerd.services.containers.v1.Containers/Create",
      "/containerd.services.content.v1.Content/Read",
      "/containerd.services.content.v1.Content/Read",
    ]);
  });

  it("a server-streaming call refused until its deadline passes: DeadlineExceeded, a retry sent with the time left", async () => {
    const { seen, content } = await grpcServer((stream) => refuseAfter(stream, 200));
    const err = await rejection(collect(content.read({ digest: "sha256:x" }, { timeoutMs: 300 })));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expectTimeLeft(seen);
  });

  it("a bidi-streaming call refused: Unavailable, not sent again (its requests cannot be replayed)", async () => {
    const { seen, content } = await grpcServer((stream) => stream.close(constants.NGHTTP2_REFUSED_STREAM));
    async function* requests() {
      yield { action: WriteAction.STAT, ref: "r" };
    }
    const err = await rejection(collect(content.write(requests())));
    expect(err.code).toBe(Code.Unavailable);
    expect(seen).toHaveLength(1);
  });

  it("a repeatable call whose connection was lost is sent once more with what is left of its deadline", async () => {
    const { seen, containers } = await grpcServer((stream) =>
      setTimeout(() => stream.session?.destroy(), 200),
    );
    const err = await rejection(containers.get({ id: "c" }, { timeoutMs: 300 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expectTimeLeft(seen);
  });

  it("a server-streaming call goes out in its caller's turn: a unary call made after it reaches the server after it", async () => {
    const { seen, containers, content } = await grpcServer((stream, entry) =>
      String(entry.headers[":path"]).endsWith("/Read")
        ? streamAnswers(stream, [readAnswer(0, 10)])
        : reply(stream, grpcMessage(new Uint8Array())),
    );
    // As the event monitor does: subscribe, then list tasks; an exit is in one or the other.
    const read = collect(content.read({ digest: "sha256:x" }));
    await containers.get({ id: "c" });
    expect((await read).map((a) => a.offset)).toEqual([0n]);
    expect(seen.map((s) => s.headers[":path"])).toEqual([
      "/containerd.services.content.v1.Content/Read",
      "/containerd.services.containers.v1.Containers/Get",
    ]);
  });
});
