import type { Logger } from "pino";
import type { Backend, LibcontainerdEvent } from "./types/events.js";

/**
 * Fans events out to `events()` iterables and to the moby-style Backend. Backend calls for one
 * container run one at a time, in order; different containers run concurrently. Shared by both
 * backends so they deliver events the same way.
 */
export class EventFanout {
  private backend: Backend | undefined;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly subscribers = new Set<EventSubscriber>();
  private closed = false;

  constructor(private readonly logger: Logger) {}

  setBackend(backend: Backend): void {
    this.backend = backend;
  }

  publish(event: LibcontainerdEvent): void {
    if (this.closed) return;
    for (const subscriber of this.subscribers) subscriber.push(event);
    const backend = this.backend;
    if (!backend) return;
    const id = event.containerId;
    const previous = this.chains.get(id) ?? Promise.resolve();
    const next = previous
      .then(() => backend.processEvent(id, event.type, event))
      .catch((err: unknown) => {
        this.logger.error({ err, containerId: id, event: event.type }, "backend failed to process event");
      });
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
  }

  subscribe(signal?: AbortSignal): AsyncIterable<LibcontainerdEvent> {
    const onAbort = (): void => subscriber.end(true);
    // However it ends (an abort, a break out of the loop, close()), it leaves nothing on the signal,
    // which may be long-lived (an application's): one listener per subscription would pile up.
    const subscriber = new EventSubscriber(() => {
      this.subscribers.delete(subscriber);
      signal?.removeEventListener("abort", onAbort);
    });
    if (this.closed || signal?.aborted) subscriber.end();
    else {
      this.subscribers.add(subscriber);
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    return subscriber;
  }

  /** Ends every iterable and waits for queued backend calls. */
  async close(): Promise<void> {
    this.closed = true;
    for (const subscriber of this.subscribers) subscriber.end();
    await Promise.all(this.chains.values());
  }
}

class EventSubscriber implements AsyncIterable<LibcontainerdEvent> {
  private readonly buffer: LibcontainerdEvent[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(private readonly onEnd: () => void) {}

  push(event: LibcontainerdEvent): void {
    if (this.ended) return;
    this.buffer.push(event);
    this.wake?.();
  }

  /** `discard`: stop at once (an abort) instead of handing out what is buffered. */
  end(discard = false): void {
    if (discard) this.buffer.length = 0;
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LibcontainerdEvent> {
    try {
      while (true) {
        const event = this.buffer.shift();
        if (event) {
          yield event;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      this.end();
    }
  }
}
