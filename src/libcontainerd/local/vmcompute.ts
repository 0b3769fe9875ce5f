/**
 * koffi bindings of the vmcompute.dll exports hcsshim uses (internal/vmcompute/vmcompute.go).
 *
 * - HRESULT is int32 (never `long`: 64-bit on LP64 Linux, where the fake runs).
 * - Strings in are UTF-16LE (`str16`); strings out are `PWSTR*` the DLL allocates: decoded with
 *   `koffi.decode.string16` and released with CoTaskMemFree, never koffi's allocator.
 * - Handles are pointer-sized opaque values, BigInt in koffi 3; 0 means none.
 * - Every call runs on a thread of our own (vmcompute-threads.ts), never on the main thread nor on
 *   libuv's pool: HCS calls can block for minutes, and Unregister/Close wait for in-flight
 *   callbacks, which koffi can only run when the main thread is free.
 * - Exports resolve on first use; a missing one is a NotImplementedError, not a load failure
 *   (HcsSignalProcess and HcsSaveComputeSystem are absent on early builds).
 */
import koffi, { type LibraryHandle, type TypeObject } from "koffi";
import { NotImplementedError, UnavailableError } from "../types/errors.js";
import { HcsThreads, type OutKind, type ThreadResult } from "./vmcompute-threads.js";

/** A compute system, process or callback handle. */
export type HcsHandle = bigint;

export interface HcsProcessInformation {
  processId: number;
  /** Win32 HANDLEs on Windows, pipe file descriptors on the fake; 0 when that pipe was not requested. */
  stdInput: bigint;
  stdOutput: bigint;
  stdError: bigint;
}

export interface HcsCallResult {
  hresult: number;
  /** The ResultError JSON, when HCS sent one. */
  result: string | null;
}

export type NotificationListener = (
  notificationType: number,
  context: bigint,
  status: number,
  data: string | null,
) => void;

export interface VmcomputeOptions {
  /** `vmcompute.dll` on Windows; the fake's `.so` on Linux. */
  library: string;
  /** Receives every HCS notification; must not block (it runs while an HCS thread waits). */
  onNotification: NotificationListener;
  /** Most vmcompute calls in flight at once (each on its own thread). Default 64. */
  maxThreads?: number;
}

const DEFAULT_MAX_THREADS = 64;
/** libuv's default pool size: quick calls never need more. */
const EAGER_THREADS = 4;
const IDLE_THREADS = 4;
/** A call that waited this long behind busy threads means they are blocked in HCS. */
const GROW_AFTER_MS = 5;

type RawFunction = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

