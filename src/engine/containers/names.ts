import { randomBytes } from "node:crypto";

const ADJECTIVES = ["brave", "calm", "eager", "gentle", "happy", "keen", "lucid", "nimble", "quiet", "swift"];
const NOUNS = [
  "bohr",
  "curie",
  "darwin",
  "euler",
  "gauss",
  "hopper",
  "lovelace",
  "noether",
  "pascal",
  "turing",
];

/**
 * A generated name no container has, as dockerd's generateAndReserveName: candidates are drawn until
 * one is free. 200 `docker run` at once drew the same candidate twice in CI (a 1-in-300 birthday
 * collision), and the second create failed with a name conflict its caller never asked for.
 */
export function unusedDockerName(
  taken: (name: string) => boolean,
  random: (size: number) => Uint8Array = randomBytes,
): string {
  for (;;) {
    const [a = 0, b = 0, c = 0, d = 0] = random(4);
    const hex = ((c << 8) | d).toString(16).padStart(4, "0");
    const name = `/${ADJECTIVES[a % ADJECTIVES.length]}_${NOUNS[b % NOUNS.length]}_${hex}`;
    if (!taken(name)) return name;
  }
}
