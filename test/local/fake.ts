/**
 * The fake vmcompute library for tests: its path, a build step when it is missing, and its
 * test-only exports (allocation and handle counters, failure injection, options).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import koffi, { type LibraryHandle } from "koffi";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FAKE_DIR = path.join(root, "native/fake-vmcompute");
export const FAKE_LIBRARY = path.join(FAKE_DIR, "build/libfakevmcompute.so");
/** The fake as an RS1-era vmcompute.dll: no HcsSignalProcess, HcsSaveComputeSystem or NameToGuid. */
export const FAKE_LIBRARY_RS1 = path.join(FAKE_DIR, "build/libfakevmcompute-rs1.so");

/** Builds the fake (make is incremental); fails (never skips) when that is impossible. */
export function ensureFakeLibrary(): string {
  execFileSync("make", ["-s", "-C", FAKE_DIR], { stdio: "inherit" });
  for (const lib of [FAKE_LIBRARY, FAKE_LIBRARY_RS1]) {
    if (!fs.existsSync(lib)) throw new Error(`${lib} is missing and could not be built`);
  }
  return FAKE_LIBRARY;
}

type AsyncFn = { async: (...args: unknown[]) => void };
type Fn = ((...args: unknown[]) => unknown) & AsyncFn;

function callAsync(fn: Fn, ...args: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) =>
    fn.async(...args, (err: unknown, r: unknown) => (err ? reject(err) : resolve(r))),
  );
}

export class FakeControl {
  private readonly lib: LibraryHandle;
  private readonly fns: Record<string, Fn>;

  constructor(library = ensureFakeLibrary()) {
    this.lib = koffi.load(library);
    const f = (decl: string) => this.lib.func(decl) as unknown as Fn;
    this.fns = {
      live: f("int32 FakeGetLiveAllocations(void)"),
      handles: f("int32 FakeGetOpenHandles(void)"),
      lastDoc: f("int32 FakeGetLastCreateDocument(_Out_ void **doc)"),
      lastModify: f("int32 FakeGetLastModifyDocument(_Out_ void **doc)"),
      inject: f("void FakeInjectFailure(str16 exportName, int32 hresult, str16 resultErrorJson)"),
      option: f("void FakeSetOption(str16 key, int32 value)"),
      reset: f("void FakeReset(void)"),
      free: f("void CoTaskMemFree(void *pv)"),
      invalidFrees: f("int32 FakeGetInvalidFrees(void)"),
      crash: f("int32 FakeCrashComputeSystem(str16 id, int32 hresult)"),
      disconnect: f("void FakeServiceDisconnect(void)"),
      blocked: f("int32 FakeGetBlockedCalls(void)"),
    };
  }

  liveAllocations(): number {
    return this.fns.live!() as number;
  }

  openHandles(): number {
    return this.fns.handles!() as number;
  }

  invalidFrees(): number {
    return this.fns.invalidFrees!() as number;
  }

  lastCreateDocument(): unknown {
    return this.takeDocument("lastDoc");
  }

  /** The last document HcsModifyComputeSystem accepted. */
  lastModifyDocument(): unknown {
    return this.takeDocument("lastModify");
  }

  private takeDocument(fn: "lastDoc" | "lastModify"): unknown {
    const out: [unknown] = [null];
    this.fns[fn]!(out);
    const ptr = out[0];
    if (!ptr) return undefined;
    try {
      const text = koffi.decode.string16(ptr);
      return text ? JSON.parse(text) : undefined;
    } finally {
      this.fns.free!(ptr);
    }
  }

  injectFailure(exportName: string, hresult: number, resultErrorJson: string | null = null): void {
    this.fns.inject!(exportName, hresult | 0, resultErrorJson);
  }

  setOption(
    key:
      | "AsyncDelayMs"
      | "SyncCompletion"
      | "ShutdownTimeoutMs"
      | "UnregisterTimeoutMs"
      | "InjectAsync"
      | "BlockSignalProcess"
      | "BlockCreateComputeSystem"
      | "BlockCreateProcess"
      | "ProcessExitedStatus",
    value: number,
  ): void {
    this.fns.option!(key, value);
  }

  /** Calls parked by the Block* options. */
  blockedCalls(): number {
    return this.fns.blocked!() as number;
  }

  /** On a worker: it waits for killed processes, whose exits go to callbacks on the main thread. */
  async reset(): Promise<void> {
    await callAsync(this.fns.reset!);
  }

  async crash(id: string, hresult = 0): Promise<number> {
    return (await callAsync(this.fns.crash!, id, hresult)) as number;
  }

  /**
   * Polls the counters: HCS-side cleanup (reaping, callback teardown) finishes on its own threads. The bound
   * is a liveness bound (it returns as soon as all is released), wide enough for a machine at load 30.
   */
  async settled(timeoutMs = 20_000): Promise<{ liveAllocations: number; openHandles: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = { liveAllocations: this.liveAllocations(), openHandles: this.openHandles() };
      if ((state.liveAllocations === 0 && state.openHandles === 0) || Date.now() > deadline) return state;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** ServiceDisconnect to every registration, delivered from the fake's threads. */
  serviceDisconnect(): void {
    this.fns.disconnect!();
  }

  close(): void {
    this.lib.unload();
  }
}

/** A Windows spec the fake accepts: it runs `args` on this Linux host. */
export const FAKE_VOLUME = "\\\\?\\Volume{0b6c9a8e-2a2c-4f0e-9b7a-5f1f3b7a1c11}\\";
export const FAKE_LAYERS = ["C:\\layers\\base", "C:\\layers\\scratch"];
