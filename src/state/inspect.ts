import type { CallOptions, Container } from "../libcontainerd/types/client.js";
import type { ContainerInspect, ContainerStatus } from "../libcontainerd/types/inspect.js";
import { logOptionsFromLabels } from "../logs/labels.js";
import { type ObservedState, observe } from "./observe.js";

/** Docker's "never". */
export const ZERO_TIME = "0001-01-01T00:00:00Z";
const NANO = 1e9;

/** Docker's status word for what was observed. */
export function containerStatus(state: ObservedState): ContainerStatus {
  switch (state.task) {
    case "running":
      return "running";
    case "paused":
    case "pausing":
      return "paused";
    case "created":
      return "created";
    case "stopped":
      return "exited";
    case "unknown":
      return "dead";
    default:
      return state.remembered.startedAt ? "exited" : "created";
  }
}

/** `docker inspect`'s core for a container, from its record, its task and what it remembers. */
export async function inspectContainer(container: Container, opts?: CallOptions): Promise<ContainerInspect> {
  return inspectView(await observe(container, opts));
}

export function inspectView(state: ObservedState): ContainerInspect {
  const { info } = state;
  const id = info.id;
  const spec = info.spec;
  const args = spec?.process?.args ?? [];
  const status = containerStatus(state);
  const live = status === "running" || status === "paused";
  const { remembered } = state;
  const exitCode = state.exit?.exitCode ?? (live ? 0 : (remembered.exitCode ?? 0));
  const finishedAt = state.exit?.exitedAt ?? remembered.finishedAt;
  const resources = spec?.linux?.resources;
  const cpu = resources?.cpu;
  const pids = resources?.pids?.limit;
  const user = spec?.process?.user;
  const log = logOptionsFromLabels(state.labels);
  return {
    Id: id,
    Name: `/${id}`,
    Created: info.createdAt?.toISOString() ?? ZERO_TIME,
    Path: args[0] ?? "",
    Args: args.slice(1),
    State: {
      Status: status,
      Running: live,
      Paused: status === "paused",
      Restarting: false,
      OOMKilled: state.exit?.oomKilled ?? (live ? false : remembered.oomKilled),
      Dead: status === "dead",
      Pid: live ? state.pid : 0,
      ExitCode: exitCode,
      Error: "",
      StartedAt: remembered.startedAt?.toISOString() ?? ZERO_TIME,
      FinishedAt: finishedAt?.toISOString() ?? ZERO_TIME,
    },
    RestartCount: remembered.restartCount,
    LogPath: log?.path ?? "",
    Config: {
      Hostname: spec?.hostname ?? "",
      User: user && (user.uid !== 0 || user.gid !== 0) ? `${user.uid}:${user.gid}` : "",
      Env: spec?.process?.env ?? [],
      Cmd: args,
      Image: info.image ?? state.labels["io.ctrd.image"] ?? "",
      WorkingDir: spec?.process?.cwd ?? "",
      Entrypoint: null,
      Labels: Object.fromEntries(
        Object.entries(state.labels).filter(
          ([key]) => !key.startsWith("io.ctrd.") && !key.startsWith("io.ctrd/"),
        ),
      ),
      Tty: spec?.process?.terminal ?? false,
    },
    HostConfig: {
      Runtime: info.runtime.name,
      Memory: resources?.memory?.limit ?? 0,
      NanoCpus: cpu?.quota && cpu.period ? Math.round((cpu.quota / cpu.period) * NANO) : 0,
      PidsLimit: pids !== undefined && pids > 0 ? pids : null,
      LogConfig: log
        ? {
            Type: "json-file",
            Config: {
              ...(log.maxSize ? { "max-size": String(log.maxSize) } : {}),
              ...(log.maxFiles ? { "max-file": String(log.maxFiles) } : {}),
            },
          }
        : { Type: "none", Config: {} },
    },
    Mounts: (spec?.mounts ?? [])
      .filter((mount) => mount.type === "bind" || mount.options?.some((o) => o === "bind" || o === "rbind"))
      .map((mount) => ({
        Type: "bind",
        Source: mount.source ?? "",
        Destination: mount.destination,
        Mode: "",
        RW: !(mount.options ?? []).includes("ro"),
      })),
  };
}
