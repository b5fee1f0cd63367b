import { describe, test } from "bun:test";
import {
  groupNorm,
  groupNormBackward,
  groupNormBackwardCpu,
  groupNormCpu,
  layerNorm,
  layerNormBackward,
  layerNormBackwardCpu,
  layerNormCpu,
  type GroupNormOptions,
  type NormGradients,
} from "../src/norm.ts";
import type { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, random, reductionForms, upload } from "./helpers.ts";

/** Loops over many sizes on lavapipe (2 CPU cores, shared) need more than bun's 5 s default. */

const SIZES = [1, 3, 77, 129, 4097];
/** [channels, groups]: one group, a few wide groups, SD's 32 groups of 1 or 2 channels. */
const LAYOUTS = [
  [32, 1],
  [64, 2],
  [64, 32],
  [32, 32],
] as const;

interface Affine {
  weight: boolean;
  bias: boolean;
}
const AFFINE: Affine = { weight: true, bias: true };

/**
 * The mean's error is absolute, on the scale of the data (it may sit near 0, where a relative error says
 * nothing), so it is held to 1e-6 of the largest |x| rather than to its own size.
 */
function expectMean(actual: Float32Array, expected: Float64Array, x: Float32Array, what: string) {
  const scale = x.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const worst = expected.reduce((a, v, i) => Math.max(a, Math.abs(actual[i]! - v)), 0);
  if (!(worst <= 1e-6 * scale))
    throw new Error(`${what}: mean off by ${worst.toExponential(3)} for data of scale ${scale}`);
}

/**
 * Runs the GPU forward (and backward unless `forwardOnly`) on seeded data and checks every output against the
 * CPU references. `offset` is added to x: the backward's x̂ is (x − mean)·rstd with the saved f32 mean, which
 * is off by up to half an ulp of the offset (as in PyTorch), so offset rows test the forward only.
 */
async function checkGroupNorm(r: KernelRunner, o: GroupNormOptions, affine = AFFINE, offset = 0, forwardOnly = false) {
  const n = o.batch * o.channels * o.spatial,
    rows = o.batch * o.groups,
    what = `groupNorm ${JSON.stringify(o)} ${JSON.stringify(affine)}`;
  const x = random(n, o.spatial + o.channels, 2).map((v) => v + offset);
  const weight = affine.weight ? random(o.channels, 5, 1.5) : null,
    bias = affine.bias ? random(o.channels, 6) : null;
  const gradOut = random(n, 7);
  const gpu = {
    x: upload(r, x),
    weight: weight && upload(r, weight),
    bias: bias && upload(r, bias),
    gradOut: upload(r, gradOut),
  };
  const out = empty(r, n),
    mean = empty(r, rows),
    rstd = empty(r, rows);
  const gradX = empty(r, n),
    gradWeight = empty(r, o.channels),
    gradBias = empty(r, o.channels);
  groupNorm(r, gpu.x, gpu.weight, gpu.bias, out, mean, rstd, o);
  groupNormBackward(r, gpu.x, gpu.weight, gpu.bias, mean, rstd, gpu.gradOut, gradX, gradWeight, gradBias, o);

  const expected = groupNormCpu(x, weight, bias, o);
  expectClose(await download(r, out, n), expected.out, 1e-5, `${what}: out`);
  expectMean(await download(r, mean, rows), expected.mean, x, what);
  expectClose(await download(r, rstd, rows), expected.rstd, 1e-5, `${what}: rstd`);
  if (forwardOnly) return;
  const grads = groupNormBackwardCpu(x, weight, bias, expected.mean, expected.rstd, gradOut, o);
  // With two elements per group x̂ ≈ ±1 and gradX nearly cancels (both directions are projected out; only the
  // eps term survives), so f32 rounding of the cancelling terms shows at 5e-5 relative to the small remainder.
  const pairs = (o.channels / o.groups) * o.spatial === 2;
  expectClose(await download(r, gradX, n), grads.gradX, pairs ? 1e-4 : 1e-5, `${what}: gradX`);
  expectClose(await download(r, gradWeight, o.channels), grads.gradWeight, 1e-5, `${what}: gradWeight`);
  expectClose(await download(r, gradBias, o.channels), grads.gradBias, 1e-5, `${what}: gradBias`);
}

