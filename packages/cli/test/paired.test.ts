/** Paired base-vs-tuned statistics: means, the difference's standard error, and the words for it. */
import { describe, expect, test } from "bun:test";
import { pairedComparison, pairedLines, verdict } from "../src/paired.ts";

describe("paired comparison", () => {
  test("difference and standard error over the same images", () => {
    const base = new Map([
      ["aes", { scores: [1, 2, 3, 4] }],
      ["diversity", { scores: [0.3] }],
    ]);
    const tuned = new Map([
      ["aes", { scores: [1.5, 2.4, 3.6, 4.5] }],
      ["diversity", { scores: [0.2] }],
    ]);
    const [row, ...rest] = pairedComparison(base, tuned);
    expect(rest).toEqual([]);
    expect(row!.reward).toBe("aes");
    expect(row!.base).toBeCloseTo(2.5, 12);
    expect(row!.tuned).toBeCloseTo(3, 12);
    expect(row!.diff).toBeCloseTo(0.5, 12);
    // Differences 0.5, 0.4, 0.6, 0.5: sd = √(0.02/3), SE = sd / 2.
    expect(row!.se).toBeCloseTo(Math.sqrt(0.02 / 3) / 2, 12);
    expect(verdict(row!)).toBe(`up, ${(0.5 / row!.se).toFixed(1)} SE`);
    expect(verdict({ ...row!, diff: 0.01 })).toBe("within noise (|diff| < 2 SE)");
  });

  test("the printed table", () => {
    const lines = pairedLines([{ reward: "colorfulness", n: 64, base: 0.2, tuned: 0.25, diff: 0.05, se: 0.01 }], 32, 2);
    expect(lines).toEqual([
      "base vs tuned on the same 32 held-out prompt(s) × 2 seed(s) (64 pairs); ± is the paired standard error:",
      "  reward               base      tuned   difference",
      "  colorfulness       0.2000     0.2500   +0.0500 ± 0.0100 (+25.0 %): up, 5.0 SE",
    ]);
  });
});
