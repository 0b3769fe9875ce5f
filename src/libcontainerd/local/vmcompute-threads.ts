/**
 * Threads of our own for vmcompute calls.
 *
 * HCS calls block: a create waits for a utility VM, a servercore HcsSignalProcess returns only when
 * the process ends, Unregister waits for a running callback. koffi's `.async` runs calls as N-API
 * async work, i.e. on libuv's thread pool (4 threads by default, shared with fs, dns and crypto):
 * four slow calls there stall every other call, the SIGKILL path included. hcsshim runs each
 * syscall on a goroutine of its own (internal/vmcompute/vmcompute.go execute, 7c9ff7f48).
 *
 * So calls run on worker threads that each load the library and call it synchronously, one call
 * at a time per thread. A call that blocks holds only its own thread: up to `eagerThreads` start
 * as soon as calls wait; past that, a call that still waits after `growAfterMs` (every thread is
 * stuck in HCS, not merely busy with quick calls) starts one more, up to `maxThreads`, much as
 * Go's scheduler hands a blocked thread's work to a new one. A caller that gives up (deadline, abort) returns at once
 * (callers use `honour`); the thread finishes the call later and its result still reaches the
 * code that made it, which closes what the late result holds. A blocked native call cannot be
 * interrupted by anyone: its thread stays busy until HCS returns.
 *
 * The workers decode out-strings and free them with CoTaskMemFree on their own thread, so no
 * pointer crosses threads; handles cross as BigInt. The notification callback stays registered on
 * the main thread (koffi queues foreign-thread callbacks to the thread that registered them);
 * workers pass its address to HcsRegister*Callback.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { InternalError, UnavailableError } from "../types/errors.js";

/** How a trailing out parameter comes back: a freed-and-decoded string, a handle, a struct. */
export type OutKind = "string" | "handle" | "info" | "guid";

export interface ThreadCall {
  /** The export's name (the worker caches its binding by name). */
  fn: string;
  /** Its koffi declaration. */
  decl: string;
  /** The in-parameters; the out-parameters follow, one per `outs` entry. */
  args: unknown[];
  outs: OutKind[];
}

export interface ThreadResult {
  hresult: number;
  outs: unknown[];
}

export interface HcsThreadsOptions {
  library: string;
  /** Where CoTaskMemFree lives when the library does not export it (ole32.dll on Windows). */
  freeLibrary?: string;
  /** At most this many calls run at once; more wait for a thread. */
  maxThreads: number;
  /** Threads kept for the next calls once they are idle. */
  idleThreads: number;
  /** Threads started at once when calls wait. */
  eagerThreads: number;
  /** Past `eagerThreads`, how long a call waits for a busy thread before one more starts. */
  growAfterMs: number;
}

