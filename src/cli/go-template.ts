import { usageError } from "./errors.js";

/**
 * The part of Go's text/template that `docker inspect --format` is used with: `{{.Field.Sub}}`,
 * `{{.}}`, `{{json .Field}}` and literal text. Values print as Go prints them (`[a b]`,
 * `map[k:v]`, `<no value>` for a missing key, `<nil>` for null).
 */
export function renderTemplate(template: string, data: unknown): string {
  let out = "";
  let rest = template;
  for (;;) {
    const open = rest.indexOf("{{");
    if (open < 0) {
      if (rest.includes("}}")) throw usageError(`invalid --format ${JSON.stringify(template)}: unmatched }}`);
      return out + rest;
    }
    const close = rest.indexOf("}}", open + 2);
    if (close < 0) throw usageError(`invalid --format ${JSON.stringify(template)}: unclosed {{`);
    out += rest.slice(0, open);
    out += action(rest.slice(open + 2, close).trim(), data, template);
    rest = rest.slice(close + 2);
  }
}

function action(text: string, data: unknown, template: string): string {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length === 1 && words[0]?.startsWith(".")) return goString(lookup(words[0], data, template));
  if (words.length === 2 && words[0] === "json" && words[1]?.startsWith("."))
    return JSON.stringify(lookup(words[1], data, template) ?? null);
  throw usageError(
    `invalid --format ${JSON.stringify(template)}: {{${text}}} is not supported (use {{.Field}} or {{json .Field}})`,
  );
}

const MISSING = Symbol("missing");

function lookup(path: string, data: unknown, template: string): unknown {
  if (path === ".") return data;
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(path))
    throw usageError(`invalid --format ${JSON.stringify(template)}: bad field ${path}`);
  let value: unknown = data;
  for (const key of path.slice(1).split(".")) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return MISSING;
    value = Reflect.get(value, key);
  }
  return value;
}

function goString(value: unknown): string {
  if (value === MISSING) return "<no value>";
  if (value === null || value === undefined) return "<nil>";
  if (Array.isArray(value)) return `[${value.map(goString).join(" ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([key, item]) => `${key}:${goString(item)}`).join(" ")}]`;
  }
  return String(value);
}
