/**
 * The one naming rule for every backend: containerd's (pkg/identifiers), so an id that works on
 * one backend works on the other, and a bad one fails before anything is created.
 */
import { isReservedStateName } from "../../platform/state-dir.js";
import { InvalidArgumentError } from "../types/errors.js";

const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;
const MAX_LENGTH = 76;
/** containerd's labels.Validate: key and value together. */
const MAX_LABEL_BYTES = 4096;

export type IdentifierKind = "container id" | "exec id" | "namespace";

export function validateIdentifier(kind: IdentifierKind, id: unknown): string {
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

/** FIFOs live in `<stateDir>/<namespace>/`: a namespace named like the state dir's own files is refused. */
export function validateNamespace(namespace: unknown): string {
  const name = validateIdentifier("namespace", namespace);
  if (isReservedStateName(name)) {
    throw new InvalidArgumentError(
      `namespace ${JSON.stringify(name)} is reserved: the state dir uses that name itself`,
    );
  }
  return name;
}

/**
 * Labels as containerd stores them: string keys and values, no empty key (its store answers
 * "key required" as an untyped error), no NUL, key and value together at most 4096 bytes.
 */
export function validateLabels(labels: unknown): Record<string, string> {
  return checkLabels(labels, false) as Record<string, string>;
}

/** Labels to set, or (`undefined`) to remove: the same rules. */
export function validateLabelUpdate(labels: unknown): Record<string, string | undefined> {
  return checkLabels(labels, true);
}

function checkLabels(labels: unknown, removals: boolean): Record<string, string | undefined> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== "object" || Array.isArray(labels))
    throw new InvalidArgumentError("labels must be an object of strings");
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (key === "") throw new InvalidArgumentError("label keys must not be empty");
    if (key.includes("\0")) throw new InvalidArgumentError(`label key ${JSON.stringify(key)} contains NUL`);
    // A label object from JSON.parse can hold it; any object it is copied into, protobuf-es's maps
    // too, takes it as the prototype and drops it: refused, not lost without a word.
    if (key === "__proto__") throw new InvalidArgumentError('label key "__proto__" cannot be kept');
    if (removals && value === undefined) {
      out[key] = undefined;
      continue;
    }
    if (typeof value !== "string")
      throw new InvalidArgumentError(`label ${JSON.stringify(key)} must be a string, not ${typeof value}`);
    if (Buffer.byteLength(key) + Buffer.byteLength(value) > MAX_LABEL_BYTES) {
      throw new InvalidArgumentError(
        `label ${JSON.stringify(key.slice(0, 20))}: key and value are longer than ${MAX_LABEL_BYTES} bytes`,
      );
    }
    out[key] = value;
  }
  return out;
}
