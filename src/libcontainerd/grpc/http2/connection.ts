// The client side of one HTTP/2 connection (RFC 9113), just what gRPC calls need: requests whose
// header blocks the caller encoded, DATA both ways under flow control, trailers, RST_STREAM,
// GOAWAY, SETTINGS and PING answered. A stream is a plain object with a listener, not a Node
// Duplex: per call there is no stream machinery, no header objects, no callback per frame from C++.
// The connection sends no PING of its own (gRPC-go answers more than one per 5 minutes with GOAWAY).
import type { OnReadOpts, Socket } from "node:net";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  frame,
  frameHeader,
  goawayFrame,
  Http2ProtocolError,
  headersFrames,
  MAX_FRAME_BYTES_LIMIT,
  MAX_WINDOW_BYTES,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from "./frames.js";
import { HpackDecoder, HpackError } from "./hpack.js";

/** How a stream ended. */
export type StreamEnd =
  /** Both sides ended it (the response is complete). */
  | { kind: "done" }
  /** RST_STREAM: sent by the server (`local` false) or by us (`cancel`, a stream error). */
  | { kind: "reset"; code: number; local: boolean }
  /** The server never processed it (a GOAWAY below its id): safe to send again elsewhere. */
  | { kind: "refused" }
  /** Its connection ended under it; `connected` false if the connection never came up. */
  | { kind: "lost"; cause: Error | undefined; connected: boolean; goawayCode: number | undefined };

export interface StreamListener {
  /** A header block: the response's headers, then trailers (with `endStream`), or headers and end at once. */
  onHeaders(fields: string[], endStream: boolean): void;
  onData(chunk: Buffer, endStream: boolean): void;
  /** Everything written so far went out, after a `write` returned false. */
  onWritable(): void;
  /** The stream ended; called once, and nothing follows it. */
  onClose(end: StreamEnd): void;
}

export interface ConnectionOptions {
  /** Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindow: number;
  /** Our receive window for the whole connection (raised by WINDOW_UPDATE at the start). */
  connectionWindow: number;
  /** The connection accepts no more streams (GOAWAY, an error, closed): open new calls elsewhere. */
  onUnusable?: () => void;
}

/** A stream's queued DATA above which `write` asks the caller to wait for `onWritable`. */
const STREAM_HIGH_WATER_BYTES = 256 * 1024;
/** Socket bytes buffered above which DATA waits for the socket's 'drain'. */
const SOCKET_HIGH_WATER_BYTES = 256 * 1024;
/** Batches smaller than this are copied into one buffer for one write. */
const COALESCE_BYTES = 16 * 1024;
/** Socket reads land in one buffer of this size, reused (see `receive`). */
const READ_BUFFER_BYTES = 64 * 1024;
/** Largest header block we accept (headers or trailers), across its CONTINUATION frames. */
const MAX_HEADER_BLOCK_BYTES = 1024 * 1024;
const MAX_STREAM_ID = 2 ** 31 - 1;

export class ClientStream {
  /** 0 until its HEADERS went out (a stream waits while the server's MAX_CONCURRENT_STREAMS are open). */
  id = 0;
  sendWindow = 0;
  /** What the server may still send on this stream, as we told it. */
  recvWindow = 0;
  /** DATA octets received (or, with `windowOnRead`, taken by the reader) not yet given back with WINDOW_UPDATE. */
  recvConsumed = 0;
  /** Window granted beyond the stream window for a message larger than it (see `expect`); not given back twice. */
  recvExtra = 0;
  /** DATA waiting for flow-control window or the socket. */
  queue: Uint8Array[] = [];
  queuedBytes = 0;
  endQueued = false;
  endSent = false;
  remoteEnded = false;
  headersReceived = false;
  closed = false;
  wantsWritable = false;

  constructor(
    private readonly connection: Http2Connection,
    readonly block: Buffer,
    readonly listener: StreamListener,
    /**
     * Whether the stream's window is given back as its reader takes the data (`read`) rather than
     * as it arrives: a reader that stops makes the server wait instead of us buffering without bound.
     */
    readonly windowOnRead: boolean,
  ) {}

  /**
   * The reader took `bytes` of this stream's DATA (with `windowOnRead`): the server may send as
   * much again, given back once a quarter of the window is taken (as grpc-go's inFlow.onRead).
   */
  read(bytes: number): void {
    this.connection.streamRead(this, bytes);
  }

