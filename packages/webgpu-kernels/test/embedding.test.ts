import { describe, expect, test } from "bun:test";
import {
  embeddingGather,
  embeddingGatherCpu,
  embeddingScatterAdd,
  embeddingScatterAddCpu,
  embeddingScatterPlan,
} from "../src/embedding.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

/** Deterministic ids in [0, vocab), with many repeats when vocab is small. */
const someIds = (n: number, vocab: number, seed: number) =>
  Uint32Array.from(random(n, seed), (v) => Math.floor(((v + 1) / 2) * vocab) % vocab);

describe("embedding gather", () => {
  test("matches the CPU reference on awkward sizes", async () => {
    const r = await getRunner();
    for (const [rows, dim, vocab] of [
      [1, 1, 1],
      [3, 5, 7],
      [77, 8, 49408],
      [129, 3, 50],
      [4097, 2, 300],
    ] as const) {
      const table = random(vocab * dim, rows + dim),
        ids = someIds(rows, vocab, rows);
      const out = empty(r, rows * dim);
      embeddingGather(r, upload(r, table), upload(r, ids), out, { rows, dim, vocab });
      expect(await download(r, out, rows * dim)).toEqual(embeddingGatherCpu(table, ids, dim, vocab));
    }
  });

  test("out-of-range ids are clamped to the last row instead of reading past the table", async () => {
    const r = await getRunner();
    const table = random(4 * 3, 1),
      ids = Uint32Array.from([0, 4, 0xffffffff]);
    const out = empty(r, 9);
    embeddingGather(r, upload(r, table), upload(r, ids), out, { rows: 3, dim: 3, vocab: 4 });
    const got = await download(r, out, 9);
    expect(Array.from(got.subarray(3))).toEqual([...table.subarray(9), ...table.subarray(9)]);
  });
});

describe("embedding scatter-add", () => {
  test("accumulates repeated ids into an existing gradient, deterministically", async () => {
    const r = await getRunner();
    for (const [rows, dim, vocab] of [
      [1, 1, 1],
      [3, 5, 2],
      [77, 8, 49408],
      [129, 3, 7],
      [4097, 2, 300],
    ] as const) {
      const ids = someIds(rows, vocab, rows + 1);
      if (rows === 77) ids.fill(49407, 10); // CLIP's padding: one id repeated to the end
      const gradOut = random(rows * dim, 2),
        gradTable = random(vocab * dim, 3);
      const plan = embeddingScatterPlan(ids, vocab);
      const expected = embeddingScatterAddCpu(gradOut, ids, gradTable, dim);
      const results = [];
      for (let run = 0; run < 2; run++) {
        const table = upload(r, gradTable);
        embeddingScatterAdd(r, upload(r, gradOut), upload(r, plan.data), table, {
          rows,
          dim,
          vocab,
          groups: plan.groups,
        });
        results.push(await download(r, table, vocab * dim));
      }
      expectClose(results[0]!, expected, 1e-6, `scatter-add ${rows}×${dim} (vocab ${vocab})`);
      expect(results[1]).toEqual(results[0]!);
    }
  });

  test("the plan groups positions by id in position order", () => {
    const plan = embeddingScatterPlan([5, 2, 5, 5, 2], 6);
    expect(plan.groups).toBe(2);
    expect(Array.from(plan.data)).toEqual([2, 5, /* starts */ 0, 2, 5, /* order */ 1, 4, 0, 2, 3]);
  });

  test("an id outside the vocabulary is refused on the CPU", () => {
    expect(() => embeddingScatterPlan([1, 9], 4)).toThrow("id 9 at position 1");
  });
});
