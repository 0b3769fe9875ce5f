export const EVENT_TYPES = [
  "create",
  "start",
  "exit",
  "oom",
  "exec-added",
  "exec-started",
  "paused",
  "resumed",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** One task event. `processId === containerId` means the init process; otherwise it is an exec id. */
export interface LibcontainerdEvent {
  type: EventType;
  containerId: string;
  processId: string;
  /** 0 where the event carries no pid (oom, paused, resumed, exec-added). */
  pid: number;
  exitCode?: number;
  exitedAt?: Date;
  /** When the backend says the event happened (containerd's envelope timestamp, or now for HCS). */
  timestamp: Date;
  /** Set only where the backend reports a failure alongside the event (HCS close/shutdown). */
  error?: Error;
}

/**
 * The moby-style callback: events for one container arrive one at a time, in order;
 * different containers are handled concurrently. A rejection is logged, never fatal.
 */
export interface Backend {
  processEvent(containerId: string, type: EventType, event: LibcontainerdEvent): Promise<void> | void;
}