  /**
   * The reader waits for `bytes` more DATA, the rest of a message it needs whole (with
   * `windowOnRead`). If the server could not send them within the window, as when the message is
   * larger than the window, the window is raised for them (grpc-go's inFlow.maybeAdjust): else
   * neither side would move.
   */
  expect(bytes: number): void {
    this.connection.streamExpects(this, bytes);
  }

  /**
   * Queues `parts` as DATA (written as they are, not copied), then END_STREAM if `end`. Returns
   * false when the caller should wait for `onWritable` before writing more.
   */
  write(parts: readonly Uint8Array[], end = false): boolean {
    if (this.closed || this.endQueued) return false;
    for (const part of parts) {
      if (part.byteLength === 0) continue;
      this.queue.push(part);
      this.queuedBytes += part.byteLength;
    }
    if (end) this.endQueued = true;
    this.connection.wantsToSend(this);
    if (this.queuedBytes < STREAM_HIGH_WATER_BYTES) return true;
    this.wantsWritable = true;
    return false;
  }

  end(): void {
    this.write([], true);
  }

  /** Ends the stream with RST_STREAM (CANCEL unless `code` says otherwise); the listener hears `reset`. */
  cancel(code: number = ErrorCode.CANCEL): void {
    this.connection.resetStream(this, code);
  }
}

export class Http2Connection {
  private readonly streams = new Map<number, ClientStream>();
  /** Streams beyond the server's MAX_CONCURRENT_STREAMS, in order. */
  private waiting: ClientStream[] = [];
  private readonly sending = new Set<ClientStream>();
  private nextStreamId = 1;
  private peerMaxStreams = Number.POSITIVE_INFINITY;
  private peerInitialWindow = DEFAULT_WINDOW_BYTES;
  private peerMaxFrame = DEFAULT_MAX_FRAME_BYTES;
  private sendWindow = DEFAULT_WINDOW_BYTES;
  private recvWindow: number;
  private recvConsumed = 0;
  private readonly decoder = new HpackDecoder();
  private settingsSeen = false;
  private continuation:
    | { streamId: number; fragments: Buffer[]; bytes: number; endStream: boolean }
    | undefined;
  private partial: Buffer | undefined;
  /** Control frames (and HEADERS) to write at the next flush. */
  private readonly out: Buffer[] = [];
  private flushQueued = false;
  private answerQueued = false;
  private goingAway = false;
  private goawayCode: number | undefined;
  private closed = false;
  private connected: boolean;
  private error: Error | undefined;
  private refd = false;
  private unrefQueued = false;

  private readonly socket: Socket;

  /**
   * `open` connects the socket with `onread` (net.connect's option): reads land in one reused
   * buffer and come straight to `receive`, not through a Readable's chunks and 'data' events.
   */
  constructor(
    open: (onread: OnReadOpts) => Socket,
    private readonly opts: ConnectionOptions,
  ) {
    const socket = open({
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (bytes, buffer) => {
        this.receive(buffer as Buffer, bytes);
        return true;
      },
    });
    this.socket = socket;
    this.connected = !socket.connecting;
    // The connection keeps the process alive only while a stream is open (see `request`).
    socket.unref();
    this.recvWindow = opts.connectionWindow;
    socket.setNoDelay(true);
    socket.on("connect", () => {
      this.connected = true;
    });
    socket.on("drain", () => this.flush());
    socket.on("error", (err) => {
      this.error ??= err;
    });
    socket.on("close", () => this.onSocketClose());
    this.out.push(
      CLIENT_PREFACE,
      settingsFrame([
        [Setting.ENABLE_PUSH, 0],
        [Setting.INITIAL_WINDOW_SIZE, opts.streamWindow],
        // What we take in one header block: gRPC-go then resets only the stream whose trailers
        // are larger (a long grpc-message) instead of sending them, which would end the connection.
        [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK_BYTES],
      ]),
    );
    if (opts.connectionWindow > DEFAULT_WINDOW_BYTES) {
      this.out.push(windowUpdateFrame(0, opts.connectionWindow - DEFAULT_WINDOW_BYTES));
    }
    this.scheduleFlush();
  }

  /** Whether a new stream may start here. */
  get usable(): boolean {
    return !this.closed && !this.goingAway;
  }

  /**
   * Opens a stream whose request headers are `block` (HPACK, without the dynamic table). With
   * `windowOnRead` its window is given back as the reader calls `read`, else as DATA arrives.
   */
  request(block: Buffer, listener: StreamListener, windowOnRead = false): ClientStream {
    if (!this.usable) throw new Error("HTTP/2 connection no longer accepts streams");
    const stream = new ClientStream(this, block, listener, windowOnRead);
    if (!this.refd) {
      this.socket.ref();
      this.refd = true;
    }
    if (this.streams.size < this.peerMaxStreams) this.start(stream);
    else this.waiting.push(stream);
    return stream;
  }

