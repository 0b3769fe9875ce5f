/** GET /containers/{id}/top's answer: ps's titles, and the rows of the container's processes. */
export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** Options that drop ps's header line: without it no column can be found (dockerd refuses them). */
const NO_HEADER_OPTIONS = new Set([
  "--no-header",
  "--no-headers",
  "--no-heading",
  "--no-headings",
  "--noheader",
  "--noheaders",
  "--noheading",
  "--noheadings",
]);

/** The option of `args` that leaves ps without a header, if one does. */
export function noHeaderOption(args: readonly string[]): string | undefined {
  return args.find((arg) => NO_HEADER_OPTIONS.has(arg));
}

/** `-q1,2,3`: ps lists exactly these processes, whatever else selects (moby's psPidsArg). */
export function psPidsArg(pids: readonly number[]): string {
  return `-q${pids.join(",")}`;
}

const isSpace = (char: string | undefined): boolean =>
  char === " " || char === "\t" || char === "\n" || char === "\f" || char === "\r";

/**
 * moby's parsePSOutput: a column starts where every row has a space just before it, found from its title
 * leftwards (right-aligned numbers, values with spaces such as lstart's `Tue Dec  1 05:49:03 2026` stay
 * whole); rows of other processes are dropped, and thread rows (`-` as PID, with `ps m`) follow their
 * process.
 */
export function parsePsOutput(output: string, pids: ReadonlySet<number>): TopResult {
  const [header = "", ...rows] = output.split("\n");
  const titles = header.split(/[\t\n\f\r ]+/).filter(Boolean);
  const pidIndex = titles.indexOf("PID");
  if (pidIndex < 0) throw new Error("Couldn't find PID field in ps output");
  const starts = [...header.matchAll(/\S+/g)].map((match) => match.index);
  const ends = [...header.matchAll(/\S+/g)].map((match) => match.index + match[0].length);
  if (starts.length > 0) starts[0] = 0;
  for (let column = 1; column < starts.length; column++) {
    const previousEnd = ends[column - 1] ?? 0;
    for (let at = (starts[column] ?? 0) - 1; at >= previousEnd; at--) {
      if (rows.every((row) => row.length <= at || isSpace(row[at]))) {
        starts[column] = at;
        break;
      }
    }
  }
  const processes: string[][] = [];
  let afterContainerProcess = false;
  for (const row of rows) {
    if (row.length === 0) continue;
    const fields = starts.map((start, column) => row.slice(start, starts[column + 1] ?? row.length).trim());
    const pid = fields[pidIndex] ?? "";
    if (pid === "-") {
      if (afterContainerProcess) processes.push(fields);
      continue;
    }
    if (!/^\d+$/.test(pid)) throw new Error(`Unexpected pid '${pid}'`);
    afterContainerProcess = pids.has(Number(pid));
    if (afterContainerProcess) processes.push(fields);
  }
  return { Titles: titles, Processes: processes };
}
