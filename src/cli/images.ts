import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream, readFileSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { applyConfigChanges } from "../images/config-changes.js";
import { familiarRepository, parseReference } from "../images/reference.js";
import type { RegistryOptions } from "../images/registry/client.js";
import { dockerConfigCredentials } from "../images/registry/credentials.js";
import { type ImageRecord, isDangling } from "../images/store.js";
import type { LibcontainerdClient } from "../libcontainerd/factory.js";
import { isErrorCode, NotFoundError } from "../libcontainerd/types/errors.js";
import { ExitCode, formatError, usageError } from "./errors.js";
import { addGlobalOptions, globalFlags, resolveSettings, withClient } from "./options.js";
import { formatAge, formatBytes, printJson, printTable } from "./output.js";
import { PullProgressView } from "./pull-progress.js";
import { untilInterrupted } from "./signals.js";

/** Flags every command that talks to a registry takes. */
export interface RegistryFlags {
  plainHttp?: boolean;
  caFile?: string;
  platform?: string;
  /** Stops a pull (ctrd run's Ctrl-C). */
  signal?: AbortSignal;
}

export function addRegistryOptions(command: Command): Command {
  return command
    .option("--plain-http", "talk plain HTTP to the registry (default for localhost and 127.0.0.1)")
    .option("--ca-file <file>", "PEM CA certificate(s) to trust for the registry's TLS");
}

/** Registry options from flags; credentials from ~/.docker/config.json (helpers included), as docker does. */
export function registryOptions(flags: RegistryFlags): RegistryOptions {
  const options: RegistryOptions = { credentials: dockerConfigCredentials() };
  if (flags.plainHttp) options.plainHttp = true;
  if (flags.caFile !== undefined) {
    try {
      options.ca = readFileSync(flags.caFile);
    } catch (err) {
      throw usageError(`cannot read --ca-file ${flags.caFile}: ${(err as Error).message}`);
    }
  }
  return options;
}

/** Pulls with a progress display; the image record. */
export async function pullWithProgress(
  client: LibcontainerdClient,
  ref: string,
  flags: RegistryFlags,
  quiet = false,
): Promise<ImageRecord> {
  const view = quiet ? undefined : new PullProgressView();
  try {
    return await client.images.pull(ref, {
      ...registryOptions(flags),
      ...(flags.platform !== undefined ? { platform: flags.platform } : {}),
      ...(flags.signal ? { signal: flags.signal } : {}),
      ...(view ? { onProgress: view.update } : {}),
    });
  } finally {
    view?.finish();
  }
}

/**
 * As docker's CopyToFile: the tar goes to a new file beside `path`, renamed over it once complete, so
 * a save that fails (a typo in a name, a full disk) leaves what `path` held before.
 */