const DECLARATIONS = {
  HcsEnumerateComputeSystems:
    "int32 __stdcall HcsEnumerateComputeSystems(str16 query, _Out_ void **computeSystems, _Out_ void **result)",
  HcsCreateComputeSystem:
    "int32 __stdcall HcsCreateComputeSystem(str16 id, str16 configuration, void *identity, _Out_ void **computeSystem, _Out_ void **result)",
  HcsOpenComputeSystem:
    "int32 __stdcall HcsOpenComputeSystem(str16 id, _Out_ void **computeSystem, _Out_ void **result)",
  HcsCloseComputeSystem: "int32 __stdcall HcsCloseComputeSystem(void *computeSystem)",
  HcsStartComputeSystem:
    "int32 __stdcall HcsStartComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsShutdownComputeSystem:
    "int32 __stdcall HcsShutdownComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsTerminateComputeSystem:
    "int32 __stdcall HcsTerminateComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsPauseComputeSystem:
    "int32 __stdcall HcsPauseComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsResumeComputeSystem:
    "int32 __stdcall HcsResumeComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsSaveComputeSystem:
    "int32 __stdcall HcsSaveComputeSystem(void *computeSystem, str16 options, _Out_ void **result)",
  HcsGetComputeSystemProperties:
    "int32 __stdcall HcsGetComputeSystemProperties(void *computeSystem, str16 propertyQuery, _Out_ void **properties, _Out_ void **result)",
  HcsModifyComputeSystem:
    "int32 __stdcall HcsModifyComputeSystem(void *computeSystem, str16 configuration, _Out_ void **result)",
  HcsRegisterComputeSystemCallback:
    "int32 __stdcall HcsRegisterComputeSystemCallback(void *computeSystem, void *callback, void *context, _Out_ void **callbackHandle)",
  HcsUnregisterComputeSystemCallback:
    "int32 __stdcall HcsUnregisterComputeSystemCallback(void *callbackHandle)",
  HcsCreateProcess:
    "int32 __stdcall HcsCreateProcess(void *computeSystem, str16 processParameters, _Out_ HcsProcessInformation *processInformation, _Out_ void **process, _Out_ void **result)",
  HcsOpenProcess:
    "int32 __stdcall HcsOpenProcess(void *computeSystem, uint32 pid, _Out_ void **process, _Out_ void **result)",
  HcsCloseProcess: "int32 __stdcall HcsCloseProcess(void *process)",
  HcsTerminateProcess: "int32 __stdcall HcsTerminateProcess(void *process, _Out_ void **result)",
  HcsSignalProcess: "int32 __stdcall HcsSignalProcess(void *process, str16 options, _Out_ void **result)",
  HcsGetProcessInfo:
    "int32 __stdcall HcsGetProcessInfo(void *process, _Out_ HcsProcessInformation *processInformation, _Out_ void **result)",
  HcsGetProcessProperties:
    "int32 __stdcall HcsGetProcessProperties(void *process, _Out_ void **processProperties, _Out_ void **result)",
  HcsModifyProcess: "int32 __stdcall HcsModifyProcess(void *process, str16 settings, _Out_ void **result)",
  HcsRegisterProcessCallback:
    "int32 __stdcall HcsRegisterProcessCallback(void *process, void *callback, void *context, _Out_ void **callbackHandle)",
  HcsUnregisterProcessCallback: "int32 __stdcall HcsUnregisterProcessCallback(void *callbackHandle)",
  NameToGuid: "int32 __stdcall NameToGuid(str16 name, _Out_ HcsGuid *guid)",
} as const;

export type VmcomputeExport = keyof typeof DECLARATIONS;

// koffi types are process-global and may be declared only once per name.
let typesDeclared = false;
let notificationCallbackType: TypeObject;
function declareTypes(): void {
  if (typesDeclared) return;
  koffi.struct("HcsProcessInformation", {
    ProcessId: "uint32",
    Reserved: "uint32",
    StdInput: "void *",
    StdOutput: "void *",
    StdError: "void *",
  });
  koffi.struct("HcsGuid", {
    Data1: "uint32",
    Data2: "uint16",
    Data3: "uint16",
    Data4: koffi.array("uint8", 8),
  });
  notificationCallbackType = koffi.proto(
    "void __stdcall HcsNotificationCallback(uint32 notificationType, void *context, int32 notificationStatus, const void *notificationData)",
  );
  typesDeclared = true;
}

function pointerValue(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(value);
  return 0n;
}

interface GuidFields {
  data1: number;
  data2: number;
  data3: number;
  data4: number[];
}

/** The loaded library. One per client; `close()` after every handle and callback is gone. */
export class Vmcompute {
  readonly library: string;
  private readonly lib: LibraryHandle;
  private readonly functions = new Map<VmcomputeExport, RawFunction | null>();
  private readonly threads: HcsThreads;
  private readonly callback: bigint;
  private closed = false;

  constructor(options: VmcomputeOptions) {
    declareTypes();
    this.library = options.library;
    try {
      this.lib = koffi.load(options.library);
    } catch (err) {
      throw new UnavailableError(`cannot load ${options.library}: ${(err as Error).message}`, { cause: err });
    }
    // vmcompute.dll's strings come from CoTaskMemAlloc; on Windows the allocator lives in ole32,
    // the fake exports its own so it can count allocations. The threads free them.
    let freeLibrary: string | undefined;
    try {
      this.lib.func("void __stdcall CoTaskMemFree(void *pv)");
    } catch (err) {
      if (process.platform !== "win32") {
        this.lib.unload();
        throw new UnavailableError(`${options.library} does not export CoTaskMemFree`, { cause: err });
      }
      freeLibrary = "ole32.dll";
    }
    this.threads = new HcsThreads({
      library: options.library,
      freeLibrary,
      maxThreads: options.maxThreads ?? DEFAULT_MAX_THREADS,
      idleThreads: IDLE_THREADS,
      eagerThreads: EAGER_THREADS,
      growAfterMs: GROW_AFTER_MS,
    });
    this.threads.warm();
    const listener = options.onNotification;
    this.callback = pointerValue(
      koffi.register((notificationType: number, context: unknown, status: number, data: unknown) => {
        // The data pointer is HCS's and valid only during the callback: decode it now, never free it.
        const ptr = pointerValue(data);
        listener(
          notificationType >>> 0,
          pointerValue(context),
          status | 0,
          ptr ? koffi.decode.string16(ptr) : null,
        );
      }, koffi.pointer(notificationCallbackType)),
    );
  }

