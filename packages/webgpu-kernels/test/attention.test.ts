import { describe, expect, test } from "bun:test";
import {
  attention,
  attentionBackward,
  attentionBackwardCpu,
  attentionBlocks,
  attentionCpu,
  attentionWorkgroupBytes,
  type AttentionOptions,
} from "../src/attention.ts";
import { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

const label = (o: AttentionOptions) =>
  `bh${o.bh} lq${o.lq} lk${o.lk} d${o.d} dv${o.dv}${o.causal ? " causal" : ""}${o.scale ? ` scale${o.scale}` : ""}` +
  (o.layout ? ` ${o.layout} heads${o.heads}` : "");

// SD 1.5's head dims (40, 80, 160 at 8 heads; 64 elsewhere), CLIP's causal text self-attention (77), UNet cross-attention
// (64 latent tokens against 77 text tokens), awkward lengths, and head dims that are not multiples of 4.
const CASES: AttentionOptions[] = [
  { bh: 2, lq: 77, lk: 77, d: 40, dv: 40 },
  { bh: 2, lq: 77, lk: 77, d: 64, dv: 64, causal: true },
  { bh: 2, lq: 64, lk: 77, d: 80, dv: 80 },
  { bh: 1, lq: 129, lk: 129, d: 40, dv: 40, causal: true },
  { bh: 2, lq: 16, lk: 16, d: 160, dv: 160, causal: true },
  { bh: 1, lq: 24, lk: 9, d: 160, dv: 160 },
  { bh: 3, lq: 1, lk: 1, d: 40, dv: 40 },
  { bh: 2, lq: 3, lk: 3, d: 64, dv: 64, causal: true },
  { bh: 1, lq: 3, lk: 129, d: 80, dv: 80, scale: 0.3 },
  { bh: 1, lq: 129, lk: 3, d: 40, dv: 40 },
  { bh: 2, lq: 33, lk: 33, d: 33, dv: 21, causal: true },
];

/**
 * [B·H, L, n] → [B, L, H·n] (`back`: the inverse), as the kernels read a "tokensMajor" tensor; the CPU references take
 * the former.
 */
function tokensMajor(x: ArrayLike<number>, heads: number, length: number, n: number, back = false): Float32Array {
  const y = new Float32Array(x.length),
    batch = x.length / (heads * length * n);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let l = 0; l < length; l++)
        for (let j = 0; j < n; j++) {
          const headsIndex = ((b * heads + h) * length + l) * n + j,
            tokensIndex = ((b * length + l) * heads + h) * n + j;
          if (back) y[headsIndex] = x[tokensIndex]!;
          else y[tokensIndex] = x[headsIndex]!;
        }
  return y;
}

/** Runs forward and backward on `r` (in `o.layout`) and compares with the float64 references. */
async function checkAgainstCpu(r: KernelRunner, o: AttentionOptions) {
  const { bh, lq, lk, d, dv } = o;
  const heads = o.heads ?? 1,
    reference = { ...o, layout: undefined, heads: undefined };
  const toKernel = (x: Float32Array, length: number, n: number) =>
    upload(r, o.layout === "tokensMajor" ? tokensMajor(x, heads, length, n) : x);
  const fromKernel = async (buf: GPUBuffer, length: number, n: number) => {
    const x = await download(r, buf, bh * length * n);
    return o.layout === "tokensMajor" ? tokensMajor(x, heads, length, n, true) : x;
  };
  const q = random(bh * lq * d, 1, 2),
    k = random(bh * lk * d, 2, 2),
    v = random(bh * lk * dv, 3),
    gradOut = random(bh * lq * dv, 4);
  const [qb, kb, vb] = [toKernel(q, lq, d), toKernel(k, lk, d), toKernel(v, lk, dv)];
  const out = empty(r, bh * lq * dv),
    lse = empty(r, bh * lq);
  attention(r, qb, kb, vb, out, lse, o);
  const ref = attentionCpu(q, k, v, reference);
  expectClose(await fromKernel(out, lq, dv), ref.out, 1e-5, "out");
  expectClose(await download(r, lse, bh * lq), ref.lse, 1e-5, "lse");

  const gradQ = empty(r, bh * lq * d),
    gradK = empty(r, bh * lk * d),
    gradV = empty(r, bh * lk * dv);
  attentionBackward(r, qb, kb, vb, out, toKernel(gradOut, lq, dv), lse, gradQ, gradK, gradV, {
    ...o,
    delta: empty(r, bh * lq),
  });
  const grads = attentionBackwardCpu(q, k, v, gradOut, reference);
  const [gotQ, gotK] = [await fromKernel(gradQ, lq, d), await fromKernel(gradK, lk, d)];
  if (lk === 1) {
    // Softmax over a single key is constant, so gradQ and gradK vanish: only rounding is left to compare.
    for (const x of [...gotQ, ...gotK]) expect(Math.abs(x)).toBeLessThan(1e-6);
  } else {
    expectClose(gotQ, grads.gradQ, 1e-4, "gradQ");
    expectClose(gotK, grads.gradK, 1e-4, "gradK");
  }
  expectClose(await fromKernel(gradV, lk, dv), grads.gradV, 1e-4, "gradV");
}

