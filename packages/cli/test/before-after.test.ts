/** The before/after prompts come from the evaluation: spread over the ranking of paired gains, best first. */
import { expect, test } from "bun:test";
import { spreadByGain } from "../src/before-after.ts";

const stats = (scores: number[]) => ({ mean: 0, std: 0, n: scores.length, scores });

test("gains are weighted, summed over seeds (seed-major scores), ranked, and sampled evenly from best to worst", () => {
  // 5 prompts × 2 seeds; reward a's gain per prompt: 0.1, 0.5, -0.2, 0.3, 0; reward b adds 1 to prompt 4 only (weight 0.5).
  const baseA = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    tunedA = [0.1, 0.5, -0.2, 0.3, 0, 1.1, 1.5, 0.8, 1.3, 1];
  const baseB = Array(10).fill(0),
    tunedB = [0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const base = new Map([
      ["a", stats(baseA)],
      ["b", stats(baseB)],
    ]),
    tuned = new Map([
      ["a", stats(tunedA)],
      ["b", stats(tunedB)],
    ]);
  // Gains: 0.1, 0.5, -0.2, 0.3, 0.5 (ties keep prompt order) → ranking 1, 4, 3, 0, 2.
  expect(spreadByGain(5, base, tuned, { a: 1, b: 0.5 }, 5)).toEqual([1, 4, 3, 0, 2]);
  expect(spreadByGain(5, base, tuned, { a: 1, b: 0.5 }, 3)).toEqual([1, 3, 2]);
  expect(spreadByGain(5, base, tuned, { a: 1 }, 2)).toEqual([1, 2]);
});
