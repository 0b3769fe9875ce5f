import { InvalidArgumentError } from "../types/errors.js";

// containerd's own rule (pkg/identifiers): checked here so a bad id fails before anything is created.
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;
const MAX_LENGTH = 76;

export function validateIdentifier(kind: "container id" | "exec id" | "namespace", id: unknown): string {
  if (typeof id !== "string" || id === "")
    throw new InvalidArgumentError(`${kind} must be a non-empty string`);
  if (id.length > MAX_LENGTH)
    throw new InvalidArgumentError(`${kind} ${JSON.stringify(id)} is longer than ${MAX_LENGTH} characters`);
  if (!IDENTIFIER.test(id)) {
    throw new InvalidArgumentError(
      `${kind} ${JSON.stringify(id)} is invalid: use letters and digits, separated by single '.', '_' or '-'`,
    );
  }
  return id;
}

/**
 * Names the library itself uses inside a client's stateDir (supervisor/layout.ts, runtime/registry.ts).
 * FIFOs live in `<stateDir>/<namespace>/`, so a namespace with one of these names would share a
 * directory with containerd's or runc's own state.
 */
const RESERVED_IN_STATE_DIR = new Set([
  "daemon",
  "runc-v1",
  "runtime-runc",
  "runtimes",
  "containerd.sock",
  "containerd.sock.ttrpc",
  "containerd.toml",
  "containerd.pid",
]);

export function validateNamespace(namespace: unknown): string {
  const name = validateIdentifier("namespace", namespace);
  if (RESERVED_IN_STATE_DIR.has(name)) {
    throw new InvalidArgumentError(
      `namespace ${JSON.stringify(name)} is reserved: the state dir uses that name itself`,
    );
  }
  return name;
}

/** containerd's limit on a label's key plus value (labels.Validate). */
const MAX_LABEL_BYTES = 4096;

/**
 * Labels as containerd stores them: string keys and values, without NUL, at most 4096 bytes each
 * pair. Checked up front: a non-string would otherwise be sent as "[object Object]", and an empty
 * key fails in containerd's store as an untyped error.
 */
export function validateLabels(what: string, labels: unknown): void {
  if (labels === undefined) return;
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    throw new InvalidArgumentError(`${what}: labels must be an object of strings`);
  }
  for (const [key, value] of Object.entries(labels)) {
    const label = `label ${JSON.stringify(key)}`;
    if (key === "") throw new InvalidArgumentError(`${what}: label keys must not be empty`);
    if (typeof value !== "string") {
      throw new InvalidArgumentError(
        `${what}: ${label} must have a string value, not ${value === null ? "null" : typeof value}`,
      );
    }
    if (key.includes("\0") || value.includes("\0"))
      throw new InvalidArgumentError(`${what}: ${label} contains NUL`);
    if (Buffer.byteLength(key) + Buffer.byteLength(value) > MAX_LABEL_BYTES) {
      throw new InvalidArgumentError(
        `${what}: ${label} is longer than containerd's ${MAX_LABEL_BYTES} bytes`,
      );
    }
  }
}

/**
 * An exec id must not be the container id: that id names the container's own process, so the
 * handle would wait on and signal the container, and its exit would look like the container's.
 */
export function validateExecId(containerId: string, execId: unknown): string {
  const id = validateIdentifier("exec id", execId);
  if (id === containerId) {
    throw new InvalidArgumentError(
      `exec id ${id} in container ${containerId}: the container's own process has that id; choose another`,
    );
  }
  return id;
}
