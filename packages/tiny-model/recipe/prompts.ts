/** Held-in prompts (TextCraftor trains on them) and held-out ones (its evaluation): every 8th caption is held out. */
export function splitPrompts(captions: readonly string[]): { train: string[]; heldOut: string[] } {
  return { train: captions.filter((_, i) => i % 8 !== 3), heldOut: captions.filter((_, i) => i % 8 === 3) };
}
