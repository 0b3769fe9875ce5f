import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, open, readdir, realpath } from "node:fs/promises";
import { join, posix } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { extract, type Header, pack } from "tar-stream";
import { applyConfigChanges, CHANGE_INSTRUCTIONS, words } from "../../images/config-changes.js";
import type { ImageRunConfig } from "../../images/media-types.js";
import { normalizeReference } from "../../images/reference.js";
import type { ImageRecord } from "../../images/store.js";
import { isErrorCode } from "../../libcontainerd/types/errors.js";
import { type ContainerdImages, familiarName } from "../containerd-images.js";
import { removeRuntimeMountPoints } from "../containers/changes.js";
import { parseCreateRequest } from "../containers/config.js";
import { packTree } from "../containers/filesystem.js";
import type { ContainerManager } from "../containers/manager.js";
import {
  archiveFromRoot,
  type ContainerRoot,
  extractIntoRoot,
  statInRoot,
} from "../containers/rootfs-worker.js";
import type { ContainerRecord } from "../containers/store.js";
import { badRequest, EngineError } from "../errors.js";
import type { EventBus } from "../events.js";
import { contextSourceHash, StepCache, sourcesHash } from "./cache.js";
import type { BuildContext } from "./context.js";
import { type Instruction, parseDockerfile } from "./dockerfile.js";

export interface BuildDeps {
  images: ContainerdImages;
  manager: ContainerManager;
  events: EventBus;
}

export interface BuildOptions {
  tags: string[];
  buildArgs: Map<string, string | undefined>;
  labels: Record<string, string>;
  quiet: boolean;
  pull: boolean;
  /** `--no-cache`: every step runs, none is looked up in the image store. */
  noCache: boolean;
  target: string;
  networkMode: string;
  signal: AbortSignal;
  /** One message of Docker's JSON stream (`stream`, `status`, `aux`). */
  write(message: Record<string, unknown>): void;
}

/** A build stage as it stands: the image its last instruction made and what the next ones see. */
interface Stage {
  name: string;
  /** The image record (a name, dangling for intermediates) of the stage's current image. */
  ref: string;
  id: string;
  /**
   * The target digest of the stage's current image: what its next step's image records as its
   * parent ("" on `FROM scratch` before a step made an image; the builder's cache key's first half).
   */
  digest: string;
  config: ImageRunConfig;
  /** ARGs declared in the stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>;
  /** A CMD was given in this stage: an ENTRYPOINT no longer resets it. */
  cmdSet: boolean;
}

/** A RUN whose command exited non-zero, with dockerd's words; its exit code goes in the errorDetail. */
export class RunFailedError extends EngineError {
  constructor(
    command: readonly string[],
    readonly exitCode: number,
  ) {
    super(500, `The command '${command.join(" ")}' returned a non-zero code: ${exitCode}`);
    this.name = "RunFailedError";
  }
}

const DEFAULT_SHELL = ["/bin/sh", "-c"];

/**
 * Instructions that only change the config (those `docker commit --change` takes, but WORKDIR, which the
 * builder also creates): committed as an image without a new layer.
 */
const CONFIG_INSTRUCTIONS = new Set([...CHANGE_INSTRUCTIONS].filter((name) => name !== "workdir"));

const shortId = (id: string): string => id.replace(/^sha256:/, "").slice(0, 12);

/** What a stage starts with, whatever its image. */
const freshStageState = () => ({
  args: new Map<string, string | undefined>(),
  cmdSet: false,
});

/** The shell a shell-form RUN, CMD and ENTRYPOINT run in: SHELL's (kept in the image config), else /bin/sh -c. */
const shellOf = (stage: Stage): string[] =>
  stage.config.Shell && stage.config.Shell.length > 0 ? stage.config.Shell : DEFAULT_SHELL;

/**
 * The `|N K=V …` dockerd puts before a RUN's command (prependEnvOnCmd) when build args were set:
 * in its history and in its cache key, so that other build args run the step again.
 */
function argsPrefix(args: ReadonlyMap<string, string | undefined>, env: readonly string[]): string[] {
  const envKeys = new Set(env.map((entry) => entry.split("=", 1)[0]));
  const set = [...args]
    .filter((entry): entry is [string, string] => entry[1] !== undefined && !envKeys.has(entry[0]))
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  return set.length > 0 ? [`|${set.length}`, ...set] : [];
}