/** Runs in each worker: CommonJS, because `eval` workers are scripts. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const koffi = require(workerData.koffiPath);
const lib = koffi.load(workerData.library);
koffi.struct("HcsProcessInformation", {
  ProcessId: "uint32", Reserved: "uint32", StdInput: "void *", StdOutput: "void *", StdError: "void *",
});
koffi.struct("HcsGuid", { Data1: "uint32", Data2: "uint16", Data3: "uint16", Data4: koffi.array("uint8", 8) });
const free = workerData.freeLibrary
  ? koffi.load(workerData.freeLibrary).func("void __stdcall CoTaskMemFree(void *pv)")
  : lib.func("void __stdcall CoTaskMemFree(void *pv)");
const fns = new Map();
const value = (p) => (typeof p === "bigint" ? p : typeof p === "number" ? BigInt(p) : 0n);
function take(p) {
  const ptr = value(p);
  if (ptr === 0n) return null;
  try { return koffi.decode.string16(ptr); } finally { free(ptr); }
}
parentPort.on("message", (call) => {
  try {
    let fn = fns.get(call.fn);
    if (!fn) { fn = lib.func(call.decl); fns.set(call.fn, fn); }
    const outs = call.outs.map((kind) => (kind === "info" || kind === "guid" ? {} : [null]));
    const hresult = fn(...call.args, ...outs) | 0;
    const decoded = call.outs.map((kind, i) => {
      const out = outs[i];
      if (kind === "string") return take(out[0]);
      if (kind === "handle") return value(out[0]);
      if (kind === "info") return {
        processId: out.ProcessId || 0,
        stdInput: value(out.StdInput), stdOutput: value(out.StdOutput), stdError: value(out.StdError),
      };
      return { data1: out.Data1 || 0, data2: out.Data2 || 0, data3: out.Data3 || 0, data4: Array.from(out.Data4 || []) };
    });
    parentPort.postMessage({ hresult, outs: decoded });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

interface Job {
  call: ThreadCall;
  resolve: (result: ThreadResult) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  job: Job | undefined;
}

type WorkerReply = { hresult: number; outs: unknown[] } | { error: string };

export class HcsThreads {
  private readonly threads = new Set<Thread>();
  private readonly queue: Job[] = [];
  private readonly koffiPath = createRequire(import.meta.url).resolve("koffi");
  private growTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: HcsThreadsOptions) {}

  /** Starts a thread ahead of the first call (a worker and its library take a while to load). */
  warm(): void {
    if (!this.closed && this.threads.size === 0) this.spawn();
  }

  /** Threads alive (busy or idle). */
  get size(): number {
    return this.threads.size;
  }

  /** Calls running now. */
  get busy(): number {
    let n = 0;
    for (const thread of this.threads) if (thread.job) n++;
    return n;
  }

  run(call: ThreadCall): Promise<ThreadResult> {
    if (this.closed) return Promise.reject(new UnavailableError(`${this.options.library} is closed`));
    return new Promise<ThreadResult>((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Ends idle threads now and busy ones when their call returns. A call blocked in HCS keeps its
   * thread, but no longer keeps the process alive.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.growTimer);
    for (const job of this.queue.splice(0))
      job.reject(new UnavailableError(`${this.options.library} is closed`));
    for (const thread of this.threads) {
      if (thread.job) thread.worker.unref();
      else this.retire(thread);
    }
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let thread = [...this.threads].find((t) => !t.job);
      if (!thread) {
        if (this.threads.size >= this.options.eagerThreads) {
          this.growLater();
          return;
        }
        thread = this.spawn();
      }
      this.assign(thread, this.queue.shift()!);
    }
  }

  /** Every thread is busy: if calls still wait after `growAfterMs`, the busy ones are blocked. */
  private growLater(): void {
    if (this.growTimer || this.threads.size >= this.options.maxThreads) return;
    this.growTimer = setTimeout(() => {
      this.growTimer = undefined;
      if (this.closed || this.queue.length === 0) return;
      if (![...this.threads].some((t) => !t.job)) this.assign(this.spawn(), this.queue.shift()!);
      this.dispatch();
    }, this.options.growAfterMs);
  }

  private assign(thread: Thread, job: Job): void {
    thread.job = job;
    // A call in flight keeps Node alive, as koffi's async work did; an idle thread does not.
    thread.worker.ref();
    thread.worker.postMessage(job.call);
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        koffiPath: this.koffiPath,
        library: this.options.library,
        freeLibrary: this.options.freeLibrary,
      },
      stdout: false,
      stderr: false,
    });
    const thread: Thread = { worker, job: undefined };
    worker.unref();
    worker.on("message", (reply: WorkerReply) => this.finish(thread, reply));
    worker.on("error", (err: Error) => this.fail(thread, err));
    worker.on("exit", () => this.fail(thread, new InternalError("a vmcompute thread exited")));
    this.threads.add(thread);
    return thread;
  }

  private finish(thread: Thread, reply: WorkerReply): void {
    const job = thread.job;
    thread.job = undefined;
    thread.worker.unref();
    if (job) {
      if ("error" in reply) {
        job.reject(new InternalError(`${job.call.fn}: ${reply.error}`));
      } else {
        job.resolve({ hresult: reply.hresult, outs: reply.outs });
      }
    }
    const idle = [...this.threads].filter((t) => !t.job).length;
    if (this.closed || (this.queue.length === 0 && idle > this.options.idleThreads)) {
      this.retire(thread);
      return;
    }
    this.dispatch();
  }

  private fail(thread: Thread, err: Error): void {
    if (!this.threads.delete(thread)) return;
    const job = thread.job;
    thread.job = undefined;
    job?.reject(
      new InternalError(`vmcompute call ${job.call.fn} lost its thread: ${err.message}`, { cause: err }),
    );
    this.dispatch();
  }

  private retire(thread: Thread): void {
    this.threads.delete(thread);
    void thread.worker.terminate();
  }
}