  has(name: VmcomputeExport): boolean {
    return this.resolve(name) !== null;
  }

  /** Threads running or ready to run calls, and how many calls are in flight. */
  get threadStats(): { threads: number; busy: number } {
    return { threads: this.threads.size, busy: this.threads.busy };
  }

  private resolve(name: VmcomputeExport): RawFunction | null {
    if (this.functions.has(name)) return this.functions.get(name) ?? null;
    let fn: RawFunction | null;
    try {
      fn = this.lib.func(DECLARATIONS[name]);
    } catch {
      fn = null;
    }
    this.functions.set(name, fn);
    return fn;
  }

  private call(name: VmcomputeExport, args: unknown[], outs: OutKind[]): Promise<ThreadResult> {
    if (this.closed) return Promise.reject(new UnavailableError(`${this.library} is closed`));
    if (!this.resolve(name))
      return Promise.reject(new NotImplementedError(`${this.library} has no export ${name}`));
    return this.threads.run({ fn: name, decl: DECLARATIONS[name], args, outs });
  }

  private async hresultOf(name: VmcomputeExport, ...args: unknown[]): Promise<number> {
    return (await this.call(name, args, [])).hresult;
  }

  private async withResult(name: VmcomputeExport, ...args: unknown[]): Promise<HcsCallResult> {
    const { hresult, outs } = await this.call(name, args, ["string"]);
    return { hresult, result: outs[0] as string | null };
  }

  async enumerateComputeSystems(query: string): Promise<HcsCallResult & { computeSystems: string | null }> {
    const { hresult, outs } = await this.call("HcsEnumerateComputeSystems", [query], ["string", "string"]);
    return { hresult, computeSystems: outs[0] as string | null, result: outs[1] as string | null };
  }

  async createComputeSystem(
    id: string,
    configuration: string,
  ): Promise<HcsCallResult & { system: HcsHandle }> {
    const { hresult, outs } = await this.call(
      "HcsCreateComputeSystem",
      [id, configuration, null],
      ["handle", "string"],
    );
    return { hresult, system: outs[0] as HcsHandle, result: outs[1] as string | null };
  }

  async openComputeSystem(id: string): Promise<HcsCallResult & { system: HcsHandle }> {
    const { hresult, outs } = await this.call("HcsOpenComputeSystem", [id], ["handle", "string"]);
    return { hresult, system: outs[0] as HcsHandle, result: outs[1] as string | null };
  }

  closeComputeSystem(system: HcsHandle): Promise<number> {
    return this.hresultOf("HcsCloseComputeSystem", system);
  }

  startComputeSystem(system: HcsHandle, options = ""): Promise<HcsCallResult> {
    return this.withResult("HcsStartComputeSystem", system, options);
  }

  shutdownComputeSystem(system: HcsHandle, options = ""): Promise<HcsCallResult> {
    return this.withResult("HcsShutdownComputeSystem", system, options);
  }

  terminateComputeSystem(system: HcsHandle, options = ""): Promise<HcsCallResult> {
    return this.withResult("HcsTerminateComputeSystem", system, options);
  }

  pauseComputeSystem(system: HcsHandle, options = ""): Promise<HcsCallResult> {
    return this.withResult("HcsPauseComputeSystem", system, options);
  }

  resumeComputeSystem(system: HcsHandle, options = ""): Promise<HcsCallResult> {
    return this.withResult("HcsResumeComputeSystem", system, options);
  }

  saveComputeSystem(system: HcsHandle, options: string): Promise<HcsCallResult> {
    return this.withResult("HcsSaveComputeSystem", system, options);
  }

  async getComputeSystemProperties(
    system: HcsHandle,
    query: string,
  ): Promise<HcsCallResult & { properties: string | null }> {
    const { hresult, outs } = await this.call(
      "HcsGetComputeSystemProperties",
      [system, query],
      ["string", "string"],
    );
    return { hresult, properties: outs[0] as string | null, result: outs[1] as string | null };
  }

