import type { Readable, Writable } from "node:stream";

/**
 * Where a stream of the container goes. Something must read a container's output: a full pipe
 * stalls the process writing into it. `"capture"` keeps up to `maxOutputBytes` and drains the rest;
 * `"discard"` drains everything; `"inherit"` copies to this process's own stdout/stderr; a Writable
 * gets the bytes with backpressure (a slow writable slows the container down), and is not ended.
 */
export type OutputTarget = "capture" | "discard" | "inherit" | Writable;

export interface CapturedOutput {
  text: string;
  /** Bytes the container wrote, including those beyond the cap. */
  bytes: number;
  truncated: boolean;
}

/** Reads one stream to its end as `target` says; resolves when the stream has ended or closed. */
export function consumeOutput(
  stream: Readable | null,
  target: OutputTarget,
  maxBytes: number,
  inherit: Writable,
): Promise<CapturedOutput> {
  const result: CapturedOutput = { text: "", bytes: 0, truncated: false };
  if (!stream) return Promise.resolve(result);
  const chunks: Buffer[] = [];
  let kept = 0;
  const destination =
    target === "inherit" ? inherit : typeof target === "object" && target !== null ? target : undefined;
  // A destination that fails or closes (its reader went away) gets no more: the rest is drained, as
  // a stream left paused by it would stall the container, and its end would never come.
  const gone = () => {
    if (!destination) return;
    stream.unpipe(destination);
    stream.resume();
  };
  return new Promise((resolve) => {
    const finish = () => {
      stream.off("data", onData);
      destination?.off("error", gone);
      destination?.off("close", gone);
      result.text = Buffer.concat(chunks).toString("utf8");
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      result.bytes += chunk.length;
      if (target !== "capture") return;
      const room = maxBytes - kept;
      if (chunk.length > room) result.truncated = true;
      if (room > 0) {
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        chunks.push(part);
        kept += part.length;
      }
    };
    stream.on("data", onData);
    if (destination) {
      destination.on("error", gone);
      destination.on("close", gone);
      stream.pipe(destination, { end: false });
    }
    stream.once("end", finish);
    stream.once("close", finish);
    // A broken stream ends the output; the exit status still comes from wait().
    stream.once("error", finish);
  });
}
