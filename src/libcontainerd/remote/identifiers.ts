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
