import { readFileSync } from "node:fs";
import { packagePath } from "../platform/package-dir.js";

/** The package's version, from its package.json (next to dist/ and src/). */
export function packageVersion(): string {
  try {
    const manifest: unknown = JSON.parse(readFileSync(packagePath("package.json"), "utf8"));
    const version =
      typeof manifest === "object" && manifest !== null ? Reflect.get(manifest, "version") : undefined;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
