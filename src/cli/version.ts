import { readFileSync } from "node:fs";

/** The package's version, from its package.json (next to dist/ and src/). */
export function packageVersion(): string {
  try {
    const manifest: unknown = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    );
    const version =
      typeof manifest === "object" && manifest !== null ? Reflect.get(manifest, "version") : undefined;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
