/** One entry of daemon.json's `runtimes` map (Docker's shape). */
export interface RuntimeConfig {
  path?: string;
  runtimeArgs?: string[];
  runtimeType?: string;
  options?: Record<string, unknown>;
}

/** Shim options as containerd wants them: an Any with the bare type URL (e.g. `containerd.runc.v1.Options`). */
export interface ShimOptions {
  typeUrl: string;
  value: Uint8Array;
}

/** What a runtime name resolves to: the containerd shim to run and its typed options. */
export interface ResolvedRuntime {
  /** The name the caller asked for (after defaulting). */
  name: string;
  /** containerd's runtime name, e.g. `io.containerd.runc.v2`. */
  shim: string;
  options?: ShimOptions;
}

export interface RuntimeResolver {
  readonly defaultRuntime: string;
  /** Resolves a name (empty → the default). InvalidArgumentError for an unknown name or a missing binary. */
  resolve(name?: string): Promise<ResolvedRuntime>;
}

/** One runtime as `list()` reports it (for `ctrd info`). */
export interface RuntimeInfo {
  name: string;
  shim: string;
  /** The options' type URL, absent when the shim gets no options. */
  optionsTypeUrl?: string;
  /** `stock` runtimes are built in; `configured` ones come from daemon.json or --add-runtime. */
  source: "stock" | "configured";
  isDefault: boolean;
  /** For `path` runtimes: the runtime binary, and the wrapper script when it has `runtimeArgs`. */
  path?: string;
  runtimeArgs?: string[];
  wrapperScript?: string;
}
