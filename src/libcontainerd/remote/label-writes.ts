/**
 * The remembered state this client writes on containerd's container records (io.ctrd.state.*), per
 * container: label writes in order, and an exit that waits for the next turn of the event loop
 * before it is written, so that a container deleted right after its task never has it written.
 *
 * Each label write is a bolt write transaction (with fsync) in containerd, which holds bolt's only
 * writer lock while the lifecycle's own transactions wait. An exit needs writing only once nothing
 * else holds it: until its task is deleted the task itself keeps it (and whoever looks at a stopped
 * task records it, see state/observe.ts); once the container record is deleted there is nothing to
 * write it on. So an exit is held while the task is started or deleted and while the container is
 * deleted (`hold`), and written on the turn after the last of them ends, unless the container went
 * meanwhile. A look at the container (`written`) or closing the client (`allWritten`) writes it at
 * once.
 */

/** An exit not yet written: its labels, and how to write them (the container handle that saw it). */
interface PendingExit {
  labels: Record<string, string>;
  /** Never rejects: a failure is the sender's to log. */
  send: (labels: Record<string, string>) => Promise<void>;
}

export class LabelWrites {
  /** Per container, the end of its queue of label writes (never rejects). */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly exits = new Map<string, PendingExit>();
  /** Per container, how many starts and task or container deletes are in flight. */
  private readonly holds = new Map<string, number>();
  /** Who waits for the last hold to end (`drained`). */
  private unheld: (() => void)[] = [];

  /**
   * Runs `write` (an update of the container's labels) after the container's earlier label writes,
   * whatever became of them. Writes of remembered state overlap other calls (a start's with the
   * Start), so without the queue an exit could land before the start that clears the last exit's
   * labels, and be erased by it.
   */
  write(containerId: string, write: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(containerId);
    const done = previous ? previous.then(write) : write();
    const tail = done.catch(() => {});
    this.queues.set(containerId, tail);
    void tail.then(() => {
      if (this.queues.get(containerId) === tail) this.queues.delete(containerId);
    });
    return done;
  }

  /** Resolves when the container's label writes queued so far are done; a pending exit is written first. */
  written(containerId: string): Promise<void> {
    this.flushExit(containerId);
    return this.queued(containerId);
  }

  /** The queued writes only: a pending exit stays pending (the container is being deleted). */
  queued(containerId: string): Promise<void> {
    return this.queues.get(containerId) ?? Promise.resolve();
  }

  /** Resolves when every pending exit and queued label write is done (listing the containers). */
  async allWritten(): Promise<void> {
    for (const containerId of [...this.exits.keys()]) this.flushExit(containerId);
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  /**
   * `allWritten`, and then that of every start and delete still in flight (closing the client):
   * a task delete notes its exit when it returns, which may be after the close began (`ctrd stop |
   * head` ends for the broken pipe while a stop's delete runs).
   */
  async drained(): Promise<void> {
    for (;;) {
      await this.allWritten();
      if (this.holds.size === 0) return;
      await new Promise<void>((resolve) => this.unheld.push(resolve));
    }
  }

  /**
   * An exit to remember on the container, written on the next turn unless a delete holds it then.
   * `replace`: over one noted before (wait() and delete() see the same exit), or only where none
   * is pending (an earlier exit put back: a later one must not be overwritten by it).
   */
  noteExit(
    containerId: string,
    labels: Record<string, string>,
    replace: boolean,
    send: PendingExit["send"],
  ): void {
    if (!replace && this.exits.has(containerId)) return;
    this.exits.set(containerId, { labels, send });
    this.scheduleExit(containerId);
  }

  /** The pending exit, which the caller now writes itself (a start's labels build on it). */
  takeExit(containerId: string): Record<string, string> | undefined {
    const exit = this.exits.get(containerId);
    this.exits.delete(containerId);
    return exit?.labels;
  }

  /** The container is gone: its pending exit has nowhere to go. */
  dropExit(containerId: string): void {
    this.exits.delete(containerId);
  }

  /**
   * Keeps the container's pending exit from being written while its task is started or deleted, or
   * its record deleted;
   * the returned release writes it on the next turn if it is still pending then.
   */
  hold(containerId: string): () => void {
    this.holds.set(containerId, (this.holds.get(containerId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(containerId) ?? 1) - 1;
      if (left > 0) this.holds.set(containerId, left);
      else this.holds.delete(containerId);
      this.scheduleExit(containerId);
      if (this.holds.size === 0) for (const resolve of this.unheld.splice(0)) resolve();
    };
  }

  /** Queues the pending exit's write for the next turn, where nothing holds it. */
  private scheduleExit(containerId: string): void {
    if (!this.exits.has(containerId) || this.holds.has(containerId)) return;
    // sendExit never rejects: PendingExit.send logs its own failure.
    void this.write(containerId, async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.holds.has(containerId)) return; // a delete began meanwhile: its release reschedules
      await this.sendExit(containerId);
    });
  }

  private flushExit(containerId: string): void {
    if (this.exits.has(containerId)) void this.write(containerId, () => this.sendExit(containerId));
  }

  private async sendExit(containerId: string): Promise<void> {
    const exit = this.exits.get(containerId);
    if (!exit) return;
    this.exits.delete(containerId);
    await exit.send(exit.labels);
  }
}
