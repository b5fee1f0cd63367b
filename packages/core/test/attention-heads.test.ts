/**
 * scaledDotProductAttention with `heads` on tokens-major tensors ([B, L, heads·D], as the projections write them):
 * values and gradients against finite differences of the float64 reference, which takes heads split off as
 * [B·heads, L, D]; the layouts are converted here in float64.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import * as K from "@textcraftor/webgpu-kernels";
import * as T from "../src/index.ts";
import { gradcheck, rand } from "./gradcheck.ts";

beforeAll(async () => {
  await T.initRuntime();
});

/** [B, L, heads·n] ↔ [B·heads, L, n] (`merge` goes back). */
function splitHeads(x: ArrayLike<number>, heads: number, length: number, n: number, merge = false): Float64Array {
  const y = new Float64Array(x.length),
    batch = x.length / (heads * length * n);
  for (let b = 0; b < batch; b++)
    for (let l = 0; l < length; l++)
      for (let h = 0; h < heads; h++)
        for (let j = 0; j < n; j++) {
          const tokens = ((b * length + l) * heads + h) * n + j,
            split = ((b * heads + h) * length + l) * n + j;
          if (merge) y[tokens] = x[split]!;
          else y[split] = x[tokens]!;
        }
  return y;
}

interface Case {
  batch: number;
  heads: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  causal?: boolean;
  scale?: number;
}

async function check(c: Case, amplitude = 1) {
  const { batch, heads, lq, lk, d, dv } = c;
  const reference = ([q, k, v]: Float64Array[]) => {
    const o = { bh: batch * heads, lq, lk, d, dv, causal: c.causal, scale: c.scale };
    const out = K.attentionCpu(
      splitHeads(q!, heads, lq, d),
      splitHeads(k!, heads, lk, d),
      splitHeads(v!, heads, lk, dv),
      o,
    ).out;
    return splitHeads(out, heads, lq, dv, true);
  };
  const errors = await gradcheck(
    ([q, k, v]) => T.scaledDotProductAttention(q!, k!, v!, { heads, causal: c.causal, scale: c.scale }),
    reference,
    [
      { data: rand(batch * lq * heads * d, 1, amplitude), shape: [batch, lq, heads * d] },
      { data: rand(batch * lk * heads * d, 2, amplitude), shape: [batch, lk, heads * d] },
      { data: rand(batch * lk * heads * dv, 3), shape: [batch, lk, heads * dv] },
    ],
  );
  for (const e of errors) expect(e).toBeLessThan(2e-3);
}

describe("multi-head attention on tokens-major tensors matches finite differences", () => {
  test("3 heads, cross-attention lengths, d ≠ dv", () => check({ batch: 2, heads: 3, lq: 5, lk: 4, d: 4, dv: 3 }));
  test("2 heads, causal, explicit scale", () =>
    check({ batch: 2, heads: 2, lq: 5, lk: 5, d: 5, dv: 4, causal: true, scale: 0.3 }));
  test("1 head", () => check({ batch: 2, heads: 1, lq: 3, lk: 6, d: 4, dv: 4 }));
  test("2 heads wider than the fused kernels' 160 (unfused, split and merged)", () =>
    check({ batch: 1, heads: 2, lq: 3, lk: 2, d: 164, dv: 161 }, 0.3));
});

test("the output is [B, Lq, heads·Dv] and bad shapes are refused with what to give", () => {
  T.noGrad(() => {
    const q = T.Tensor.zeros([2, 5, 12]),
      k = T.Tensor.zeros([2, 7, 12]),
      v = T.Tensor.zeros([2, 7, 9]);
    expect(T.scaledDotProductAttention(q, k, v, { heads: 3 }).shape).toEqual([2, 5, 9]);
    expect(() => T.scaledDotProductAttention(q, k, v, { heads: 5 })).toThrow(
      "heads=5 must be a positive integer dividing",
    );
    expect(() => T.scaledDotProductAttention(q.reshape([2, 5, 3, 4]), k, v, { heads: 3 })).toThrow(
      "with heads, q, k and v are [batch, tokens, heads·head_dim]",
    );
    expect(() => T.scaledDotProductAttention(q, T.Tensor.zeros([2, 6, 12]), v, { heads: 3 })).toThrow("do not agree");
  });
});