/** The magic of the compressions ADD unpacks (plain tar is found by its `ustar`). */
async function archiveKind(path: string): Promise<"tar" | "gzip" | undefined> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
    if (bytesRead >= 262 && head.subarray(257, 262).toString("latin1") === "ustar") return "tar";
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * A tar whose entries are renamed by `rename` (undefined: left out), owners replaced by `owner`
 * when given: a source's tree (named from its base, as archive.TarResourceRebase) made a COPY's.
 */
function renamed(
  source: Readable,
  rename: (name: string) => string | undefined,
  owner: { uid: number; gid: number } | undefined,
): Readable {
  const input = extract();
  const output = pack();
  (async () => {
    for await (const entry of input) {
      const name = rename(entry.header.name);
      if (name === undefined) {
        entry.resume();
        continue;
      }
      const header: Header = { ...entry.header, name, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) };
      if (header.type === "link" && header.linkname) {
        const target = rename(header.linkname);
        if (target === undefined) {
          entry.resume();
          continue;
        }
        header.linkname = target;
      }
      await new Promise<void>((resolve, reject) => {
        const sink = output.entry(header, (err) => (err ? reject(err) : resolve()));
        entry.pipe(sink);
      });
    }
    output.finalize();
  })().catch((err: unknown) => output.destroy(err as Error));
  source.on("error", (err) => input.destroy(err));
  source.pipe(input);
  return Readable.from(output);
}

/** Entry names relative to the tree's top entry: `top/a/b` → `a/b`, `top` → `` (undefined: not below it). */
function belowTop(): (name: string) => string | undefined {
  let top: string | undefined;
  return (name) => {
    const clean = name.replace(/\/+$/, "");
    if (top === undefined) {
      top = clean;
      return "";
    }
    if (clean === top) return "";
    return clean.startsWith(`${top}/`) ? clean.slice(top.length + 1) : undefined;
  };
}

/**
 * dockerd's classic builder (builder/dockerfile): each instruction of the Dockerfile made an image
 * on the one before, RUN in a container from it, COPY and ADD written into a container's rootfs,
 * each committed as containerd's diff of its snapshot; the other instructions commit only a config.
 * A step whose image an earlier build made on the same image with the same config (and the same
 * sources, for COPY and ADD) is not run again: that image is taken (the layer cache). Intermediate
 * containers are removed whether the build succeeds, fails or its client goes away.
 */
export class Build {
  private readonly containers = new Set<ContainerRecord>();
  /** The empty images `FROM scratch` stages start from: the build's own, removed at its end. */
  private readonly scratchImages: string[] = [];
  /** The target digests this build holds from prune and rmi (BuildHolds), released at its end. */
  private readonly held: string[] = [];
  private readonly stages: Stage[] = [];
  private readonly cache: StepCache;
  private readonly consumedArgs = new Set<string>();
  private step = 0;
  private total = 0;

  constructor(
    private readonly deps: BuildDeps,
    private readonly context: BuildContext,
    private readonly opts: BuildOptions,
  ) {
    this.cache = new StepCache(deps.images.service, opts.noCache);
  }

  private say(text: string): void {
    if (!this.opts.quiet) this.opts.write({ stream: text });
  }

  /** Keeps the image of target `digest` from prune and rmi until the build ends. */
  private hold(digest: string): void {
    this.deps.images.buildHolds.add(digest);
    this.held.push(digest);
  }

  /** Runs the build; the id of the image made (tagged as asked). */
  async run(): Promise<string> {
    try {
      return await this.build();
    } finally {
      await this.cleanUp();
    }
  }

