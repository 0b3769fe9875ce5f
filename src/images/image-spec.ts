import { InvalidArgumentError, NotFoundError } from "../libcontainerd/types/errors.js";
import type { ImageConfig } from "./media-types.js";

/** What a container's process takes from an image config, with the caller's overrides applied. */
export interface ImageProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
}

export interface ImageProcessOverrides {
  /** Replaces the image's Cmd (the Entrypoint stays), as `docker run IMAGE ARGS…`. */
  args?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless `args` is given). */
  entrypoint?: string[];
  /** Added to (and overriding by name) the image's Env. */
  env?: string[];
  cwd?: string;
  /** `name`, `uid`, `name:group`, `uid:gid`; default the image's User. */
  user?: string;
}

/** /etc/passwd and /etc/group of the image, when the user is named (null: the file is absent). */
export interface AccountFiles {
  passwd: string | null;
  group: string | null;
}

interface Account {
  name: string;
  id: number;
  gid?: number;
  members: string[];
}

function parseAccounts(text: string | null, kind: "passwd" | "group"): Account[] {
  if (!text) return [];
  const out: Account[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const id = Number(f[2]);
    if (!f[0] || !Number.isInteger(id)) continue;
    if (kind === "passwd") out.push({ name: f[0], id, gid: Number(f[3]), members: [] });
    else out.push({ name: f[0], id, members: (f[3] ?? "").split(",").filter(Boolean) });
  }
  return out;
}

/** Whether resolving `user` needs the image's account files. */
export function userNeedsAccounts(user: string | undefined): boolean {
  if (!user) return false;
  const [u = "", g] = user.split(":", 2);
  return !/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g)) || g === undefined;
}

/**
 * `User` as Docker resolves it (moby's user.GetExecUser): a name or uid, optionally `:group` or
 * `:gid`; a bare user gets its primary group from passwd and its supplementary groups from group.
 */
export function resolveUser(
  user: string | undefined,
  files: AccountFiles,
): { uid: number; gid: number; additionalGids: number[] } {
  if (!user) return { uid: 0, gid: 0, additionalGids: [] };
  const [userPart = "", groupPart] = user.split(":", 2);
  const users = parseAccounts(files.passwd, "passwd");
  const groups = parseAccounts(files.group, "group");
  let uid: number;
  let primary: number | undefined;
  let name: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const entry = users.find((u) => u.id === uid);
    primary = entry?.gid;
    name = entry?.name;
  } else {
    const entry = users.find((u) => u.name === userPart);
    if (!entry) {
      throw new NotFoundError(
        `unable to find user ${userPart}: no matching entries in the image's /etc/passwd${files.passwd === null ? " (it has none)" : ""}`,
      );
    }
    uid = entry.id;
    primary = entry.gid;
    name = entry.name;
  }
  let gid: number;
  if (groupPart === undefined || groupPart === "")
    gid = primary !== undefined && Number.isInteger(primary) ? primary : 0;
  else if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
  else {
    const entry = groups.find((g) => g.name === groupPart);
    if (!entry)
      throw new NotFoundError(
        `unable to find group ${groupPart}: no matching entries in the image's /etc/group`,
      );
    gid = entry.id;
  }
  const additionalGids =
    groupPart === undefined && name !== undefined
      ? groups.filter((g) => g.members.includes(name as string) && g.id !== gid).map((g) => g.id)
      : [];
  return { uid, gid, additionalGids };
}

/** moby's user package's range for ids (minID, maxID). */
const MAX_ID = 2 ** 31 - 1;

/**
 * `--group-add` as moby's user.GetAdditionalGroups reads it against a /etc/group (null: none): each the
 * first group whose name or id it is and whose id is not had yet, else a number as it is; a name no
 * group has is an error, in moby's words.
 */
export function additionalGroups(wanted: readonly string[], group: string | null): number[] {
  const groups = parseAccounts(group, "group");
  const gids = new Set<number>();
  for (const entry of wanted) {
    const found = groups.find((g) => (g.name === entry || String(g.id) === entry) && !gids.has(g.id));
    if (found) {
      gids.add(found.id);
      continue;
    }
    if (!/^\d+$/.test(entry))
      throw new NotFoundError(`Unable to find group ${entry}: no matching entries in group file`);
    const gid = Number(entry);
    if (gid > MAX_ID) throw new InvalidArgumentError(`uids and gids must be in range 0-${MAX_ID}`);
    gids.add(gid);
  }
  return [...gids];
}

function envName(entry: string): string {
  const eq = entry.indexOf("=");
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Image Env with overrides: a variable named again replaces the image's. */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const names = new Set(overrides.map(envName));
  return [...base.filter((e) => !names.has(envName(e))), ...overrides];
}

/** Entrypoint + Cmd (or their overrides), Env, WorkingDir and User from an image config. */
export function imageProcess(
  config: ImageConfig,
  overrides: ImageProcessOverrides,
  files: AccountFiles,
): ImageProcess {
  const c = config.config ?? {};
  const entrypoint = overrides.entrypoint ?? c.Entrypoint ?? [];
  const cmd = overrides.args ?? (overrides.entrypoint ? [] : (c.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0)
    throw new InvalidArgumentError("the image has no Entrypoint or Cmd, and no command was given");
  return {
    args,
    env: mergeEnv(c.Env ?? [], overrides.env ?? []),
    cwd: overrides.cwd ?? (c.WorkingDir || "/"),
    user: resolveUser(overrides.user ?? c.User, files),
  };
}
