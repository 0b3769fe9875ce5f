// The package's API is the explicit list in src/index.ts: no `export *` there or in the folder index
// files it re-exports (a new export anywhere must be chosen, not swept in), and test hooks stay out.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import ts from "typescript";
import { expect, test } from "vitest";
import * as api from "../../src/index.js";

const INDEX = resolve(import.meta.dirname, "../../src/index.ts");

function exportStars(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest);
  return source.statements.flatMap((s) =>
    ts.isExportDeclaration(s) &&
    s.exportClause === undefined &&
    s.moduleSpecifier &&
    ts.isStringLiteral(s.moduleSpecifier)
      ? [s.moduleSpecifier.text]
      : [],
  );
}

function reExportedIndexes(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest);
  return source.statements.flatMap((s) =>
    ts.isExportDeclaration(s) &&
    s.moduleSpecifier &&
    ts.isStringLiteral(s.moduleSpecifier) &&
    s.moduleSpecifier.text.endsWith("/index.js")
      ? [resolve(dirname(file), s.moduleSpecifier.text.replace(/\.js$/, ".ts"))]
      : [],
  );
}

test("src/index.ts and the index files it re-exports list their exports", () => {
  const files = [INDEX, ...reExportedIndexes(INDEX)];
  expect(files.length).toBeGreaterThan(1);
  expect(files.flatMap((f) => exportStars(f).map((m) => `${f}: export * from ${m}`))).toEqual([]);
});

test("test hooks are not exported", () => {
  expect(Object.keys(api)).not.toContain("eventStreamOf");
  expect(Object.keys(api).filter((name) => /test|hook/i.test(name))).toEqual([]);
  // ...while the API itself is there.
  expect(typeof api.createClient).toBe("function");
  expect(typeof api.RemoteClient).toBe("function");
});
