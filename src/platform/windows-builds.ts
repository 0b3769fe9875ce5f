/**
 * Windows builds that change what containers can do. Names are the release names Docker and hcsshim
 * use (`osversion` in hcsshim), so a build number in a log can be matched to a constant here.
 */
export const WindowsBuild = {
  /** Windows Server 2016 / 1607: the first build with containers (HCS schema 1.0). */
  RS1: 14393,
  RS2: 15063,
  RS3: 16299,
  RS4: 17134,
  /** Windows Server 2019 / 1809: HCS schema 2.1 and the v2 compute APIs. */
  RS5: 17763,
  V19H1: 18362,
  V19H2: 18363,
  V20H1: 19041,
  V20H2: 19042,
  V21H1: 19043,
  V21H2: 19044,
  /** Windows Server 2022. */
  LTSC2022: 20348,
  /** Windows 11 21H2. */
  WIN11: 22000,
  V22H2: 22621,
  /** Windows Server 23H2 (annual channel). */
  V23H2: 25398,
  /** Windows Server 2025. */
  LTSC2025: 26100,
} as const;

export type WindowsBuildName = keyof typeof WindowsBuild;

export interface HcsSchemaVersion {
  major: number;
  minor: number;
}

/** HCS speaks schema 1.0 before RS5 and 2.1 from RS5 on (hcsshim `osversion.RS5` gate). */
export function hcsSchemaVersion(build: number): HcsSchemaVersion {
  return build >= WindowsBuild.RS5 ? { major: 2, minor: 1 } : { major: 1, minor: 0 };
}

/** The newest named release at or below `build` (e.g. 17763 → "RS5", 19045 → "V21H2"), or undefined below RS1. */
export function windowsBuildName(build: number): WindowsBuildName | undefined {
  let best: WindowsBuildName | undefined;
  for (const [name, number] of Object.entries(WindowsBuild) as [WindowsBuildName, number][]) {
    if (number <= build && (best === undefined || number > WindowsBuild[best])) best = name;
  }
  return best;
}

/** The build from `os.release()` on Windows ("10.0.17763" → 17763); undefined when it has no such part. */
export function parseWindowsBuild(release: string): number | undefined {
  const match = /^\s*\d+\.\d+\.(\d+)/.exec(release);
  if (!match) return undefined;
  const build = Number(match[1]);
  return Number.isSafeInteger(build) && build > 0 ? build : undefined;
}