for (const { form, r } of await reductionForms()) {
  describe(`group norm forward and backward match the CPU references (${form})`, () => {
    test("awkward spatial sizes and group layouts", async () => {
      for (const spatial of SIZES)
        for (const [channels, groups] of LAYOUTS)
          await checkGroupNorm(r, { batch: 2, channels, spatial, groups, eps: 1e-5 });
    });

    test("fused SiLU, and weight or bias absent", async () => {
      for (const silu of [false, true]) {
        for (const affine of [
          { weight: false, bias: false },
          { weight: true, bias: false },
          { weight: false, bias: true },
          AFFINE,
        ]) {
          await checkGroupNorm(r, { batch: 3, channels: 64, spatial: 77, groups: 32, eps: 1e-6, silu }, affine);
        }
      }
      await checkGroupNorm(r, { batch: 1, channels: 32, spatial: 4097, groups: 1, eps: 1e-5, silu: true });
    });

    test("a large common offset (1e4 + noise) normalizes accurately", async () => {
      await checkGroupNorm(r, { batch: 2, channels: 64, spatial: 129, groups: 2, eps: 1e-5 }, AFFINE, 1e4, true);
    });

    test("the gradients of weight and bias may be skipped", async () => {
      const o = { batch: 2, channels: 32, spatial: 3, groups: 32, eps: 1e-5, silu: true };
      const n = 2 * 32 * 3,
        x = random(n, 1),
        weight = random(32, 2),
        bias = random(32, 3),
        gradOut = random(n, 4);
      const mean = empty(r, 64),
        rstd = empty(r, 64),
        gradX = empty(r, n);
      groupNorm(r, upload(r, x), upload(r, weight), upload(r, bias), empty(r, n), mean, rstd, o);
      groupNormBackward(
        r,
        upload(r, x),
        upload(r, weight),
        upload(r, bias),
        mean,
        rstd,
        upload(r, gradOut),
        gradX,
        null,
        null,
        o,
      );
      const expected = groupNormCpu(x, weight, bias, o);
      expectClose(
        await download(r, gradX, n),
        groupNormBackwardCpu(x, weight, bias, expected.mean, expected.rstd, gradOut, o).gradX,
        1e-5,
      );
    });
  });
}

async function checkLayerNorm(
  r: KernelRunner,
  rows: number,
  cols: number,
  affine = AFFINE,
  offset = 0,
  forwardOnly = false,
) {
  const o = { rows, cols, eps: 1e-5 },
    n = rows * cols,
    what = `layerNorm [${rows}, ${cols}] ${JSON.stringify(affine)}`;
  const x = random(n, rows + cols, 3).map((v) => v + offset);
  const weight = affine.weight ? random(cols, 8, 1.5) : null,
    bias = affine.bias ? random(cols, 9) : null;
  const gradOut = random(n, 10);
  const gx = upload(r, x),
    gw = weight && upload(r, weight);
  const out = empty(r, n),
    mean = empty(r, rows),
    rstd = empty(r, rows);
  const gradX = empty(r, n),
    gradWeight = empty(r, cols),
    gradBias = empty(r, cols);
  layerNorm(r, gx, gw, bias && upload(r, bias), out, mean, rstd, o);
  layerNormBackward(r, gx, gw, mean, rstd, upload(r, gradOut), gradX, gradWeight, gradBias, o);

  const expected = layerNormCpu(x, weight, bias, o);
  expectClose(await download(r, out, n), expected.out, 1e-5, `${what}: out`);
  expectMean(await download(r, mean, rows), expected.mean, x, what);
  expectClose(await download(r, rstd, rows), expected.rstd, 1e-5, `${what}: rstd`);
  if (forwardOnly) return;
  const grads = layerNormBackwardCpu(x, weight, expected.mean, expected.rstd, gradOut, o);
  expectClose(await download(r, gradX, n), grads.gradX, 1e-5, `${what}: gradX`);
  expectClose(await download(r, gradWeight, cols), grads.gradWeight, 1e-5, `${what}: gradWeight`);
  expectClose(await download(r, gradBias, cols), grads.gradBias, 1e-5, `${what}: gradBias`);
}

