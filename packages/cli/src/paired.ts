/**
 * Base vs tuned on the same prompts and seeds: per reward, both means and the paired difference with its
 * standard error (the spread of the per-image differences / √n), which is what says whether a change is real.
 */
export interface Scores {
  scores: readonly number[];
}

export interface PairedRow {
  reward: string;
  n: number;
  base: number;
  tuned: number;
  diff: number;
  se: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Rows for the rewards both sides scored image by image (in the same order); single-valued metrics are left out. */
export function pairedComparison(base: ReadonlyMap<string, Scores>, tuned: ReadonlyMap<string, Scores>): PairedRow[] {
  const rows: PairedRow[] = [];
  for (const [reward, b] of base) {
    const t = tuned.get(reward);
    if (!t || t.scores.length !== b.scores.length || b.scores.length < 2) continue;
    const d = b.scores.map((x, i) => t.scores[i]! - x);
    const diff = mean(d);
    const sd = Math.sqrt(d.reduce((a, x) => a + (x - diff) ** 2, 0) / (d.length - 1));
    rows.push({ reward, n: d.length, base: mean(b.scores), tuned: mean(t.scores), diff, se: sd / Math.sqrt(d.length) });
  }
  return rows;
}

/** What a difference of `diff` ± `se` says, in words a first run can be trusted with. */
export function verdict({ diff, se }: PairedRow): string {
  if (se === 0) return diff === 0 ? "no change" : diff > 0 ? "up" : "down";
  const z = Math.abs(diff) / se;
  return z < 2 ? "within noise (|diff| < 2 SE)" : `${diff > 0 ? "up" : "down"}, ${z.toFixed(1)} SE`;
}

const signed = (x: number, digits = 4) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
const percent = (r: PairedRow) => (r.base === 0 ? "" : ` (${signed((100 * r.diff) / Math.abs(r.base), 1)} %)`);

/** The table printed after `train` and by `eval --base`. */
export function pairedLines(rows: readonly PairedRow[], prompts: number, seeds: number): string[] {
  const n = rows[0]?.n ?? prompts * seeds;
  return [
    `base vs tuned on the same ${prompts} held-out prompt(s) × ${seeds} seed(s) (${n} pairs); ± is the paired standard error:`,
    `  ${"reward".padEnd(14)} ${"base".padStart(10)} ${"tuned".padStart(10)}   difference`,
    ...rows.map(
      (r) =>
        `  ${r.reward.padEnd(14)} ${r.base.toFixed(4).padStart(10)} ${r.tuned.toFixed(4).padStart(10)}   ${signed(r.diff)} ± ${r.se.toFixed(4)}${percent(r)}: ${verdict(r)}`,
    ),
  ];
}
