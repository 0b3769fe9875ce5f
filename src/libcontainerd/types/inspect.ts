/**
 * `docker inspect`'s core, as the Engine API spells it (PascalCase, RFC 3339 times, Docker's zero
 * time "0001-01-01T00:00:00Z" for "never"), so tools that read Docker's output read ours.
 */
export interface ContainerInspect {
  Id: string;
  /** Docker's form: the name with a leading slash. */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerInspectState;
  RestartCount: number;
  /** The json-file log, or "" when the container has none. */
  LogPath: string;
  Config: {
    Hostname: string;
    User: string;
    Env: string[];
    Cmd: string[];
    Image: string;
    WorkingDir: string;
    Entrypoint: string[] | null;
    Labels: Record<string, string>;
    Tty: boolean;
  };
  HostConfig: {
    Runtime: string;
    /** Bytes; 0 = no limit. */
    Memory: number;
    /** CPUs × 10⁹; 0 = no limit. */
    NanoCpus: number;
    /** null = no limit, as Docker reports it. */
    PidsLimit: number | null;
    LogConfig: { Type: string; Config: Record<string, string> };
  };
  Mounts: { Type: string; Source: string; Destination: string; Mode: string; RW: boolean }[];
}

export type ContainerStatus = "created" | "running" | "paused" | "restarting" | "exited" | "dead";

export interface ContainerInspectState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  /** 0 when not running. */
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}
