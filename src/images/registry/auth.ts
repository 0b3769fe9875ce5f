/** One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (RFC 7235 auth-params, quoted or token values). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  const challenges: Challenge[] = [];
  for (const value of values) {
    const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(?=\s|$|,|[A-Za-z0-9])/y;
    let i = 0;
    while (i < value.length) {
      re.lastIndex = i;
      const scheme = re.exec(value);
      if (!scheme?.[1]) break;
      i = re.lastIndex;
      const params: Record<string, string> = {};
      const param = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
      for (;;) {
        param.lastIndex = i;
        const m = param.exec(value);
        if (!m?.[1]) break;
        params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
        i = param.lastIndex;
      }
      const name = scheme[1].toLowerCase();
      if (name === "basic" || name === "bearer") challenges.push({ scheme: name, params });
      while (i < value.length && /[\s,]/.test(value[i] ?? "")) i++;
    }
  }
  return challenges;
}