  modifyComputeSystem(system: HcsHandle, configuration: string): Promise<HcsCallResult> {
    return this.withResult("HcsModifyComputeSystem", system, configuration);
  }

  async registerComputeSystemCallback(
    system: HcsHandle,
    context: bigint,
  ): Promise<{ hresult: number; callbackHandle: HcsHandle }> {
    const { hresult, outs } = await this.call(
      "HcsRegisterComputeSystemCallback",
      [system, this.callback, context],
      ["handle"],
    );
    return { hresult, callbackHandle: outs[0] as HcsHandle };
  }

  unregisterComputeSystemCallback(callbackHandle: HcsHandle): Promise<number> {
    return this.hresultOf("HcsUnregisterComputeSystemCallback", callbackHandle);
  }

  async createProcess(
    system: HcsHandle,
    processParameters: string,
  ): Promise<HcsCallResult & { process: HcsHandle; info: HcsProcessInformation }> {
    const { hresult, outs } = await this.call(
      "HcsCreateProcess",
      [system, processParameters],
      ["info", "handle", "string"],
    );
    return {
      hresult,
      info: outs[0] as HcsProcessInformation,
      process: outs[1] as HcsHandle,
      result: outs[2] as string | null,
    };
  }

  async openProcess(system: HcsHandle, pid: number): Promise<HcsCallResult & { process: HcsHandle }> {
    const { hresult, outs } = await this.call("HcsOpenProcess", [system, pid], ["handle", "string"]);
    return { hresult, process: outs[0] as HcsHandle, result: outs[1] as string | null };
  }

  closeProcess(process: HcsHandle): Promise<number> {
    return this.hresultOf("HcsCloseProcess", process);
  }

  terminateProcess(process: HcsHandle): Promise<HcsCallResult> {
    return this.withResult("HcsTerminateProcess", process);
  }

  signalProcess(process: HcsHandle, options: string): Promise<HcsCallResult> {
    return this.withResult("HcsSignalProcess", process, options);
  }

  async getProcessInfo(process: HcsHandle): Promise<HcsCallResult & { info: HcsProcessInformation }> {
    const { hresult, outs } = await this.call("HcsGetProcessInfo", [process], ["info", "string"]);
    return { hresult, info: outs[0] as HcsProcessInformation, result: outs[1] as string | null };
  }

  async getProcessProperties(process: HcsHandle): Promise<HcsCallResult & { properties: string | null }> {
    const { hresult, outs } = await this.call("HcsGetProcessProperties", [process], ["string", "string"]);
    return { hresult, properties: outs[0] as string | null, result: outs[1] as string | null };
  }

  modifyProcess(process: HcsHandle, settings: string): Promise<HcsCallResult> {
    return this.withResult("HcsModifyProcess", process, settings);
  }

  async registerProcessCallback(
    process: HcsHandle,
    context: bigint,
  ): Promise<{ hresult: number; callbackHandle: HcsHandle }> {
    const { hresult, outs } = await this.call(
      "HcsRegisterProcessCallback",
      [process, this.callback, context],
      ["handle"],
    );
    return { hresult, callbackHandle: outs[0] as HcsHandle };
  }

  unregisterProcessCallback(callbackHandle: HcsHandle): Promise<number> {
    return this.hresultOf("HcsUnregisterProcessCallback", callbackHandle);
  }

  /** vmcompute's layer-name GUID (the layer ids HCS expects), formatted lowercase without braces. */
  async nameToGuid(name: string): Promise<string> {
    const { hresult, outs } = await this.call("NameToGuid", [name], ["guid"]);
    if (hresult < 0)
      throw new UnavailableError(`NameToGuid(${name}) failed: 0x${(hresult >>> 0).toString(16)}`);
    const guid = outs[0] as GuidFields;
    const h = (n: number, width: number) => n.toString(16).padStart(width, "0");
    const tail = guid.data4.map((b) => h(b, 2)).join("");
    return `${h(guid.data1, 8)}-${h(guid.data2, 4)}-${h(guid.data3, 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`;
  }

  /**
   * Releases the callback trampoline, the threads and the library. Only after every HCS callback
   * registration is unregistered: a late notification into an unregistered trampoline crashes.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.threads.close();
    koffi.unregister(this.callback);
    this.lib.unload();
  }
}