  private async build(): Promise<string> {
    const { opts } = this;
    const instructions = parseDockerfile(this.context.dockerfile);
    const firstFrom = instructions.findIndex((instruction) => instruction.name === "from");
    if (firstFrom < 0)
      throw badRequest("dockerfile parse error: no FROM instruction: a Dockerfile must begin with one");
    const meta = instructions.slice(0, firstFrom);
    const bad = meta.find((instruction) => instruction.name !== "arg");
    if (bad)
      throw badRequest(
        `dockerfile parse error line ${bad.line}: ${bad.name.toUpperCase()} before the first FROM`,
      );
    // The stages, each a FROM and what follows it, up to the target's.
    const stages: Instruction[][] = [];
    for (const instruction of instructions.slice(firstFrom)) {
      if (instruction.name === "from") stages.push([instruction]);
      else stages.at(-1)?.push(instruction);
    }
    let last = stages.length;
    if (opts.target !== "") {
      const at = stages.findIndex((stage) => this.stageName(stage[0]) === opts.target.toLowerCase());
      if (at < 0) throw badRequest(`failed to reach build target ${opts.target} in Dockerfile`);
      last = at + 1;
    }
    const built = stages.slice(0, last);
    const labels = Object.entries(opts.labels);
    this.total =
      meta.length + built.reduce((sum, stage) => sum + stage.length, 0) + (labels.length > 0 ? 1 : 0);
    const metaArgs = new Map<string, string | undefined>();
    for (const instruction of meta) {
      this.announce(instruction);
      for (const [name, value] of this.argDeclarations(instruction, new Map(metaArgs)))
        metaArgs.set(name, value);
    }
    let stage: Stage | undefined;
    for (const instructions of built) {
      const [from, ...rest] = instructions;
      if (!from) continue;
      this.announce(from);
      this.cache.reset();
      stage = await this.from(from, metaArgs);
      this.stages.push(stage);
      await this.runTriggers(stage, metaArgs);
      for (const instruction of rest) {
        opts.signal.throwIfAborted();
        this.announce(instruction);
        await this.dispatch(stage, instruction, metaArgs);
      }
    }
    if (!stage) throw badRequest("dockerfile parse error: no build stage");
    if (labels.length > 0) {
      const text = `LABEL ${labels.map(([key, value]) => `${JSON.stringify(key)}=${JSON.stringify(value)}`).join(" ")}`;
      this.say(`Step ${++this.step}/${this.total} : ${text}\n`);
      await this.commitConfig(
        stage,
        { ...stage.config, Labels: { ...stage.config.Labels, ...opts.labels } },
        text,
      );
    }
    const unused = [...opts.buildArgs.keys()].filter((name) => !this.consumedArgs.has(name));
    if (unused.length > 0)
      this.say(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
    return this.finish(stage);
  }

  /**
   * The ONBUILD triggers of the stage's image, run first as the stage's own instructions (moby's
   * dispatchTriggeredOnBuild); the stage's config keeps none of them, so its image passes them on
   * no further.
   */
  private async runTriggers(stage: Stage, metaArgs: ReadonlyMap<string, string | undefined>): Promise<void> {
    const triggers = stage.config.OnBuild ?? [];
    if (triggers.length === 0) return;
    const { OnBuild: _triggers, ...rest } = stage.config;
    stage.config = rest;
    this.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? "s" : ""}\n`);
    for (const trigger of triggers) {
      this.opts.signal.throwIfAborted();
      for (const instruction of parseDockerfile(trigger)) await this.dispatch(stage, instruction, metaArgs);
    }
  }

  private stageName(from: Instruction | undefined): string {
    const match = /\s+as\s+(\S+)\s*$/i.exec(from?.args ?? "");
    return (match?.[1] ?? "").toLowerCase();
  }

  private announce(instruction: Instruction): void {
    this.say(`Step ${++this.step}/${this.total} : ${instruction.original}\n`);
  }

  /** `ARG a=1 b`: the names declared, each with its value (the build's, else the default, else the global). */
  private argDeclarations(
    instruction: Instruction,
    visible: ReadonlyMap<string, string | undefined>,
    global?: ReadonlyMap<string, string | undefined>,
  ): [string, string | undefined][] {
    const env = new Map([...visible].filter((entry): entry is [string, string] => entry[1] !== undefined));
    const declared = words(instruction.args, new Map(), true);
    if (declared.length === 0) throw badRequest("ARG requires exactly one argument");
    return declared.map((declaration) => {
      const eq = declaration.indexOf("=");
      const name = eq < 0 ? declaration : declaration.slice(0, eq);
      if (name === "") throw badRequest(`ARG names can not be blank`);
      const fallback = eq < 0 ? global?.get(name) : (words(declaration.slice(eq + 1), env, false)[0] ?? "");
      if (this.opts.buildArgs.has(name)) {
        this.consumedArgs.add(name);
        const given = this.opts.buildArgs.get(name);
        return [name, given ?? fallback];
      }
      return [name, fallback];
    });
  }

  /** The variables an instruction substitutes: the stage's ARGs, its Env over them. */
  private variables(stage: Stage): Map<string, string> {
    const vars = new Map<string, string>();
    for (const [name, value] of stage.args) if (value !== undefined) vars.set(name, value);
    for (const entry of stage.config.Env ?? []) {
      const eq = entry.indexOf("=");
      if (eq > 0) vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return vars;
  }

  private async from(from: Instruction, metaArgs: ReadonlyMap<string, string | undefined>): Promise<Stage> {
    const { images } = this.deps;
    const vars = new Map([...metaArgs].filter((entry): entry is [string, string] => entry[1] !== undefined));
    const parts = words(from.args, vars, true);
    if (parts.length !== 1 && !(parts.length === 3 && parts[1]?.toLowerCase() === "as"))
      throw badRequest("FROM requires either one or three arguments");
    const image = parts[0] ?? "";
    const name = (parts[2] ?? "").toLowerCase();
    const previous = this.stages.find((stage) => stage.name !== "" && stage.name === image.toLowerCase());
    if (!previous && image.toLowerCase() === "scratch") {
      // No image: the stage's containers start from an empty one of the build's own, and its first
      // step's image has no parent (moby's FROM scratch, whose image id is "").
      const empty = await images.service.scratch({ signal: this.opts.signal });
      this.scratchImages.push(empty.record.name);
      this.hold(empty.record.target.digest);
      this.say(" ---> \n");
      return { name, ref: empty.record.name, id: "", digest: "", config: {}, ...freshStageState() };
    }
    const ref = previous ? previous.ref : await this.baseImage(image);
    const resolved = await images.service.resolve(ref, { signal: this.opts.signal });
    const id = resolved.manifest.config.digest;
    this.say(` ---> ${shortId(id)}\n`);
    const config = structuredClone(resolved.config.config ?? {});
    this.hold(resolved.record.target.digest);
    return { name, ref, id, digest: resolved.record.target.digest, config, ...freshStageState() };
  }

  /** COPY --from's stage: a stage before by name or index, else an image (local, or pulled), as dockerd's. */
  private async copySource(fromName: string, current: Stage): Promise<Stage> {
    const named = this.stages.find(
      (other) => other.name !== "" && other.name === fromName.toLowerCase() && other !== current,
    );
    if (named) return named;
    if (/^\d+$/.test(fromName)) {
      const indexed = this.stages[Number(fromName)];
      if (!indexed || indexed === current)
        throw badRequest(`invalid from flag value ${fromName}: index out of bounds`);
      return indexed;
    }
    const ref = await this.baseImage(fromName);
    const resolved = await this.deps.images.service.resolve(ref, { signal: this.opts.signal });
    this.hold(resolved.record.target.digest);
    return {
      name: "",
      ref,
      id: resolved.manifest.config.digest,
      digest: resolved.record.target.digest,
      config: structuredClone(resolved.config.config ?? {}),
      ...freshStageState(),
    };
  }

  /** A FROM's image: the local one, else (or with pull=1) pulled from its registry. */
  private async baseImage(image: string): Promise<string> {
    const { images, events } = this.deps;
    const signal = this.opts.signal;
    let name: string;
    try {
      name = normalizeReference(image);
    } catch {
      throw badRequest(`invalid reference format: ${image}`);
    }
    if (!this.opts.pull) {
      const local = await images.service.get(name, { signal }).catch((err: unknown) => {
        if (isErrorCode(err, "not_found")) return undefined;
        throw err;
      });
      if (local) return local.name;
    }
    if (!this.opts.quiet)
      this.opts.write({ status: `Pulling from ${familiarName(name).replace(/[:@][^:/]+$/, "")}` });
    let downloaded = false;
    const record = await images.service.pull(name, {
      signal,
      onProgress: (event) => {
        if (event.kind === "layer" && (event.state === "downloading" || event.state === "downloaded"))
          downloaded = true;
      },
    });
    this.opts.write({ status: `Digest: ${record.target.digest}` });
    this.opts.write({
      status: `Status: ${downloaded ? "Downloaded newer image" : "Image is up to date"} for ${familiarName(record.name)}`,
    });
    events.publish("image", "pull", familiarName(record.name), { name: familiarName(record.name) });
    return record.name;
  }

  private async dispatch(
    stage: Stage,
    instruction: Instruction,
    metaArgs: ReadonlyMap<string, string | undefined>,
  ): Promise<void> {
    const { name, original } = instruction;
    const nop = `/bin/sh -c #(nop)  ${original}`;
    if (CONFIG_INSTRUCTIONS.has(name)) {
      const before = stage.config;
      let config: ImageRunConfig;
      try {
        config = applyConfigChanges(before, [`${name} ${instruction.args}`], this.variables(stage));
      } catch (err) {
        if (isErrorCode(err, "invalid_argument")) throw badRequest((err as Error).message);
        throw err;
      }
      // The shell form runs in SHELL's shell (applyConfigChanges knows only /bin/sh -c).
      if ((name === "cmd" || name === "entrypoint") && !instruction.json && instruction.args !== "") {
        const command = [...shellOf(stage), instruction.args];
        if (name === "cmd") config.Cmd = command;
        else config.Entrypoint = command;
      }
      // As dockerd's builder: ENTRYPOINT resets CMD unless this stage gave one.
      if (name === "entrypoint" && stage.cmdSet) config.Cmd = before.Cmd ?? null;
      if (name === "cmd") stage.cmdSet = true;
      await this.commitConfig(stage, config, nop);
      return;
    }
    switch (name) {
      case "maintainer":
        await this.commitConfig(stage, stage.config, nop);
        return;
      case "arg":
        for (const [arg, value] of this.argDeclarations(instruction, new Map([...stage.args]), metaArgs))
          stage.args.set(arg, value);
        await this.commitConfig(stage, stage.config, nop);
        return;
      case "shell":
        if (!instruction.json || instruction.json.length === 0)
          throw badRequest("SHELL requires the arguments to be in JSON form");
        // In the config (moby's runConfig.Shell): a build FROM this image runs in it too.
        await this.commitConfig(stage, { ...stage.config, Shell: instruction.json }, nop);
        return;
      case "workdir": {
        const dir = words(instruction.args, this.variables(stage), true);
        if (dir.length !== 1) throw badRequest("WORKDIR requires exactly one argument");
        const path = posix.resolve(stage.config.WorkingDir || "/", dir[0] ?? "");
        stage.config = { ...stage.config, WorkingDir: path };
        // Created as dockerd's ContainerCreateWorkdir does: owned by root, 0755.
        const entry = pack();
        entry.entry({ name: `${path.slice(1)}/`, type: "directory", mode: 0o755, uid: 0, gid: 0 });
        entry.finalize();
        await this.commitLayer(stage, nop, async (record, root) => {
          await extractIntoRoot(root, this.putRequest(record, "/"), Readable.from(entry), this.opts.signal);
        });
        return;
      }
      case "run":
        await this.runStep(stage, instruction);
        return;
      case "copy":
      case "add":
        await this.copyStep(stage, instruction);
        return;
      default:
        throw badRequest(
          `dockerfile parse error line ${instruction.line}: unknown instruction: ${name.toUpperCase()}`,
        );
    }
  }

