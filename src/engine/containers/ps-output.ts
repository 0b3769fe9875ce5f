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

/**
 * moby's validatePSArgs: a column other than pid titled PID (`-o ppid=PID`) would have the rows filtered by
 * its values, and ps (run without -q when -q cannot go with the other options) lists the host's processes.
 */
export function forgedPidTitle(psArgs: string): string | undefined {
  for (const [, key, title] of psArgs.matchAll(/(?:^|\s+)(\S*)=\s*(PID\S*)/g))
    if (key !== "pid") return `specifying "${key ?? ""}=${title ?? ""}" is not allowed`;
  return undefined;
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
    const fields = rowFields(row, titles.length, starts, pidIndex);
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

/**
 * A row's values. As moby's parsePSOutput, split at runs of spaces when that gives one word a title. A row
 * with more words has a value with spaces (the command, lstart's date, args before another column): it is
 * cut at the columns' starts, unless a cut falls inside a value, leaves one empty or leaves no pid in the PID
 * column (a value wider than its column, VSZ of a gigabyte and more or RSS of 100 MB and more under `aux`,
 * pushes the rest of its row off the columns the other rows share); then split as moby does, what overhangs
 * the titles joined into the last column.
 */
function rowFields(row: string, columns: number, starts: readonly number[], pidIndex: number): string[] {
  const words = row.split(/[\t\n\f\r ]+/).filter(Boolean);
  const byWords = [...words.slice(0, columns - 1), words.slice(columns - 1).join(" ")];
  if (words.length <= columns) return byWords;
  const fields: string[] = [];
  for (const [column, start] of starts.entries()) {
    const end = starts[column + 1] ?? row.length;
    if (end < row.length && !isSpace(row[end - 1]) && !isSpace(row[end])) return byWords;
    const field = row.slice(start, end).trim();
    if (field === "") return byWords;
    fields.push(field);
  }
  return /^(\d+|-)$/.test(fields[pidIndex] ?? "") ? fields : byWords;
}