async function saveToFile(
  client: LibcontainerdClient,
  refs: string[],
  path: string,
  signal: AbortSignal,
): Promise<void> {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory())
    throw usageError(`cannot write ${path}: it is a directory`);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString("hex")}.tmp`);
  const out = createWriteStream(temp, { flags: "wx" });
  await once(out, "open").catch((err: unknown) => {
    throw usageError(`cannot write ${path}: ${(err as Error).message}`);
  });
  try {
    await client.images.save(refs, out, { signal });
    await rename(temp, path);
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
}

interface ImageRow {
  repository: string;
  tag: string;
  name: string;
  digest: string;
  size: number | undefined;
  created: Date | undefined;
}

async function describeImage(client: LibcontainerdClient, record: ImageRecord): Promise<ImageRow> {
  let repository = isDangling(record.name) ? "<none>" : record.name;
  let tag = "<none>";
  try {
    if (!isDangling(record.name)) {
      const ref = parseReference(record.name);
      repository = familiarRepository(ref);
      tag = ref.tag ?? "<none>";
    }
  } catch {}
  const row: ImageRow = {
    repository,
    tag,
    name: record.name,
    digest: record.target.digest,
    size: undefined,
    created: record.createdAt,
  };
  try {
    const resolved = await client.images.resolve(record.name);
    row.size = resolved.manifest.layers.reduce((sum, l) => sum + l.size, resolved.manifest.config.size);
    if (resolved.config.created) row.created = new Date(resolved.config.created);
  } catch (err) {
    // Content for another platform only, or pulled elsewhere and partly collected: still listed.
    if (!isErrorCode(err, "not_found") && !isErrorCode(err, "invalid_argument")) throw err;
  }
  return row;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

interface ImportFlags {
  baseName?: string;
  rootfs?: boolean;
  change?: string[];
  message?: string;
  platform?: string;
}

interface CommitFlags {
  change?: string[];
  message?: string;
  author?: string;
  pause?: boolean;
}

export function registerImageCommands(program: Command): void {
  const pull = program
    .command("pull")
    .description("pull an image from a registry and unpack it")
    .argument("<ref>", "image reference, e.g. busybox, 127.0.0.1:5000/app:1, app@sha256:…")
    .option(
      "--platform <os/arch[/variant]>",
      "platform to pull from a multi-platform image (default: this host's)",
    )
    .option("-q, --quiet", "print only the image name");
  addRegistryOptions(pull);
  addGlobalOptions(pull).action(
    async (ref: string, flags: RegistryFlags & { quiet?: boolean }, self: Command) => {
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        const image = await untilInterrupted((signal) =>
          pullWithProgress(client, ref, { ...flags, signal }, flags.quiet),
        );
        process.stdout.write(flags.quiet ? `${image.name}\n` : `${image.name}: ${image.target.digest}\n`);
      });
    },
  );

  const push = program
    .command("push")
    .description("push an image to its registry (blobs the registry has are skipped or mounted)")
    .argument("<ref>", "image reference");
  addRegistryOptions(push);
  addGlobalOptions(push).action(async (ref: string, flags: RegistryFlags, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await untilInterrupted((signal) =>
        client.images.push(ref, {
          ...registryOptions(flags),
          signal,
          onProgress: (e) =>
            process.stderr.write(`${e.digest.replace(/^sha256:/, "").slice(0, 12)}: ${e.state}\n`),
        }),
      );
      const record = await client.images.get(ref);
      process.stdout.write(`${record.name}: ${record.target.digest}\n`);
    });
  });

  const importCommand = program
    .command("import")
    .description(
      "import images from a docker save tar or an OCI image-layout tar, or (--rootfs) a root filesystem tarball as a one-layer image, as docker import (- reads stdin)",
    )
    .argument("<file>", "the tar, or - for stdin")
    .argument("[ref]", "with --rootfs: the new image's name (none: a dangling image, named by its id)")
    .option("--base-name <repository>", "repository for OCI layout entries named by a tag only")
    .option("--rootfs", "the file is a root filesystem (plain, gzip, xz or bzip2 tar), as docker import")
    .option(
      "-c, --change <instruction>",
      "with --rootfs: a Dockerfile instruction for the config (repeatable)",
      collect,
    )
    .option("-m, --message <text>", "with --rootfs: the history comment")
    .option("--platform <os/arch[/variant]>", "with --rootfs: the platform the image declares");
  addGlobalOptions(importCommand).action(
    async (file: string, ref: string | undefined, flags: ImportFlags, self: Command) => {
      if (!flags.rootfs && (ref !== undefined || flags.change || flags.message || flags.platform))
        throw usageError("a name, --change, --message and --platform go with --rootfs only");
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        const input = file === "-" ? process.stdin : createReadStream(file);
        const opened = file === "-" ? Promise.resolve() : once(input, "open");
        await opened.catch((err: unknown) => {
          throw usageError(`cannot read ${file}: ${(err as Error).message}`);
        });
        if (flags.rootfs) {
          const config = applyConfigChanges({}, flags.change ?? []);
          const made = await untilInterrupted((signal) =>
            client.images.importRootfs(input, {
              signal,
              config,
              comment: flags.message ?? `Imported from ${file}`,
              ...(ref !== undefined ? { name: ref } : {}),
              ...(flags.platform !== undefined ? { platform: flags.platform } : {}),
            }),
          );
          process.stdout.write(ref !== undefined ? `${made.record.name}: ${made.id}\n` : `${made.id}\n`);
          return;
        }
        const images = await untilInterrupted((signal) =>
          client.images.import(input, {
            signal,
            ...(flags.baseName !== undefined ? { baseName: flags.baseName } : {}),
          }),
        );
        for (const image of images) process.stdout.write(`${image.name}: ${image.target.digest}\n`);
      });
    },
  );

  const commit = program
    .command("commit")
    .description("make an image of a container's filesystem changes, on the image it runs (as docker commit)")
    .argument("<container>", "container id")
    .argument("[ref]", "the new image's name (none: a dangling image, named by its id)")
    .option("-c, --change <instruction>", "a Dockerfile instruction for the config (repeatable)", collect)
    .option("-m, --message <text>", "the history comment")
    .option("-a, --author <name>", "the author")
    .option("--no-pause", "do not freeze a running container while its changes are read");
  addGlobalOptions(commit).action(
    async (id: string, ref: string | undefined, flags: CommitFlags, self: Command) => {
      await withClient(resolveSettings(globalFlags(self)), async (client) => {
        const info = (await client.listContainers()).find((container) => container.id === id);
        if (!info) throw new NotFoundError(`no such container: ${id}`);
        if (!info.image)
          throw usageError(`container ${id} was not made from an image: there is nothing to commit onto`);
        const base = await client.images.config(info.image);
        const config = applyConfigChanges(base.config ?? {}, flags.change ?? []);
        const task = await (await client.loadContainer(id)).task().catch((err: unknown) => {
          if (isErrorCode(err, "not_found")) return undefined;
          throw err;
        });
        const { labelledCommand } = await import("./container-spec.js");
        const pause = flags.pause !== false && task !== undefined && (await task.status()) === "running";
        if (pause) await task?.pause();
        try {
          const made = await untilInterrupted((signal) =>
            client.images.commit(info.image as string, {
              signal,
              snapshotKey: id,
              config,
              createdBy: labelledCommand(info.labels).join(" "),
              ...(flags.author !== undefined ? { author: flags.author } : {}),
              ...(flags.message !== undefined ? { comment: flags.message } : {}),
              ...(ref !== undefined ? { name: ref } : {}),
            }),
          );
          process.stdout.write(ref !== undefined ? `${made.record.name}: ${made.id}\n` : `${made.id}\n`);
        } finally {
          if (pause) await task?.resume();
        }
      });
    },
  );

  const save = program
    .command("save")
    .description("save images to an OCI image-layout tar (readable by docker load, skopeo, ctrd import)")
    .argument("<ref...>", "images")
    .requiredOption("-o, --output <file>", "the tar to write (- for stdout)");
  addGlobalOptions(save).action(async (refs: string[], flags: { output: string }, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      if (flags.output === "-" && process.stdout.isTTY)
        throw usageError("refusing to write a tar to a terminal; use -o FILE");
      await untilInterrupted((signal) =>
        flags.output === "-"
          ? client.images.save(refs, process.stdout, { signal })
          : saveToFile(client, refs, flags.output, signal),
      );
    });
  });

  const images = program
    .command("images")
    .alias("image-ls")
    .description("list images: REPOSITORY TAG DIGEST SIZE CREATED")
    .option("-q, --quiet", "print only the names")
    .option("--json", "print JSON");
  addGlobalOptions(images).action(async (flags: { quiet?: boolean; json?: boolean }, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      const records = await client.images.list();
      if (flags.quiet) {
        for (const r of records) process.stdout.write(`${r.name}\n`);
        return;
      }
      const rows = await Promise.all(records.map((r) => describeImage(client, r)));
      rows.sort((a, b) => a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
      if (flags.json) {
        printJson(rows);
        return;
      }
      printTable(
        ["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"],
        rows.map((r) => [
          r.repository,
          r.tag,
          r.digest.replace(/^sha256:/, "").slice(0, 12),
          r.size === undefined ? "-" : formatBytes(r.size),
          r.created ? formatAge(r.created) : "-",
        ]),
      );
    });
  });

  const rmi = program
    .command("rmi")
    .description("remove images (containerd's GC then reclaims what nothing else uses)")
    .argument("<ref...>", "image references");
  addGlobalOptions(rmi).action(async (refs: string[], _flags: object, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      // Each image on its own, as docker does: one that fails is reported and the rest still go.
      for (const ref of refs) {
        try {
          const record = await client.images.get(ref);
          await client.images.remove(record.name);
          process.stdout.write(`Untagged: ${record.name}\n`);
        } catch (err) {
          process.stderr.write(`${formatError(err)}\n`);
          process.exitCode = ExitCode.ctrdFailure;
        }
      }
    });
  });

  const tag = program
    .command("tag")
    .description("give an image another name")
    .argument("<source>", "existing image")
    .argument("<target>", "new name");
  addGlobalOptions(tag).action(async (source: string, target: string, _flags: object, self: Command) => {
    await withClient(resolveSettings(globalFlags(self)), async (client) => {
      await client.images.tag(source, target);
    });
  });
}
