/**
 * The child process that does docker cp's and export's work on a container's files, as dockerd's
 * pkg/chrootarchive does: it loads all its code, then chroots into the container's root (fd 3, opened
 * and pinned by the engine) before it touches a single path. Every lookup, symlink and '..' then
 * resolves inside the container, whatever its processes swap meanwhile (CVE-2018-15664), and no file
 * of the host can be reached. Its request is argv[2] (JSON); it answers on the IPC channel; a PUT's
 * tar is its stdin, a GET's its stdout. Built apart (scripts/build.js): dist/engine/rootfs-worker.js.
 */
import koffi from "koffi";
import { badRequest, EngineError } from "../errors.js";
import {
  containerPathOf,
  extractTar,
  packTree,
  refuseKernelFs,
  statResource,
  volumeOf,
} from "./filesystem.js";
import type { WorkerMessage, WorkerRequest } from "./rootfs-worker.js";

const ROOT_FD = 3;

function enterRoot(): void {
  const libc = koffi.load("libc.so.6");
  const steps: [string, () => unknown][] = [
    ["fchdir", () => libc.func("int fchdir(int fd)")(ROOT_FD)],
    ["chroot", () => libc.func("int chroot(const char *path)")(".")],
    ["chdir", () => libc.func("int chdir(const char *path)")("/")],
  ];
  for (const [name, step] of steps) {
    if (step() !== 0)
      throw new EngineError(500, `entering the container's root: ${name}: errno ${koffi.errno()}`);
  }
}

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) reject(new Error("no IPC channel"));
    else process.send(message, undefined, {}, (err) => (err ? reject(err) : resolve()));
  });
}

async function serve(request: WorkerRequest): Promise<void> {
  enterRoot();
  if (request.op === "put") {
    const path = request.path.endsWith("/") ? request.path : `${request.path}/`;
    const resource = await statResource("/", path, request.container);
    if (!(resource.stat.mode & (1 << 31))) throw badRequest("extraction point is not a directory");
    // moby's checkIfPathIsInAVolume: a read-only volume refuses, else a read-only rootfs outside the volumes.
    const dir = containerPathOf("/", resource.hostPath);
    const volume = volumeOf(request.volumes, dir);
    if (volume?.readonly) throw badRequest("mounted volume is marked read-only");
    if (!volume && request.readonlyRootfs) throw new EngineError(403, "container rootfs is marked read-only");
    await extractTar("/", dir, process.stdin, {
      noOverwriteDirNonDir: request.noOverwriteDirNonDir,
      ...(request.owner ? { owner: request.owner } : {}),
    });
  } else {
    const resource = await statResource("/", request.path, request.container);
    await refuseKernelFs(resource, request.path, request.container);
    await send({ type: "stat", stat: resource.stat });
    if (request.op === "get") {
      await packTree(resource.hostPath, resource.stat.name, process.stdout, {
        oneFileSystem: request.oneFileSystem === true,
      });
      // All written out before process.exit: stdout (a socket to the engine) may still hold some.
      await new Promise<void>((resolve) => process.stdout.end(resolve));
    }
  }
  await send({ type: "done" });
}

serve(JSON.parse(process.argv[2] ?? "{}") as WorkerRequest).then(
  () => process.exit(0),
  async (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const status = err instanceof EngineError ? err.status : code === "EROFS" ? 403 : 500;
    const message =
      code === "EROFS"
        ? "container rootfs is marked read-only"
        : err instanceof Error
          ? err.message
          : String(err);
    await send({ type: "error", status, message }).catch(() => {});
    process.exit(1);
  },
);
