import { describe, expect, test } from "vitest";
import { LabelWrites } from "../../src/libcontainerd/remote/label-writes.js";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const EXIT = { "io.ctrd.state.exitCode": "3" };

/** A LabelWrites whose exits are recorded in `sent` instead of going to containerd. */
function writes() {
  const labels = new LabelWrites();
  const sent: string[] = [];
  const note = (id: string) =>
    labels.noteExit(id, EXIT, true, async (exit) => {
      sent.push(`${id} ${exit["io.ctrd.state.exitCode"]}`);
    });
  return { labels, sent, note };
}

describe("LabelWrites: an exit is written unless the container goes first", () => {
  test("a noted exit is written on the next turn", async () => {
    const { labels, sent, note } = writes();
    note("a");
    expect(sent).toEqual([]);
    await labels.queued("a");
    expect(sent).toEqual(["a 3"]);
  });

  test("closing waits for a task delete in flight and writes the exit it notes", async () => {
    const { labels, sent, note } = writes();
    const release = labels.hold("a"); // task.delete() has begun; close() is called meanwhile
    let closed = false;
    const closing = labels.drained().then(() => {
      closed = true;
    });
    await nextTurn();
    expect(closed).toBe(false);
    note("a"); // the delete returns: its exit, then the hold ends
    release();
    await closing;
    expect(sent).toEqual(["a 3"]);
  });

  test("a container delete that begins in the same turn drops it", async () => {
    const { labels, sent, note } = writes();
    note("a");
    const release = labels.hold("a"); // the container delete
    await nextTurn();
    await labels.queued("a");
    labels.dropExit("a"); // the record is gone
    release();
    await nextTurn();
    await labels.allWritten();
    expect(sent).toEqual([]);
  });

  test("a delete that fails leaves it to be written, once", async () => {
    const { labels, sent, note } = writes();
    const task = labels.hold("a"); // the task delete, during which the exit is seen twice
    note("a");
    note("a");
    const container = labels.hold("a");
    task();
    await nextTurn();
    expect(sent).toEqual([]);
    container(); // the container delete failed: no dropExit
    container(); // a second release changes nothing
    await nextTurn();
    await labels.queued("a");
    expect(sent).toEqual(["a 3"]);
    await labels.allWritten();
    expect(sent).toEqual(["a 3"]);
  });

  test("a look at the container writes it at once, held or not; closing writes every one", async () => {
    const { labels, sent, note } = writes();
    note("a");
    note("b");
    const release = labels.hold("a");
    await labels.written("a");
    expect(sent).toEqual(["a 3"]);
    release();
    labels.hold("b");
    await labels.allWritten();
    expect(sent).toEqual(["a 3", "b 3"]);
  });

  test("a start takes it (to write it with the start's labels); other containers are unaffected", async () => {
    const { labels, sent, note } = writes();
    note("a");
    note("b");
    expect(labels.takeExit("a")).toEqual(EXIT);
    expect(labels.takeExit("a")).toBeUndefined();
    await labels.allWritten();
    expect(sent).toEqual(["b 3"]);
  });

  test("an exit put back (its start's write failed) does not replace a later one", async () => {
    const { labels, sent } = writes();
    const later = { "io.ctrd.state.exitCode": "4" };
    const send = async (exit: Record<string, string>) => {
      sent.push(`a ${exit["io.ctrd.state.exitCode"]}`);
    };
    labels.noteExit("a", later, true, send);
    labels.noteExit("a", EXIT, false, send);
    await labels.allWritten();
    expect(sent).toEqual(["a 4"]);
    labels.noteExit("a", EXIT, false, send);
    await labels.allWritten();
    expect(sent).toEqual(["a 4", "a 3"]);
  });

  test("writes of one container run in order, whatever became of the earlier ones", async () => {
    const { labels } = writes();
    const order: string[] = [];
    let finishFirst = () => {};
    const first = labels.write("a", () => new Promise<void>((resolve) => (finishFirst = resolve)));
    const failing = labels.write("a", async () => {
      order.push("second");
      throw new Error("refused");
    });
    const third = labels.write("a", async () => {
      order.push("third");
    });
    await nextTurn();
    expect(order).toEqual([]);
    finishFirst();
    await first;
    await expect(failing).rejects.toThrow("refused");
    await third;
    expect(order).toEqual(["second", "third"]);
  });
});
