/** The stream ids of Docker's multiplexed stream (pkg/stdcopy). */
export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export type StreamId = typeof STDIN | typeof STDOUT | typeof STDERR;

/** Content types dockerd gives hijacked and streamed output. */
export const RAW_STREAM = "application/vnd.docker.raw-stream";
export const MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream";

/** One frame: `[stream, 0, 0, 0, size (uint32, big-endian)]` then the payload. */
export function frame(stream: StreamId, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Splits a multiplexed byte stream back into frames (for tests and clients of our own). */
export class FrameReader {
  private pending = Buffer.alloc(0);

  push(chunk: Buffer): { stream: number; payload: Buffer }[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const frames: { stream: number; payload: Buffer }[] = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      frames.push({ stream: this.pending.readUInt8(0), payload: this.pending.subarray(8, 8 + size) });
      this.pending = this.pending.subarray(8 + size);
    }
    return frames;
  }
}