/**
 * Tokens-major tensors ([B, L, H·d], as the projections write them): 1, 3 and 8 heads; CLIP's 77 causal tokens,
 * ViT's 257, single tokens, cross-attention lengths; heads of 40 and 64, and 33/21 (not multiples of 4, d ≠ dv).
 */
const TOKENS_MAJOR: AttentionOptions[] = [
  { bh: 6, heads: 3, lq: 77, lk: 77, d: 64, dv: 64, causal: true },
  { bh: 8, heads: 8, lq: 257, lk: 257, d: 40, dv: 40 },
  { bh: 16, heads: 8, lq: 257, lk: 77, d: 40, dv: 40 },
  { bh: 3, heads: 3, lq: 1, lk: 1, d: 40, dv: 40 },
  { bh: 2, heads: 1, lq: 77, lk: 77, d: 64, dv: 64 },
  { bh: 2, heads: 1, lq: 1, lk: 1, d: 40, dv: 40, causal: true },
  { bh: 3, heads: 3, lq: 1, lk: 77, d: 64, dv: 64 },
  { bh: 6, heads: 3, lq: 257, lk: 257, d: 40, dv: 40, causal: true },
  { bh: 16, heads: 8, lq: 3, lk: 77, d: 64, dv: 64, causal: true },
  { bh: 6, heads: 3, lq: 33, lk: 20, d: 33, dv: 21, causal: true },
].map((o) => ({ ...o, layout: "tokensMajor" as const }));

/**
 * The tiled kernels take lavapipe's LLVM 10–100 s to compile per specialisation (cold cache), so CI checks one
 * case per distinct head-dim/causal pipeline; the row-wise variant that CPU drivers use runs every case.
 */
const TILED = [CASES[0]!, CASES[1]!, CASES[2]!, CASES[4]!, CASES[6]!, CASES[8]!];
/** Tokens-major cases on the pipelines above (d 40, and d 64 causal): the layout is uniforms, not a new pipeline. */
const TILED_TOKENS_MAJOR = [TOKENS_MAJOR[0]!, TOKENS_MAJOR[1]!, TOKENS_MAJOR[2]!, TOKENS_MAJOR[3]!, TOKENS_MAJOR[8]!];

describe("tiled (GPU) attention matches its float64 CPU reference", () => {
  for (const o of [...TILED, ...TILED_TOKENS_MAJOR]) test(label(o), async () => checkAgainstCpu(await getRunner(), o));

  test("with the smaller blocks of a 16 KiB workgroup-memory budget", async () => {
    const r = await getRunner();
    const small = new KernelRunner(r.device, { ...r.limits, maxComputeWorkgroupStorageSize: 16384 }, r.features);
    await checkAgainstCpu(small, { bh: 1, lq: 70, lk: 45, d: 40, dv: 40, causal: true });
  });
});

describe("row-wise (CPU driver) attention matches its float64 CPU reference", () => {
  const rowwise = async () => {
    const r = await getRunner();
    return new KernelRunner(r.device, r.limits, r.features, { cpu: true });
  };
  for (const o of [...CASES, ...TOKENS_MAJOR]) test(label(o), async () => checkAgainstCpu(await rowwise(), o));
});