  /**
   * A new image of the stage's layers with `config`: the stage's image from now on. Its cache key
   * is the config with the instruction as its Cmd (moby's `#(nop) ` comment in SHELL's shell).
   */
  private async commitConfig(stage: Stage, config: ImageRunConfig, createdBy: string): Promise<void> {
    const containerConfig = { ...config, Cmd: [...shellOf(stage), createdBy.replace(/^\/bin\/sh -c /, "")] };
    if (await this.fromCache(stage, containerConfig, config)) return;
    const made = await this.deps.images.service.withConfig(stage.ref, {
      config,
      createdBy,
      signal: this.opts.signal,
      buildCache: { parent: stage.digest, containerConfig },
    });
    this.advance(stage, made, config);
  }

  /** The step's image from an earlier build, if the cache has it: the stage's image from now on. */
  private async fromCache(
    stage: Stage,
    containerConfig: Record<string, unknown>,
    config: ImageRunConfig,
  ): Promise<boolean> {
    const cached = await this.cache.probe(stage.digest, containerConfig, this.opts.signal);
    if (!cached) return false;
    this.say(" ---> Using cache\n");
    this.advance(stage, cached, config);
    return true;
  }

  private advance(stage: Stage, made: { record: ImageRecord; id: string }, config: ImageRunConfig): void {
    this.hold(made.record.target.digest);
    stage.ref = made.record.name;
    stage.id = made.id;
    stage.digest = made.record.target.digest;
    stage.config = config;
    this.say(` ---> ${shortId(made.id)}\n`);
  }

