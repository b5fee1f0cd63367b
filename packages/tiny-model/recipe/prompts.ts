import { Rng } from "@textcraftor/core";

/**
 * Held-in prompts (TextCraftor trains on them) and held-out ones (its evaluation): every 8th caption is held
 * out. The held-out list is shuffled (seeded), so that its first N prompts, which evaluations and sample
 * grids take, span the categories instead of being the first smileys in Unicode's order.
 */
export function splitPrompts(captions: readonly string[], seed = 0): { train: string[]; heldOut: string[] } {
  const heldOut = captions.filter((_, i) => i % 8 === 3);
  const rng = new Rng(seed);
  for (let i = heldOut.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [heldOut[i], heldOut[j]] = [heldOut[j]!, heldOut[i]!];
  }
  return { train: captions.filter((_, i) => i % 8 !== 3), heldOut };
}