test("a head count that does not divide bh is refused, naming both", async () => {
  const r = await getRunner(),
    b = empty(r, 64);
  expect(() =>
    attention(r, b, b, b, b, b, { bh: 4, heads: 3, lq: 1, lk: 1, d: 4, dv: 4, layout: "tokensMajor" }),
  ).toThrow("heads=3 must be a positive integer dividing bh=4");
});

test("attentionBackwardCpu matches central finite differences of attentionCpu (float64)", () => {
  for (const causal of [false, true]) {
    const o = { bh: 2, lq: 3, lk: 4, d: 5, dv: 3, causal };
    const q = Float64Array.from(random(2 * 3 * 5, 5)),
      k = Float64Array.from(random(2 * 4 * 5, 6)),
      v = Float64Array.from(random(2 * 4 * 3, 7));
    const gradOut = Float64Array.from(random(2 * 3 * 3, 8));
    // The loss Σ out·gradOut has gradient gradOut with respect to out.
    const loss = () => attentionCpu(q, k, v, o).out.reduce((s, x, i) => s + x * gradOut[i]!, 0);
    const grads = attentionBackwardCpu(q, k, v, gradOut, o);
    for (const [x, g] of [
      [q, grads.gradQ],
      [k, grads.gradK],
      [v, grads.gradV],
    ] as const) {
      const numeric = x.map((xi, i) => {
        const h = 1e-6;
        x[i] = xi + h;
        const up = loss();
        x[i] = xi - h;
        const down = loss();
        x[i] = xi;
        return (up - down) / (2 * h);
      });
      expectClose(g, numeric, 1e-7, causal ? "causal gradient" : "gradient");
    }
  }
});

test("4096-token self-attention, 8 heads of 40: sampled rows match the CPU reference", async () => {
  const r = await getRunner();
  const o = { bh: 8, lq: 4096, lk: 4096, d: 40, dv: 40 };
  const q = random(8 * 4096 * 40, 11, 3),
    k = random(8 * 4096 * 40, 12, 3),
    v = random(8 * 4096 * 40, 13);
  const out = empty(r, 8 * 4096 * 40),
    lse = empty(r, 8 * 4096);
  attention(r, upload(r, q), upload(r, k), upload(r, v), out, lse, o);
  const [got, gotLse] = [await download(r, out, 8 * 4096 * 40), await download(r, lse, 8 * 4096)];
  for (let h = 0; h < 8; h++) {
    const kh = k.subarray(h * 4096 * 40, (h + 1) * 4096 * 40),
      vh = v.subarray(h * 4096 * 40, (h + 1) * 4096 * 40);
    for (const i of [0, 63, 64, 1000 + 411 * h, 4095]) {
      const row = (h * 4096 + i) * 40;
      const ref = attentionCpu(q.subarray(row, row + 40), kh, vh, { bh: 1, lq: 1, lk: 4096, d: 40, dv: 40 });
      expectClose(got.subarray(row, row + 40), ref.out, 1e-5, `head ${h} row ${i}`);
      expectClose([gotLse[h * 4096 + i]!], ref.lse, 1e-5, `lse of head ${h} row ${i}`);
    }
  }
});

test("block sizes fit the workgroup-memory limit for SD's head dims, and an impossible limit is refused", () => {
  for (const limit of [16384, 32768, 49152]) {
    for (const d of [40, 64, 80, 160]) {
      for (const kernel of ["forward", "gradQ", "gradKV"] as const) {
        const b = attentionBlocks(kernel, d, d, {
          maxComputeWorkgroupStorageSize: limit,
          maxComputeInvocationsPerWorkgroup: 256,
        });
        expect(attentionWorkgroupBytes[kernel]({ ...b, d, dv: d })).toBeLessThanOrEqual(limit);
      }
    }
  }
  expect(() => attentionBlocks("gradKV", 160, 160, { maxComputeWorkgroupStorageSize: 4096 })).toThrow(
    "workgroup memory",
  );
});