  /** A container from the stage's image (removed by the build), for a RUN or to write files into. */
  private async container(stage: Stage, command: string[], env: string[]): Promise<ContainerRecord> {
    const request = parseCreateRequest({
      Image: stage.ref,
      Cmd: command,
      Entrypoint: [""],
      Env: env,
      WorkingDir: stage.config.WorkingDir ?? "",
      User: stage.config.User ?? "",
      Healthcheck: { Test: ["NONE"] },
      HostConfig: { NetworkMode: this.opts.networkMode },
    });
    const record = await this.deps.manager.create(request, null, { signal: this.opts.signal });
    this.containers.add(record);
    return record;
  }

  private async removeContainer(record: ContainerRecord): Promise<void> {
    if (!this.containers.delete(record)) return;
    await this.deps.manager.remove(record, { force: true, volumes: true });
  }

  /** dockerd's PUT-archive options for writing into a build container's rootfs. */
  private putRequest(record: ContainerRecord, path: string, owner?: { uid: number; gid: number }) {
    return {
      path,
      container: record.Name.slice(1),
      noOverwriteDirNonDir: false,
      ...(owner ? { owner } : {}),
      readonlyRootfs: false,
      volumes: [],
    };
  }

  /**
   * A container (not started) whose rootfs `write` changes, committed as a layer on the stage's image
   * with the stage's config: COPY, ADD, WORKDIR.
   */
  private async commitLayer(
    stage: Stage,
    createdBy: string,
    write: (record: ContainerRecord, root: ContainerRoot) => Promise<void>,
  ): Promise<void> {
    const { manager, images } = this.deps;
    const signal = this.opts.signal;
    const containerConfig = {
      ...stage.config,
      Cmd: [...shellOf(stage), createdBy.replace(/^\/bin\/sh -c /, "")],
    };
    if (await this.fromCache(stage, containerConfig, stage.config)) return;
    const record = await this.container(stage, ["true"], stage.config.Env ?? []);
    await manager.withFilesystem(record, { signal }, (root) => write(record, root));
    const made = await images.service.commit(stage.ref, {
      signal,
      snapshotKey: record.Id,
      config: stage.config,
      createdBy,
      buildCache: { parent: stage.digest, containerConfig },
    });
    await this.removeContainer(record);
    this.advance(stage, made, stage.config);
  }