  /** Closes the connection at once; streams still open end as `lost`. */
  destroy(): void {
    if (this.closed) return;
    this.out.push(goawayFrame(0, ErrorCode.NO_ERROR));
    this.flush();
    this.socket.destroySoon();
    this.becameUnusable();
    this.failAll();
  }

  private start(stream: ClientStream): void {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    stream.id = id;
    stream.sendWindow = this.peerInitialWindow;
    stream.recvWindow = this.opts.streamWindow;
    this.streams.set(id, stream);
    this.out.push(headersFrames(id, stream.block, false, this.peerMaxFrame));
    if (stream.queuedBytes > 0 || stream.endQueued) this.sending.add(stream);
    this.scheduleFlush();
    if (this.nextStreamId > MAX_STREAM_ID) this.becameUnusable();
  }

  /** @internal A stream queued DATA. */
  wantsToSend(stream: ClientStream): void {
    if (stream.id === 0) return;
    this.sending.add(stream);
    this.scheduleFlush();
  }

  /** @internal */
  resetStream(stream: ClientStream, code: number): void {
    if (stream.closed) return;
    if (stream.id === 0) {
      this.waiting = this.waiting.filter((s) => s !== stream);
    } else if (!this.closed) {
      this.out.push(rstStreamFrame(stream.id, code));
      this.scheduleFlush();
    }
    this.finish(stream, { kind: "reset", code, local: true });
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.closed) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * Control frames answering what we read (a PING's ACK, SETTINGS ACK, WINDOW_UPDATE): written
   * after this turn's callbacks, so that they share a write with the requests those callbacks
   * make. gRPC-go pings (BDP) on about every call's DATA: answered on their own, each call would
   * cost two writes.
   */
  private answerSoon(): void {
    if (this.flushQueued || this.answerQueued || this.closed) return;
    this.answerQueued = true;
    setImmediate(() => {
      this.answerQueued = false;
      if (this.out.length > 0) this.flush();
    });
  }

  /** Writes the queued control frames, then as much queued DATA as windows and the socket allow. */
  private flush(): void {
    this.flushQueued = false;
    if (this.closed || this.socket.destroyed) return;
    const batch = this.out.splice(0);
    let bytes = 0;
    for (const buf of batch) bytes += buf.length;
    const writable: ClientStream[] = [];
    let room = SOCKET_HIGH_WATER_BYTES - this.socket.writableLength - bytes;
    for (const stream of this.sending) {
      if (room <= 0) break;
      room -= this.takeData(stream, batch, room);
      if (stream.queuedBytes === 0 && (stream.endSent || !stream.endQueued)) {
        this.sending.delete(stream);
        if (stream.wantsWritable) {
          stream.wantsWritable = false;
          writable.push(stream);
        }
      }
    }
    if (batch.length === 1) this.socket.write(batch[0]!);
    else if (batch.length > 1) {
      let total = 0;
      for (const buf of batch) total += buf.byteLength;
      if (total <= COALESCE_BYTES) this.socket.write(Buffer.concat(batch, total));
      else {
        this.socket.cork();
        for (const buf of batch) this.socket.write(buf);
        this.socket.uncork();
      }
    }
    for (const stream of writable) if (!stream.closed) stream.listener.onWritable();
  }

  /** Moves up to `room` octets of `stream`'s queued DATA into `batch` as frames; returns the octets moved. */
  private takeData(stream: ClientStream, batch: Uint8Array[], room: number): number {
    let moved = 0;
    while (stream.queuedBytes > 0 || (stream.endQueued && !stream.endSent)) {
      const n =
        stream.queuedBytes === 0
          ? 0
          : Math.min(stream.queuedBytes, stream.sendWindow, this.sendWindow, this.peerMaxFrame, room - moved);
      if (stream.queuedBytes > 0 && n <= 0) break;
      const end = stream.endQueued && stream.queuedBytes === n;
      batch.push(frameHeader(n, FrameType.DATA, end ? Flag.END_STREAM : 0, stream.id));
      let left = n;
      while (left > 0) {
        const head = stream.queue[0]!;
        if (head.byteLength <= left) {
          batch.push(head);
          stream.queue.shift();
          left -= head.byteLength;
        } else {
          batch.push(head.subarray(0, left));
          stream.queue[0] = head.subarray(left);
          left = 0;
        }
      }
      stream.queuedBytes -= n;
      stream.sendWindow -= n;
      this.sendWindow -= n;
      moved += n + FRAME_HEADER_BYTES;
      if (end) {
        stream.endSent = true;
        break;
      }
    }
    return moved;
  }

  /**
   * The first `bytes` of `read`, a buffer the next read overwrites: what outlives this call (a
   * partial frame, DATA payloads, header block fragments) is copied.
   */
  private receive(read: Buffer, bytes: number): void {
    // After a protocol error or destroy() the rest of the socket's bytes mean nothing.
    if (this.closed) return;
    let buf = read.subarray(0, bytes);
    if (this.partial) {
      buf = Buffer.concat([this.partial, buf]);
      this.partial = undefined;
    }
    let pos = 0;
    try {
      while (buf.length - pos >= FRAME_HEADER_BYTES) {
        const length = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
        if (length > DEFAULT_MAX_FRAME_BYTES) {
          throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} octets`);
        }
        if (buf.length - pos < FRAME_HEADER_BYTES + length) break;
        const type = buf[pos + 3]!;
        const flags = buf[pos + 4]!;
        const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
        const payload = buf.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + length);
        pos += FRAME_HEADER_BYTES + length;
        this.onFrame(type, flags, streamId, payload);
        if (this.closed) return;
      }
    } catch (err) {
      if (!(err instanceof Http2ProtocolError)) throw err;
      this.protocolError(err);
      return;
    }
    if (pos < buf.length) this.partial = Buffer.from(buf.subarray(pos));
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen && type !== FrameType.SETTINGS) {
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "the server's preface is not SETTINGS");
    }
    if (this.continuation && type !== FrameType.CONTINUATION) {
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "a header block interrupted");
    }
    switch (type) {
      case FrameType.DATA:
        this.onData(flags, streamId, payload);
        return;
      case FrameType.HEADERS:
        this.onHeadersFrame(flags, streamId, payload);
        return;
      case FrameType.CONTINUATION:
        this.onContinuation(flags, streamId, payload);
        return;
      case FrameType.RST_STREAM:
        this.onRstStream(streamId, payload);
        return;
      case FrameType.SETTINGS:
        this.onSettings(flags, streamId, payload);
        return;
      case FrameType.PING:
        if (payload.length !== 8)
          throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PING of bad length");
        if (streamId !== 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        if ((flags & Flag.ACK) === 0) {
          this.out.push(frame(FrameType.PING, Flag.ACK, 0, payload));
          this.answerSoon();
        }
        return;
      case FrameType.GOAWAY:
        this.onGoaway(streamId, payload);
        return;
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(streamId, payload);
        return;
      case FrameType.PUSH_PROMISE:
        throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
      default:
        // PRIORITY and frame types we do not know are ignored (RFC 9113 §5.5, §6.3).
        return;
    }
  }

  /** The stream a frame is for; undefined for one already closed; an error for one never opened. */
  private streamFor(streamId: number, what: string): ClientStream | undefined {
    if (streamId === 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, `${what} on stream 0`);
    const stream = this.streams.get(streamId);
    if (!stream && (streamId >= this.nextStreamId || streamId % 2 === 0)) {
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, `${what} on idle stream ${streamId}`);
    }
    return stream;
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    const stream = this.streamFor(streamId, "DATA");
    // The whole frame, padding included, counts against both windows (RFC 9113 §6.9.1).
    const length = payload.length;
    this.recvWindow -= length;
    if (this.recvWindow < 0) throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window");
    this.recvConsumed += length;
    if (this.recvConsumed >= this.opts.connectionWindow / 2) {
      this.out.push(windowUpdateFrame(0, this.recvConsumed));
      this.recvWindow += this.recvConsumed;
      this.recvConsumed = 0;
      this.answerSoon();
    }
    let data = payload;
    if (flags & Flag.PADDED) {
      const pad = payload[0] ?? 0;
      if (length === 0 || pad >= length)
        throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA padding");
      data = payload.subarray(1, length - pad);
    }
    if (!stream) return;
    if (stream.remoteEnded || !stream.headersReceived) {
      this.resetStream(stream, stream.remoteEnded ? ErrorCode.STREAM_CLOSED : ErrorCode.PROTOCOL_ERROR);
      return;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    if (!end) {
      if (!stream.windowOnRead) {
        stream.recvConsumed += length;
        if (stream.recvConsumed >= this.opts.streamWindow / 2) this.giveBack(stream, stream.recvConsumed);
      } else if (data.length < length) {
        // Padding (and its length octet) counts against the window but no reader takes it.
        this.streamRead(stream, length - data.length);
      }
    }
    // A copy: `data` lies in the read buffer, and the listener may keep it (a message in parts).
    if (data.length > 0 || end) stream.listener.onData(Buffer.from(data), end);
    if (end && !stream.closed) this.remoteEnded(stream);
  }

  /** @internal */
  streamRead(stream: ClientStream, bytes: number): void {
    // A stream not started yet (id 0) has received nothing to give back (see `streamExpects`).
    if (stream.closed || stream.id === 0) return;
    let taken = bytes;
    if (stream.recvExtra > 0) {
      // These bytes were granted beyond the window already (`streamExpects`).
      const granted = Math.min(stream.recvExtra, taken);
      stream.recvExtra -= granted;
      taken -= granted;
    }
    stream.recvConsumed += taken;
    if (stream.recvConsumed >= this.opts.streamWindow / 4) this.giveBack(stream, stream.recvConsumed);
  }

  /** @internal */
  streamExpects(stream: ClientStream, bytes: number): void {
    // A stream not started yet (id 0) has received nothing: its whole window comes with its start.
    if (stream.closed || stream.id === 0 || bytes <= stream.recvWindow) return;
    // What was taken and not yet given back goes now, and beyond it what this message still needs.
    const extra = Math.max(0, Math.min(bytes, MAX_WINDOW_BYTES) - stream.recvWindow - stream.recvConsumed);
    stream.recvExtra += extra;
    this.giveBack(stream, stream.recvConsumed + extra);
  }

  /** WINDOW_UPDATE of `increment` for `stream`, covering what it had taken (`recvConsumed`). */
  private giveBack(stream: ClientStream, increment: number): void {
    stream.recvConsumed = 0;
    if (increment <= 0) return;
    stream.recvWindow += increment;
    this.out.push(windowUpdateFrame(stream.id, increment));
    this.answerSoon();
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let start = 0;
    let pad = 0;
    if (flags & Flag.PADDED) {
      pad = payload[0] ?? 0;
      start = 1;
    }
    if (flags & Flag.PRIORITY) start += 5;
    if (start + pad > payload.length)
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS padding");
    const fragment = payload.subarray(start, payload.length - pad);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) this.onHeaderBlock(streamId, fragment, endStream);
    else
      this.continuation = { streamId, fragments: [Buffer.from(fragment)], bytes: fragment.length, endStream };
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const pending = this.continuation;
    if (!pending || pending.streamId !== streamId) {
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    }
    pending.fragments.push(Buffer.from(payload));
    pending.bytes += payload.length;
    if (pending.bytes > MAX_HEADER_BLOCK_BYTES) {
      throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "header block too large");
    }
    if (flags & Flag.END_HEADERS) {
      this.continuation = undefined;
      this.onHeaderBlock(streamId, Buffer.concat(pending.fragments, pending.bytes), pending.endStream);
    }
  }

  private onHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    let fields: string[];
    try {
      // Every block is decoded, a closed stream's too: each may change the dynamic table.
      fields = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HpackError) throw new Http2ProtocolError(ErrorCode.COMPRESSION_ERROR, err.message);
      throw err;
    }
    const stream = this.streamFor(streamId, "HEADERS");
    if (!stream) return;
    if (stream.remoteEnded) {
      this.resetStream(stream, ErrorCode.STREAM_CLOSED);
      return;
    }
    // An informational (1xx) response precedes the real one (RFC 9113 §8.1).
    if (!stream.headersReceived && !endStream && /^1\d\d$/.test(statusOf(fields) ?? "")) return;
    if (stream.headersReceived && !endStream) {
      // Trailers must end the stream (RFC 9113 §8.1): a malformed response.
      this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    stream.headersReceived = true;
    stream.listener.onHeaders(fields, endStream);
    if (endStream && !stream.closed) this.remoteEnded(stream);
  }

  /** The server ended its side: done if ours is too; else the response came early, and we stop sending. */
  private remoteEnded(stream: ClientStream): void {
    stream.remoteEnded = true;
    if (stream.endSent) {
      this.finish(stream, { kind: "done" });
      return;
    }
    // As gRPC-go's client does: the response is complete, so the request need not be (RFC 9113 §8.1).
    this.out.push(rstStreamFrame(stream.id, ErrorCode.NO_ERROR));
    this.answerSoon();
    this.finish(stream, { kind: "done" });
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of bad length");
    const stream = this.streamFor(streamId, "RST_STREAM");
    if (stream) this.finish(stream, { kind: "reset", code: payload.readUInt32BE(0), local: false });
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.length !== 0)
        throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
      return;
    }
    if (payload.length % 6 !== 0)
      throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS of bad length");
    this.settingsSeen = true;
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (value !== 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "a server enabled push");
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW_BYTES) {
            throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large");
          }
          // Applies to every open stream's send window, as a delta (RFC 9113 §6.9.2).
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const stream of this.streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW_BYTES) {
              throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "a stream's window overflowed");
            }
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_FRAME_BYTES_LIMIT) {
            throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
          }
          this.peerMaxFrame = value;
          break;
        default:
          // HEADER_TABLE_SIZE: our encoder never uses the dynamic table. MAX_HEADER_LIST_SIZE is
          // advisory; unknown settings are ignored (RFC 9113 §6.5.2).
          break;
      }
    }
    this.out.push(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.startWaiting();
    this.answerSoon();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of bad length");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_BYTES) {
        throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflowed");
      }
    } else {
      const stream = this.streamFor(streamId, "WINDOW_UPDATE");
      if (!stream) return;
      if (increment === 0) {
        this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
        return;
      }
      stream.sendWindow += increment;
      if (stream.sendWindow > MAX_WINDOW_BYTES) {
        this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
        return;
      }
    }
    if (this.sending.size > 0) this.scheduleFlush();
  }

  private onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY of bad length");
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    this.goawayCode = payload.readUInt32BE(4);
    this.becameUnusable();
    // Streams above the last one the server processed, and those never sent, may go elsewhere;
    // the others finish here (gRPC-go's graceful GOAWAY names 2^31-1 first, then the real one).
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastStreamId) this.finish(stream, { kind: "refused" });
    }
    for (const stream of this.waiting.splice(0)) this.finish(stream, { kind: "refused" });
    this.closeIfIdle();
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxStreams && this.usable) {
      this.start(this.waiting.shift()!);
    }
  }

  private finish(stream: ClientStream, end: StreamEnd): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.queue = [];
    stream.queuedBytes = 0;
    if (stream.id !== 0) this.streams.delete(stream.id);
    this.sending.delete(stream);
    stream.listener.onClose(end);
    this.startWaiting();
    this.closeIfIdle();
    this.unrefWhenIdle();
  }

  /**
   * Lets the process exit while no stream is open. Between back-to-back calls the socket stays
   * ref'd: the unref waits a turn of the event loop, so a sequence of calls does not toggle it.
   */
  private unrefWhenIdle(): void {
    if (!this.refd || this.unrefQueued || !this.idle) return;
    this.unrefQueued = true;
    setImmediate(() => {
      this.unrefQueued = false;
      if (this.refd && this.idle) {
        this.socket.unref();
        this.refd = false;
      }
    });
  }

  private get idle(): boolean {
    return this.streams.size === 0 && this.waiting.length === 0;
  }

  private closeIfIdle(): void {
    if (this.goingAway && !this.closed && this.idle) {
      this.flush();
      this.socket.end();
    }
  }

  private becameUnusable(): void {
    if (this.goingAway) return;
    this.goingAway = true;
    this.opts.onUnusable?.();
    // Streams still waiting for a slot (MAX_CONCURRENT_STREAMS) never went out: they go elsewhere
    // (stream ids ran out, GOAWAY), rather than wait here for good.
    for (const stream of this.waiting.splice(0)) this.finish(stream, { kind: "refused" });
  }

  private protocolError(err: Http2ProtocolError): void {
    this.error ??= err;
    this.out.push(goawayFrame(0, err.code, err.message));
    this.flush();
    this.socket.destroySoon();
    this.becameUnusable();
    this.failAll();
  }

  private onSocketClose(): void {
    this.becameUnusable();
    this.failAll();
  }

  private failAll(): void {
    this.closed = true;
    const end: StreamEnd = {
      kind: "lost",
      cause: this.error,
      connected: this.connected,
      goawayCode: this.goawayCode,
    };
    const streams = [...this.streams.values(), ...this.waiting.splice(0)];
    for (const stream of streams) this.finish(stream, end);
  }
}

function statusOf(fields: string[]): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === ":status") return fields[i + 1];
  return undefined;
}
