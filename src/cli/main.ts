#!/usr/bin/env node
// ctrd's entry point. `ctrd --version` is answered before the rest of ctrd is loaded; every other
// command line goes to program.ts, which loads only the commands it names.
import { packageVersion } from "./version.js";

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { runAndExit } = await import("./program.js");
  runAndExit(argv);
}