  private async runStep(stage: Stage, instruction: Instruction): Promise<void> {
    const { manager, images } = this.deps;
    const signal = this.opts.signal;
    const command = instruction.json ?? [...shellOf(stage), instruction.args];
    const configEnv = stage.config.Env ?? [];
    // The key: the stage's config running the command, build args before it (moby's RUN probe).
    const savedCommand = [...argsPrefix(stage.args, configEnv), ...command];
    const containerConfig = { ...stage.config, Cmd: savedCommand, Entrypoint: null };
    if (await this.fromCache(stage, containerConfig, stage.config)) return;
    const envKeys = new Set(configEnv.map((entry) => entry.split("=", 1)[0]));
    const argEnv = [...stage.args]
      .filter((entry): entry is [string, string] => entry[1] !== undefined && !envKeys.has(entry[0]))
      .map(([key, value]) => `${key}=${value}`);
    const record = await this.container(stage, command, [...configEnv, ...argEnv]);
    this.say(` ---> Running in ${shortId(record.Id)}\n`);
    const hub = manager.hub(record);
    let ended: () => void = () => {};
    const outputEnded = new Promise<void>((resolve) => {
      ended = resolve;
    });
    const unsubscribe = hub.subscribe({
      output: (_stream, chunk) => this.say(chunk.toString("utf8")),
      end: () => ended(),
    });
    let code: number;
    try {
      await manager.start(record, { signal });
      code = (await manager.wait(record, "not-running", signal)).StatusCode;
      await Promise.race([
        outputEnded,
        new Promise((_resolve, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
        ),
      ]);
    } finally {
      unsubscribe();
    }
    if (code !== 0) throw new RunFailedError(command, code);
    await removeRuntimeMountPoints(await this.deps.images.rootfsMounts(record.Id, { signal }));
    const made = await images.service.commit(stage.ref, {
      signal,
      snapshotKey: record.Id,
      config: stage.config,
      createdBy: savedCommand.join(" "),
      buildCache: { parent: stage.digest, containerConfig },
    });
    this.say(`Removing intermediate container ${shortId(record.Id)}\n`);
    await this.removeContainer(record);
    this.advance(stage, made, stage.config);
  }

  private async copyStep(stage: Stage, instruction: Instruction): Promise<void> {
    const { manager } = this.deps;
    const signal = this.opts.signal;
    const isAdd = instruction.name === "add";
    for (const flag of instruction.flags.keys())
      if (flag !== "chown" && !(flag === "from" && !isAdd)) throw badRequest(`Unknown flag: ${flag}`);
    const vars = this.variables(stage);
    const parts = instruction.json ?? words(instruction.args, vars, true);
    if (instruction.json)
      for (let i = 0; i < parts.length; i++) parts[i] = words(parts[i] ?? "", vars, false)[0] ?? "";
    if (parts.length < 2)
      throw badRequest(`${instruction.name.toUpperCase()} requires at least two arguments`);
    const sources = parts.slice(0, -1);
    const rawDest = parts.at(-1) ?? "";
    const dest = posix.resolve(stage.config.WorkingDir || "/", rawDest);
    const destIsDir = rawDest.endsWith("/") || rawDest === "." || rawDest.endsWith("/.");
    const fromName = instruction.flags.get("from");
    const from = fromName === undefined ? undefined : await this.copySource(fromName, stage);
    for (const source of sources)
      if (/^https?:\/\//.test(source))
        throw new EngineError(501, `ADD of a URL (${source}) is not supported by this engine`);
    // Build args and ENV expanded in it, as dockerd's CopyCommand.Expand: the key holds the owner given.
    const chownFlag = instruction.flags.get("chown");
    const chown = chownFlag === undefined ? undefined : (words(chownFlag, vars, false)[0] ?? "");
    const contextSources = from ? [] : await this.contextSources(sources);
    // moby's `COPY [--chown=…] <sources' hash> in <dest> `: the same files (content and metadata)
    // to the same place hit the cache; from a stage or an image, that image and those paths.
    const hash = from
      ? `from:${createHash("sha256")
          .update([from.id, ...sources].join("\0"))
          .digest("hex")}`
      : sourcesHash(
          await Promise.all(
            contextSources.map((source) => contextSourceHash(source.path, source.base, signal)),
          ),
        );
    // The destination as written (moby's inst.dest): `/d/` copies into a directory, `/d` may make a
    // file, so the two are other steps (the WORKDIR a relative one is under is in the config).
    const createdBy = `/bin/sh -c #(nop) ${instruction.name.toUpperCase()} ${chown ? `--chown=${chown} ` : ""}${hash} in ${rawDest} `;
    await this.commitLayer(stage, createdBy, async (record, root) => {
      const owner = chown ? await manager.userFor(record, chown, { signal }) : { uid: 0, gid: 0 };
      const destStat = await statInRoot(root, dest, record.Name.slice(1), signal).catch(() => undefined);
      // A directory: the destination ends in `/`, is one in the image, or several sources go there.
      const intoDir =
        destIsDir || sources.length > 1 || (destStat !== undefined && (destStat.mode & 0x80000000) !== 0);
      const put = async (tar: Readable, keepOwners = false) =>
        extractIntoRoot(
          root,
          this.putRequest(record, "/", keepOwners && !chown ? undefined : owner),
          tar,
          signal,
        );
      if (from) {
        const sourceRecord = await this.container(from, ["true"], []);
        try {
          for (const source of sources) {
            const sourcePath = posix.resolve(from.config.WorkingDir || "/", source);
            await manager.withFilesystem(sourceRecord, { signal }, async (sourceRoot) => {
              const stat = await statInRoot(sourceRoot, sourcePath, sourceRecord.Name.slice(1), signal);
              const isDir = (stat.mode & 0x80000000) !== 0;
              const tar = new PassThrough();
              const reading = archiveFromRoot(
                sourceRoot,
                sourcePath,
                sourceRecord.Name.slice(1),
                { signal },
                () => tar,
              );
              reading.then(
                () => tar.end(),
                (err: unknown) => tar.destroy(err as Error),
              );
              await Promise.all([
                put(this.rebased(tar, isDir, intoDir, dest, posix.basename(sourcePath))),
                reading,
              ]);
            });
          }
        } finally {
          await this.removeContainer(sourceRecord);
        }
        return;
      }
      for (const source of contextSources) {
        const stat = await lstat(source.path);
        if (isAdd && stat.isFile()) {
          const kind = await archiveKind(source.path);
          if (kind) {
            const file = createReadStream(source.path);
            const plain = kind === "gzip" ? file.pipe(createGunzip()) : file;
            await put(
              renamed(plain, (name) => posix.join(dest.slice(1), name), undefined),
              true,
            );
            continue;
          }
        }
        const tar = new PassThrough();
        const packing = packTree(source.path, source.base, tar, { signal });
        packing.then(
          () => tar.end(),
          (err: unknown) => tar.destroy(err as Error),
        );
        await Promise.all([put(this.rebased(tar, stat.isDirectory(), intoDir, dest, source.base)), packing]);
      }
    });
  }

  /** A source's tree renamed for its destination: a directory's contents into `dest`, a file as `dest` or into it. */
  private rebased(tar: Readable, isDir: boolean, intoDir: boolean, dest: string, base: string): Readable {
    const below = belowTop();
    const target = isDir || !intoDir ? dest : posix.join(dest, base);
    return renamed(
      tar,
      (name) => {
        const rest = below(name);
        if (rest === undefined) return undefined;
        const path = rest === "" ? target : posix.join(target, rest);
        return path === "/" ? "./" : path.slice(1);
      },
      undefined,
    );
  }

  /** COPY's sources in the context: each path (wildcards matched), never outside the context. */
  private async contextSources(sources: readonly string[]): Promise<{ path: string; base: string }[]> {
    const root = this.context.dir;
    const out: { path: string; base: string }[] = [];
    for (const source of sources) {
      const relative = posix.normalize(`/${source}`).slice(1);
      const candidates = /[*?[]/.test(relative) ? await this.glob(relative) : [relative];
      if (candidates.length === 0) throw badRequest(`COPY failed: no source files were specified`);
      for (const candidate of candidates) {
        const path = join(root, candidate);
        const real = await realpath(path).catch(() => undefined);
        if (real === undefined)
          throw badRequest(
            `COPY failed: file not found in build context or excluded by .dockerignore: stat ${candidate}: file does not exist`,
          );
        if (real !== root && !real.startsWith(`${root}/`))
          throw badRequest(`COPY failed: forbidden path outside the build context: ${source} (${real})`);
        out.push({ path: real, base: candidate === "" ? "." : posix.basename(candidate) });
      }
    }
    return out;
  }

  /** The context's paths a COPY wildcard matches (Go's filepath.Match, component by component). */
  private async glob(pattern: string): Promise<string[]> {
    const components = pattern.split("/");
    let matches = [""];
    for (const component of components) {
      const regexp = new RegExp(
        `^${component
          .replace(/[.+^${}()|\\]/g, "\\$&")
          .replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")}$`,
      );
      const next: string[] = [];
      for (const dir of matches) {
        const entries = await readdir(join(this.context.dir, dir)).catch(() => [] as string[]);
        for (const entry of entries.sort())
          if (regexp.test(entry)) next.push(dir === "" ? entry : `${dir}/${entry}`);
      }
      matches = next;
    }
    return matches;
  }

  /** Tags the final image, reports it, and keeps it from the clean-up. */
  private async finish(stage: Stage): Promise<string> {
    const { images, events } = this.deps;
    const final = stage.ref;
    if (stage.digest === "") throw badRequest("No image was generated. Is your Dockerfile empty?");
    this.opts.write({ aux: { ID: stage.id } });
    if (this.opts.quiet) this.opts.write({ stream: `${stage.id}\n` });
    this.say(`Successfully built ${shortId(stage.id)}\n`);
    for (const tag of this.opts.tags) {
      const target = normalizeReference(tag);
      await images.service.tag(final, target, { signal: this.opts.signal });
      events.publish("image", "tag", stage.id, { name: familiarName(target) });
      this.say(`Successfully tagged ${familiarName(target)}\n`);
    }
    return stage.id;
  }

  /**
   * Removes the build's containers and its scratch images, whatever happened (not on the request's
   * signal). The steps' images stay, as dockerd's: the cache of the next build (a failed build's
   * too); `docker rmi` of an image takes its untagged parents, `docker image prune` the dangling.
   */
  private async cleanUp(): Promise<void> {
    for (const record of [...this.containers]) await this.removeContainer(record).catch(() => {});
    for (const ref of this.scratchImages) await this.deps.images.service.remove(ref).catch(() => {});
    for (const digest of this.held.splice(0)) this.deps.images.buildHolds.release(digest);
  }
}