for (const { form, r } of await reductionForms())
  describe(`layer norm forward and backward match the CPU references (${form})`, () => {
    test("awkward sizes, rows longer than a workgroup", async () => {
      for (const rows of [1, 3, 77, 129]) for (const cols of SIZES) await checkLayerNorm(r, rows, cols);
    });

    test("weight or bias absent", async () => {
      await checkLayerNorm(r, 77, 768, { weight: false, bias: false });
      await checkLayerNorm(r, 3, 129, { weight: true, bias: false });
      await checkLayerNorm(r, 3, 129, { weight: false, bias: true });
    });

    test("a large common offset (1e4 + noise) normalizes accurately", async () => {
      await checkLayerNorm(r, 3, 4097, AFFINE, 1e4, true);
    });
  });

/**
 * The CPU backward references against central differences of their own forward, all in float64, so that the
 * GPU tests above compare with something trustworthy. Loss = Σ out · cotangent.
 */
describe("CPU backward references match finite differences", () => {
  function numericGradients(
    params: Float64Array[],
    forward: (p: Float64Array[]) => Float64Array,
    cotangent: Float64Array,
  ): Float64Array[] {
    const loss = () => forward(params).reduce((a, v, i) => a + v * cotangent[i]!, 0);
    const h = 1e-6;
    return params.map((p) =>
      p.map((v, i) => {
        p[i] = v + h;
        const plus = loss();
        p[i] = v - h;
        const minus = loss();
        p[i] = v;
        return (plus - minus) / (2 * h);
      }),
    );
  }

  const check = (analytic: NormGradients, numeric: Float64Array[], what: string) => {
    expectClose(analytic.gradX, numeric[0]!, 1e-7, `${what}: gradX`);
    expectClose(analytic.gradWeight, numeric[1]!, 1e-7, `${what}: gradWeight`);
    expectClose(analytic.gradBias, numeric[2]!, 1e-7, `${what}: gradBias`);
  };

  for (const silu of [false, true]) {
    test(`group norm${silu ? " + SiLU" : ""}`, () => {
      const o = { batch: 2, channels: 4, spatial: 3, groups: 2, eps: 1e-5, silu };
      const params = [random(24, 1, 2), random(4, 2, 1.5), random(4, 3)].map((p) => Float64Array.from(p));
      const cotangent = Float64Array.from(random(24, 4));
      const numeric = numericGradients(params, ([x, w, b]) => groupNormCpu(x!, w!, b!, o).out, cotangent);
      const [x, w, b] = params;
      const { mean, rstd } = groupNormCpu(x!, w!, b!, o);
      check(groupNormBackwardCpu(x!, w!, b!, mean, rstd, cotangent, o), numeric, `groupNorm silu=${silu}`);
    });
  }

  test("layer norm", () => {
    const o = { rows: 3, cols: 5, eps: 1e-5 };
    const params = [random(15, 5, 2), random(5, 6, 1.5), random(5, 7)].map((p) => Float64Array.from(p));
    const cotangent = Float64Array.from(random(15, 8));
    const numeric = numericGradients(params, ([x, w, b]) => layerNormCpu(x!, w!, b!, o).out, cotangent);
    const [x, w, b] = params;
    const { mean, rstd } = layerNormCpu(x!, w!, b!, o);
    check(layerNormBackwardCpu(x!, w!, mean, rstd, cotangent, o), numeric, "layerNorm");
  });
});
